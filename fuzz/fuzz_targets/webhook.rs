//! Fuzzes the Alertmanager webhook body parser (`alert::parse_webhook`), the first code every
//! request body reaches: it must answer Ok or a field-naming error for any bytes, never panic,
//! and what it accepts must survive the steps the intake takes next (episode key, re-encoding).
#![no_main]

use cabal_triage::alert::{parse_webhook, EpisodeKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_webhook(data) {
        Ok(payload) => {
            for alert in &payload.alerts {
                let key = EpisodeKey::new(&payload.group_key, &alert.fingerprint, alert.starts_at);
                assert!(!key.id().is_empty());
                let _ = alert.alertname();
            }
            let text = serde_json::to_vec(&payload).expect("an accepted payload re-encodes");
            let again = parse_webhook(&text).expect("a re-encoded payload parses again");
            assert_eq!(again.alerts.len(), payload.alerts.len());
        }
        Err(error) => {
            let _ = error.field();
            assert!(!error.to_string().is_empty());
        }
    }
});
