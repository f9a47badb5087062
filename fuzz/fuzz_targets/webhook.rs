//! Fuzzes the Alertmanager webhook body parser (`alert::parse_webhook`), the first code every
//! request body reaches: it must answer Ok or a field-naming error for any bytes, never panic,
//! and what it accepts must survive the steps the intake takes next (episode key, re-encoding)
//! and the group labels the silence buttons read back from its group key.
//!
//! Raw bytes alone rarely reach the deep parts (a valid payload with a strange timestamp), so
//! the same input is also used structurally: its first byte picks a shape, the rest becomes a
//! timestamp, a huge value, the depth of nested labels or the group key inside an otherwise valid
//! payload.
#![no_main]

use cabal_triage::alert::{group_matchers, parse_webhook, EpisodeKey, MAX_QUOTED_BYTES};
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    match parse_webhook(data) {
        Ok(payload) => {
            for alert in &payload.alerts {
                let key = EpisodeKey::new(&payload.group_key, &alert.fingerprint, alert.starts_at);
                assert!(!key.id().is_empty());
                assert!(
                    key.starts_at_text().contains('T'),
                    "an accepted startsAt formats in UTC"
                );
                let _ = alert.alertname();
                // The silence buttons read the group's labels back from the group key: only
                // ever labels the alert carries, with its values.
                if let Some(matchers) = group_matchers(&payload.group_key, &alert.labels) {
                    assert!(matchers.iter().all(|(n, v)| alert.labels.get(n) == Some(v)));
                }
            }
            let text = serde_json::to_vec(&payload).expect("an accepted payload re-encodes");
            let again = parse_webhook(&text).expect("a re-encoded payload parses again");
            assert_eq!(again.alerts.len(), payload.alerts.len());
        }
        Err(error) => {
            let _ = error.field();
            let message = error.to_string();
            assert!(!message.is_empty());
            // Every quoted value is bounded; the fixed text around it is short.
            assert!(
                message.len() <= 2 * MAX_QUOTED_BYTES + 300,
                "{} bytes",
                message.len()
            );
        }
    }
}

fn structured(data: &[u8]) -> Option<Vec<u8>> {
    let (&shape, rest) = data.split_first()?;
    let text = String::from_utf8_lossy(rest);
    let quoted = serde_json::to_string(&text).ok()?;
    let alert = |starts: &str, ends: &str, labels: &str| {
        format!(
            r#"{{"version":"4","groupKey":"g","status":"firing","alerts":[{{"status":"firing","labels":{labels},"startsAt":{starts},"endsAt":{ends},"fingerprint":"ab"}}]}}"#
        )
    };
    let ok = r#""2026-01-01T00:00:00Z""#;
    let body = match shape % 6 {
        0 => alert(&quoted, ok, "{}"),
        1 => alert(ok, &quoted, "{}"),
        2 => {
            let huge = quoted.repeat(1 + (rest.len() % 64) * 100);
            format!(r#"{{"version":{huge},"groupKey":"g","status":"firing","alerts":[]}}"#)
        }
        3 => {
            let depth = rest.len() * 8;
            let labels = format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
            alert(ok, ok, &labels)
        }
        4 => alert(ok, ok, &format!(r#"{{{quoted}:{quoted}}}"#)),
        // The text as the group key, with a label the group key may name.
        _ => alert(ok, ok, r#"{"alertname":"A"}"#).replace(r#""groupKey":"g""#, &format!(r#""groupKey":{quoted}"#)),
    };
    Some(body.into_bytes())
}

fuzz_target!(|data: &[u8]| {
    check(data);
    if let Some(body) = structured(data) {
        check(&body);
    }
});
