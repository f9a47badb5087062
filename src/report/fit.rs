//! A stored report that fits the ledger. A DynamoDB item holds at most 400 KB, and a real spike's
//! evidence snapshot (up to 20,000 log events of 8 MiB per tier) can be far larger than that: a
//! report that cannot be written is never stored, and the triage ran again and again until its
//! attempts ran out. Both ledgers store a report through [`fit_report_json`], which cuts the
//! evidence to [`MAX_STORED_REPORT_BYTES`] (the same bound on SQLite, so both backends store the
//! same thing) and says what it cut in the report's `trimmed` field. The verdict is never cut:
//! it was reached on the whole evidence before anything was trimmed.
//!
//! What goes, in order, until the report fits: the report's evidence samples beyond the first
//! of each tier; then log events of the snapshot, evenly spaced over each tier so what remains
//! keeps the shape of the storm (the tier is marked `log_truncated`); then each command output
//! beyond its first [`MAX_KEPT_OUTPUT_BYTES`]; then the whole snapshot.

use std::borrow::Cow;

use serde_json::Value;

/// The largest report JSON a ledger stores: 240 KiB, which leaves room in a 400 KB DynamoDB
/// item for the alert (at most `MAX_STORED_ALERT_BYTES`) and the delivery rows.
pub const MAX_STORED_REPORT_BYTES: usize = 240 * 1024;

/// The largest alert a ledger stores (its JSON with the episode's keys); a larger alert is
/// refused with 413 rather than stored without room for its report.
pub const MAX_STORED_ALERT_BYTES: usize = 128 * 1024;

/// What a command's output is cut to when the log events were not enough.
pub const MAX_KEPT_OUTPUT_BYTES: usize = 2048;

/// `report_json` when it is at most `max_bytes`; else the report with its evidence cut as the
/// module documentation says and a `trimmed` note. A text that is not a report object is
/// returned unchanged (the ledger says whether it can store it).
pub fn fit_report_json(report_json: String, max_bytes: usize) -> String {
    if report_json.len() <= max_bytes {
        return report_json;
    }
    let Ok(Value::Object(mut report)) = serde_json::from_str::<Value>(&report_json) else {
        return report_json;
    };
    let original_bytes = report_json.len();
    let mut cuts = Vec::new();
    let fits = |report: &serde_json::Map<String, Value>| size_of(report) <= max_bytes;

    cut_samples(&mut report, &mut cuts);
    if !fits(&report) {
        cut_log_events(&mut report, max_bytes, &mut cuts);
    }
    if !fits(&report) {
        cut_outputs(&mut report, &mut cuts);
    }
    if !fits(&report)
        && report
            .get("evidence_snapshot")
            .is_some_and(|s| !s.is_null())
    {
        report.remove("evidence_snapshot");
        cuts.push("the evidence snapshot dropped".to_string());
    }
    report.insert(
        "trimmed".into(),
        Value::String(format!(
            "the stored report was {original_bytes} bytes, more than the ledger keeps ({max_bytes}): {}; the verdict was reached on the whole evidence",
            cuts.join("; ")
        )),
    );
    serde_json::to_string(&report).unwrap_or(report_json)
}

fn size_of(report: &serde_json::Map<String, Value>) -> usize {
    serde_json::to_vec(report).map_or(usize::MAX, |bytes| bytes.len())
}

/// The report's evidence samples: the first of each tier kept.
fn cut_samples(report: &mut serde_json::Map<String, Value>, cuts: &mut Vec<String>) {
    let Some(Value::Object(tiers)) = report
        .get_mut("evidence")
        .and_then(|evidence| evidence.get_mut("tiers"))
    else {
        return;
    };
    let (mut before, mut after) = (0, 0);
    for tier in tiers.values_mut() {
        if let Some(Value::Array(samples)) = tier.get_mut("samples") {
            before += samples.len();
            samples.truncate(1);
            after += samples.len();
        }
    }
    if after < before {
        cuts.push(format!("evidence samples {before} -> {after}"));
    }
}

/// The snapshot's log events, evenly thinned on every tier until the report fits.
fn cut_log_events(
    report: &mut serde_json::Map<String, Value>,
    max_bytes: usize,
    cuts: &mut Vec<String>,
) {
    let mut original: Vec<(String, usize)> = Vec::new();
    let mut kept: Vec<(String, usize)> = Vec::new();
    // Each round aims at the bound from the measured size; a handful of rounds reach it.
    for _ in 0..12 {
        let size = size_of(report);
        if size <= max_bytes {
            break;
        }
        let Some(Value::Object(tiers)) = report
            .get_mut("evidence_snapshot")
            .and_then(|snapshot| snapshot.get_mut("tiers"))
        else {
            return;
        };
        let ratio = max_bytes as f64 / size as f64 * 0.9;
        let mut any = false;
        for (name, tier) in tiers.iter_mut() {
            let Some(Value::Array(events)) = tier.get_mut("log_events") else {
                continue;
            };
            if events.is_empty() {
                continue;
            }
            if !original.iter().any(|(n, _)| n == name) {
                original.push((name.clone(), events.len()));
            }
            let keep = ((events.len() as f64 * ratio) as usize).min(events.len() / 2);
            let thinned = evenly_spaced(std::mem::take(events), keep);
            *events = thinned;
            tier["log_truncated"] = Value::Bool(true);
            match kept.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = keep,
                None => kept.push((name.clone(), keep)),
            }
            any = true;
        }
        if !any {
            break;
        }
    }
    for (name, before) in original {
        let after = kept
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(before, |k| k.1);
        cuts.push(format!("{name} log events {before} -> {after}"));
    }
}

/// `keep` of `items`, evenly spaced from the first.
fn evenly_spaced(items: Vec<Value>, keep: usize) -> Vec<Value> {
    let len = items.len();
    if keep == 0 {
        return Vec::new();
    }
    let mut picked = Vec::with_capacity(keep);
    let mut next = 0usize;
    for (index, item) in items.into_iter().enumerate() {
        if index * keep >= next * len {
            picked.push(item);
            next += 1;
            if next == keep {
                break;
            }
        }
    }
    picked
}

/// Every command output of the snapshot cut to its first `MAX_KEPT_OUTPUT_BYTES`.
fn cut_outputs(report: &mut serde_json::Map<String, Value>, cuts: &mut Vec<String>) {
    let Some(Value::Object(tiers)) = report
        .get_mut("evidence_snapshot")
        .and_then(|snapshot| snapshot.get_mut("tiers"))
    else {
        return;
    };
    let mut cut = 0;
    for tier in tiers.values_mut() {
        let Some(Value::Array(records)) = tier.get_mut("exec") else {
            continue;
        };
        for record in records {
            if let Some(Value::String(output)) = record.get_mut("output") {
                if let Cow::Owned(short) = head(output, MAX_KEPT_OUTPUT_BYTES) {
                    *output = short;
                    cut += 1;
                }
            }
        }
    }
    if cut > 0 {
        cuts.push(format!(
            "{cut} command outputs cut to {MAX_KEPT_OUTPUT_BYTES} bytes"
        ));
    }
}

/// The first `max` bytes of `text` at a character boundary.
fn head(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(text[..end].to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn events(count: usize, bytes: usize) -> Vec<Value> {
        (0..count)
            .map(|i| {
                json!({"timestamp": 1_764_360_000_000_i64 + i as i64, "message": format!("{i:06} {}", "x".repeat(bytes)), "log_stream": "smtp-out/0a1b"})
            })
            .collect()
    }

    fn report(out_events: usize, in_events: usize, output_bytes: usize) -> Value {
        json!({
            "episode": "e1",
            "verdict": {"action": "nat-replace", "summary": "the NAT is stopped"},
            "evidence": {"tiers": {
                "smtp-out": {"samples": ["a", "b", "c"]},
                "smtp-in": {"samples": ["d", "e"]}
            }},
            "evidence_snapshot": {"captured_at": "2026-11-28T20:15:00Z", "tiers": {
                "smtp-out": {"log_events": events(out_events, 200),
                             "exec": [{"task": "0a1b", "probe": "mailq", "output": "q".repeat(output_bytes)}]},
                "smtp-in": {"log_events": events(in_events, 200)}
            }}
        })
    }

    #[test]
    fn a_report_that_fits_is_stored_as_given() {
        let text = report(10, 10, 10).to_string();
        assert_eq!(fit_report_json(text.clone(), MAX_STORED_REPORT_BYTES), text);
    }

    #[test]
    fn samples_go_first_then_evenly_spaced_events_and_the_verdict_stays() {
        let text = report(20_000, 500, 100).to_string();
        assert!(text.len() > 4 << 20);
        let fitted = fit_report_json(text.clone(), MAX_STORED_REPORT_BYTES);
        assert!(fitted.len() <= MAX_STORED_REPORT_BYTES, "{}", fitted.len());
        let fitted: Value = serde_json::from_str(&fitted).unwrap();
        let original: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(fitted["verdict"], original["verdict"]);
        assert_eq!(
            fitted["evidence"]["tiers"]["smtp-out"]["samples"],
            json!(["a"])
        );
        let tier = &fitted["evidence_snapshot"]["tiers"]["smtp-out"];
        let kept = tier["log_events"].as_array().unwrap();
        assert!(kept.len() > 100 && kept.len() < 10_000, "{}", kept.len());
        assert_eq!(tier["log_truncated"], true);
        // Evenly spaced: the first and one near the end are kept, in order.
        assert_eq!(
            kept[0],
            original["evidence_snapshot"]["tiers"]["smtp-out"]["log_events"][0]
        );
        let last = kept.last().unwrap()["timestamp"].as_i64().unwrap();
        assert!(last > 1_764_360_000_000 + 19_000, "{last}");
        assert!(kept
            .windows(2)
            .all(|w| w[0]["timestamp"].as_i64() < w[1]["timestamp"].as_i64()));
        // The command output was not needed.
        assert_eq!(tier["exec"][0]["output"].as_str().unwrap().len(), 100);
        let note = fitted["trimmed"].as_str().unwrap();
        for said in [
            "evidence samples 5 -> 2",
            "smtp-out log events 20000 -> ",
            "smtp-in log events 500 -> ",
            "the verdict was reached on the whole evidence",
        ] {
            assert!(note.contains(said), "{said}: {note}");
        }
    }

    #[test]
    fn outputs_then_the_snapshot_go_when_events_are_not_enough() {
        let fitted = fit_report_json(report(0, 0, 600_000).to_string(), MAX_STORED_REPORT_BYTES);
        let fitted: Value = serde_json::from_str(&fitted).unwrap();
        let output = &fitted["evidence_snapshot"]["tiers"]["smtp-out"]["exec"][0]["output"];
        assert_eq!(output.as_str().unwrap().len(), MAX_KEPT_OUTPUT_BYTES);
        assert!(fitted["trimmed"]
            .as_str()
            .unwrap()
            .contains("1 command outputs cut"));

        // A verdict beside a snapshot that cannot be cut enough: the snapshot goes.
        let mut huge = report(0, 0, 10);
        huge["evidence_snapshot"]["nat"] = json!({"error": "n".repeat(400_000)});
        let fitted: Value =
            serde_json::from_str(&fit_report_json(huge.to_string(), MAX_STORED_REPORT_BYTES))
                .unwrap();
        assert!(fitted.get("evidence_snapshot").is_none());
        assert_eq!(fitted["verdict"]["action"], "nat-replace");
        assert!(fitted["trimmed"]
            .as_str()
            .unwrap()
            .contains("the evidence snapshot dropped"));
    }

    #[test]
    fn hostile_texts_are_returned_unchanged() {
        for text in ["", "[1,2]", "not json", "\"a string\""] {
            assert_eq!(fit_report_json(text.to_string(), 1), text);
        }
        let x = "x".repeat(100);
        assert_eq!(fit_report_json(x.clone(), 10), x);
        assert_eq!(head("aé", 2), "a");
        assert_eq!(
            evenly_spaced(vec![json!(1), json!(2), json!(3), json!(4)], 2),
            vec![json!(1), json!(3)]
        );
    }
}
