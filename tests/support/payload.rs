//! Webhook payloads shaped like Alertmanager's (version 4).

use serde_json::{json, Value};

pub const GROUP_KEY: &str = "{}/{severity=\"warning\"}:{alertname=\"CabalTriageTest\"}";

/// One alert; `labels` are added to alertname and severity.
pub fn alert(
    alertname: &str,
    fingerprint: &str,
    starts_at: &str,
    status: &str,
    labels: &[(&str, &str)],
) -> Value {
    let mut label_map = serde_json::Map::new();
    label_map.insert("alertname".into(), json!(alertname));
    label_map.insert("severity".into(), json!("warning"));
    for (k, v) in labels {
        label_map.insert((*k).into(), json!(v));
    }
    json!({
        "status": status,
        "labels": label_map,
        "annotations": {"summary": "test alert", "runbook_url": "https://example.com/runbook"},
        "startsAt": starts_at,
        "endsAt": if status == "resolved" { "2026-11-28T21:00:00Z" } else { "0001-01-01T00:00:00Z" },
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    })
}

/// A notification carrying `alerts`.
pub fn notification(group_key: &str, alerts: Vec<Value>) -> String {
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    let body = json!({
        "receiver": "cabal\\-triage",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"alertname": "CabalTriageTest"},
        "commonLabels": {"severity": "warning"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "notification_reason": "first notification",
        "routeLabels": {}
    });
    // Alertmanager's Go encoder ends the body with a newline.
    format!("{body}\n")
}

/// A test-runbook alert with a distinct fingerprint per `n`.
pub fn test_alert(n: usize, labels: &[(&str, &str)]) -> Value {
    alert(
        "CabalTriageTest",
        &format!("{n:016x}"),
        "2026-11-28T20:00:00.123456789Z",
        "firing",
        labels,
    )
}
