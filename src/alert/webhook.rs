//! The Alertmanager webhook payload, version 4, as `notify/webhook` sends it.
//!
//! Parsing is strict about what the service relies on (`version`, `groupKey`, `status`, and per
//! alert `status`, `labels`, `startsAt`, `fingerprint`) and lenient about everything else: unknown
//! fields are ignored and fields that only some Alertmanager versions send are optional. Errors
//! name the offending field so a 400 tells the operator what to fix.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

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
    #[error("field `version`: expected \"4\", got {0:?}; only Alertmanager webhook payload version 4 is supported")]
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
        Some(other) => return Err(WebhookError::Version(other.to_string())),
    }
    let payload = deserialize_with_paths(value)?;
    for (index, alert) in payload.alerts.iter().enumerate() {
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
        WebhookError::Field {
            field,
            reason: message,
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

    proptest::proptest! {
        #[test]
        fn never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_webhook(&body);
        }
    }
}
