//! The Alertmanager webhook payload, version 4, as `notify/webhook` sends it.
//!
//! Parsing is strict about what the service relies on (`version`, `groupKey`, `status`, and per
//! alert `status`, `labels`, `startsAt`, `fingerprint`) and lenient about everything else: unknown
//! fields are ignored and fields that only some Alertmanager versions send are optional. Errors
//! name the offending field so a 400 tells the operator what to fix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::excerpt::excerpt;

/// Whether an alert (or the whole notification) is firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One element of `alerts[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookAlert {
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt", with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    /// `0001-01-01T00:00:00Z` for firing alerts (Alertmanager clears it on purpose); `None` here.
    #[serde(
        rename = "endsAt",
        default,
        deserialize_with = "deserialize_ends_at",
        serialize_with = "serialize_ends_at"
    )]
    pub ends_at: Option<OffsetDateTime>,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    pub fingerprint: String,
}

impl WebhookAlert {
    /// The `alertname` label, or an empty string when the label is absent.
    pub fn alertname(&self) -> &str {
        self.labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// The whole notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookPayload {
    pub version: String,
    #[serde(rename = "groupKey")]
    pub group_key: String,
    #[serde(rename = "truncatedAlerts", default)]
    pub truncated_alerts: u64,
    pub status: AlertStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(rename = "groupLabels", default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(rename = "commonLabels", default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations", default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    /// Alertmanager v0.32+ only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_reason: Option<String>,
    pub alerts: Vec<WebhookAlert>,
}

/// Why a webhook body was refused. Each variant names the field at fault.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("body is not valid JSON: {0}")]
    Syntax(String),
    #[error("field `{field}`: {reason}")]
    Field { field: String, reason: String },
    #[error("field `version`: expected \"4\", got {0}; only Alertmanager webhook payload version 4 is supported")]
    Version(String),
}

impl WebhookError {
    /// The JSON path of the field at fault, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            WebhookError::Syntax(_) => None,
            WebhookError::Field { field, .. } => Some(field),
            WebhookError::Version(_) => Some("version"),
        }
    }
}

/// Parses and validates a webhook body.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookPayload, WebhookError> {
    // First as an untyped value: a syntax error and a schema error are different answers, and
    // the version check must come before the schema check (a v5 payload may have another shape).
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::Syntax(e.to_string()))?;
    let object = value.as_object().ok_or_else(|| WebhookError::Field {
        field: "$".into(),
        reason: "the body must be a JSON object".into(),
    })?;
    match object.get("version") {
        None => {
            return Err(WebhookError::Field {
                field: "version".into(),
                reason: "missing; is a custom `payload` template set on the webhook config?".into(),
            })
        }
        Some(serde_json::Value::String(v)) if v == "4" => {}
        Some(other) => {
            // Escaped first, then bounded: escaping can make a byte six (`\u{7f}`), and the
            // bound is on what is printed (fuzzing found a 714-byte message).
            return Err(WebhookError::Version(
                excerpt(&format!("{:?}", other.to_string())).into_owned(),
            ));
        }
    }
    let payload = deserialize_with_paths(value)?;
    for (index, alert) in payload.alerts.iter().enumerate() {
        check_instant(alert.starts_at, || format!("alerts[{index}].startsAt"))?;
        if let Some(ends_at) = alert.ends_at {
            check_instant(ends_at, || format!("alerts[{index}].endsAt"))?;
        }
        if alert.fingerprint.is_empty() {
            return Err(WebhookError::Field {
                field: format!("alerts[{index}].fingerprint"),
                reason: "must not be empty".into(),
            });
        }
    }
    if payload.group_key.is_empty() {
        return Err(WebhookError::Field {
            field: "groupKey".into(),
            reason: "must not be empty".into(),
        });
    }
    Ok(payload)
}

/// Refuses a timestamp whose instant cannot be written in UTC RFC 3339 (years 0000 to 9999):
/// `9999-12-31T23:59:59-23:59` parses, but in UTC it is in year 10000, and the episode key, the
/// ledger and every rendering convert to UTC.
fn check_instant(at: OffsetDateTime, field: impl FnOnce() -> String) -> Result<(), WebhookError> {
    let in_range = at
        .checked_to_offset(UtcOffset::UTC)
        .is_some_and(|utc| (0..=9999).contains(&utc.year()));
    if in_range {
        Ok(())
    } else {
        Err(WebhookError::Field {
            field: field(),
            reason: "out of range: in UTC the instant must lie in the years 0000 to 9999".into(),
        })
    }
}

/// Deserializes with the path of the failing field in the error (`alerts[3].startsAt`).
fn deserialize_with_paths(value: serde_json::Value) -> Result<WebhookPayload, WebhookError> {
    match value.get("alerts") {
        None => {
            return Err(WebhookError::Field {
                field: "alerts".into(),
                reason: "missing".into(),
            })
        }
        Some(serde_json::Value::Array(_)) => {}
        Some(_) => {
            return Err(WebhookError::Field {
                field: "alerts".into(),
                reason: "must be an array".into(),
            })
        }
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        // For a missing field serde reports the parent's path; name the field itself.
        let field = match message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            Some(name) if path == "." => name.to_string(),
            Some(name) => format!("{path}.{name}"),
            None if path == "." => "$".to_string(),
            None => path,
        };
        // serde quotes the offending value (`invalid type: string "…"`) and map keys are part
        // of the path: both are input, bounded here.
        WebhookError::Field {
            field: excerpt(&field).into_owned(),
            reason: excerpt(&message).into_owned(),
        }
    })
}

fn deserialize_ends_at<'de, D>(deserializer: D) -> Result<Option<OffsetDateTime>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let text: Option<String> = Option::deserialize(deserializer)?;
    let Some(text) = text else { return Ok(None) };
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)?;
    // Go's zero time marks "not ended".
    if parsed.year() <= 1 {
        Ok(None)
    } else {
        Ok(Some(parsed))
    }
}

fn serialize_ends_at<S>(value: &Option<OffsetDateTime>, serializer: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
{
    match value {
        Some(at) => {
            let text = at.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
            serializer.serialize_str(&text)
        }
        None => serializer.serialize_str("0001-01-01T00:00:00Z"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r#"{"receiver":"triage","status":"firing","alerts":[{"status":"firing",
   "labels":{"alertname":"X","severity":"critical"},"annotations":{"summary":"..."},
   "startsAt":"2026-08-20T10:00:00.123456789+02:00","endsAt":"0001-01-01T00:00:00Z",
   "generatorURL":"http://prom/graph?...","fingerprint":"1a2b3c4d5e6f7081"}],
 "notification_reason":"first notification","groupLabels":{"alertname":"X"},
 "commonLabels":{"alertname":"X","severity":"critical"},"commonAnnotations":{"summary":"..."},
 "routeLabels":{},"externalURL":"http://alertmanager:9093","version":"4",
 "groupKey":"{}/{severity=\"critical\"}:{alertname=\"X\"}","truncatedAlerts":0}
"#;

    #[test]
    fn a_version_of_control_characters_is_quoted_within_the_bound_once_escaped() {
        // Found by fuzzing: 200 bytes of DEL quoted, then escaped, made a 714-byte message.
        let version = "\u{7f}".repeat(400);
        let body = serde_json::json!({"version": version, "groupKey": "g", "status": "firing", "alerts": []});
        let message = parse_webhook(body.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            message.len() <= crate::alert::MAX_QUOTED_BYTES + 200,
            "{} bytes: {message}",
            message.len()
        );
        assert!(message.contains("more bytes"), "{message}");
        assert!(!message.contains('\u{7f}'), "{message}");
        // A short wrong version reads as before.
        let body =
            serde_json::json!({"version": "5", "groupKey": "g", "status": "firing", "alerts": []});
        let message = parse_webhook(body.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(message.contains(r#"got "\"5\"""#), "{message}");
    }

    #[test]
    fn parses_v034_sample_with_unknown_fields_and_trailing_newline() {
        let payload = parse_webhook(SAMPLE.as_bytes()).expect("valid payload");
        assert_eq!(
            payload.group_key,
            "{}/{severity=\"critical\"}:{alertname=\"X\"}"
        );
        assert_eq!(payload.alerts.len(), 1);
        let alert = &payload.alerts[0];
        assert_eq!(alert.alertname(), "X");
        assert_eq!(alert.ends_at, None, "Go zero time means not ended");
        assert_eq!(alert.starts_at.nanosecond(), 123_456_789);
        assert_eq!(alert.starts_at.offset().whole_hours(), 2);
        assert_eq!(
            payload.notification_reason.as_deref(),
            Some("first notification")
        );
    }

    #[test]
    fn old_alertmanager_without_optional_fields() {
        let body = r#"{"version":"4","groupKey":"{}:{alertname=\"A\"}","status":"resolved",
            "alerts":[{"status":"resolved","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z",
            "endsAt":"2026-01-01T00:10:00Z","fingerprint":"00000000000000aa"}]}"#;
        let payload = parse_webhook(body.as_bytes()).unwrap();
        assert_eq!(payload.status, AlertStatus::Resolved);
        assert!(payload.alerts[0].ends_at.is_some());
        assert!(payload.notification_reason.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"version":"4","status":"firing","alerts":[]}"#,
                "groupKey",
            ),
            (
                r#"{"version":"5","groupKey":"g","status":"firing","alerts":[]}"#,
                "version",
            ),
            (
                r#"{"version":4,"groupKey":"g","status":"firing","alerts":[]}"#,
                "version",
            ),
            (
                r#"{"groupKey":"g","status":"firing","alerts":[]}"#,
                "version",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"firing","alerts":{}}"#,
                "alerts",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"firing"}"#,
                "alerts",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"burning","alerts":[]}"#,
                "status",
            ),
            (
                r#"{"version":"4","groupKey":"","status":"firing","alerts":[]}"#,
                "groupKey",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{},"fingerprint":"ab"}]}"#,
                "alerts[0].startsAt",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{},"startsAt":"yesterday","fingerprint":"ab"}]}"#,
                "alerts[0].startsAt",
            ),
            (
                r#"{"version":"4","groupKey":"g","status":"firing","alerts":[{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z","fingerprint":""}]}"#,
                "alerts[0].fingerprint",
            ),
        ];
        for (body, field) in cases {
            let error = parse_webhook(body.as_bytes()).expect_err(body);
            assert_eq!(error.field(), Some(*field), "{body}: {error}");
        }
    }

    #[test]
    fn syntax_errors_and_non_objects() {
        assert!(matches!(parse_webhook(b"{"), Err(WebhookError::Syntax(_))));
        assert!(matches!(
            parse_webhook(b"\xff\xfe"),
            Err(WebhookError::Syntax(_))
        ));
        assert_eq!(parse_webhook(b"[]").unwrap_err().field(), Some("$"));
        assert_eq!(parse_webhook(b"null").unwrap_err().field(), Some("$"));
    }

    #[test]
    fn instants_outside_utc_rfc3339_are_refused_naming_the_field() {
        let alert = |starts: &str, ends: &str| {
            format!(
                r#"{{"version":"4","groupKey":"g","status":"firing","alerts":[{{"status":"firing","labels":{{}},"startsAt":"{starts}","endsAt":"{ends}","fingerprint":"ab"}}]}}"#
            )
        };
        let ok = "2026-01-01T00:00:00Z";
        for (body, field) in [
            (alert("9999-12-31T23:59:59-23:59", ok), "alerts[0].startsAt"),
            (alert("0000-01-01T00:00:00+23:59", ok), "alerts[0].startsAt"),
            (alert(ok, "9999-12-31T23:59:59-00:01"), "alerts[0].endsAt"),
        ] {
            let error = parse_webhook(body.as_bytes()).expect_err(&body);
            assert_eq!(error.field(), Some(field), "{body}: {error}");
        }
        // The edges that stay in range are accepted and give an episode key.
        for starts in [
            "9999-12-31T23:59:59Z",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59+23:59",
        ] {
            let payload = parse_webhook(alert(starts, ok).as_bytes()).expect(starts);
            let alert = &payload.alerts[0];
            let key = crate::alert::EpisodeKey::new("g", &alert.fingerprint, alert.starts_at);
            assert!(key.starts_at_text().contains('T'), "{starts}");
        }
    }

    #[test]
    fn errors_quote_at_most_200_bytes_of_a_value() {
        let huge = "v".repeat(500_000);
        let bodies = [
            format!(r#"{{"version":"{huge}","groupKey":"g","status":"firing","alerts":[]}}"#),
            format!(r#"{{"version":"4","groupKey":"g","status":"{huge}","alerts":[]}}"#),
            format!(
                r#"{{"version":"4","groupKey":"g","status":"firing","truncatedAlerts":"{huge}","alerts":[]}}"#
            ),
            format!(
                r#"{{"version":"4","groupKey":"g","status":"firing","alerts":[{{"status":"firing","labels":{{"{huge}":1}},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"ab"}}]}}"#
            ),
        ];
        for body in bodies {
            let error = parse_webhook(body.as_bytes()).expect_err("refused");
            let text = error.to_string();
            assert!(text.len() < 700, "{} bytes: {}", text.len(), &text[..300]);
            assert!(error.field().unwrap_or("").len() < 300);
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_webhook(&body);
        }
    }
}
