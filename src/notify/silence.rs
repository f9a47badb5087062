//! Alertmanager silences (API v2), for the Slack buttons: one silence for an episode's alert,
//! created with `POST /api/v2/silences` and expired with `DELETE /api/v2/silence/{id}`. The
//! Alertmanager is the configured one (`alertmanager.url`, with `alertmanager.token` when a proxy
//! in front of it asks for a bearer token); the webhook's `externalURL` is never used. The
//! silence matches the labels it is given, each as an equality matcher: the caller gives the
//! alert group's labels (`alert::group_matchers`, always a subset of the alert's own labels), or
//! the alert's labels when the group cannot be read; `createdBy` names who asked and the comment
//! links the episode, both through the one sanitizer and redactor.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::http::body_excerpt;
use crate::config::{AlertmanagerConfig, Secret};
use crate::report::redact::redact;
use crate::report::sanitize::sanitize_line;

/// More labels than any real alert has: a request beyond it is refused before it is sent.
const MAX_MATCHERS: usize = 64;
/// The longest label value sent as a matcher (Alertmanager has no limit; the request stays small).
const MAX_MATCHER_VALUE_CHARS: usize = 1024;
const MAX_CREATED_BY_CHARS: usize = 100;
const MAX_COMMENT_CHARS: usize = 500;
/// The longest silence this client makes.
pub const MAX_SILENCE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error(
        "silences need Alertmanager's API: set alertmanager.url (CABAL_TRIAGE_ALERTMANAGER_URL)"
    )]
    NotConfigured,
    #[error("cannot {what}: {reason}; check alertmanager.url and that cabal-triage can reach it (in Cabalmail it is inside the VPC)")]
    Unreachable { what: &'static str, reason: String },
    #[error("Alertmanager refused to {what} with HTTP {status}: {body}{hint}")]
    Refused {
        what: &'static str,
        status: u16,
        body: String,
        hint: &'static str,
    },
    #[error("Alertmanager's answer to {what} cannot be read ({reason}); is alertmanager.url an Alertmanager (API v2)?")]
    Malformed { what: &'static str, reason: String },
    #[error("cannot silence this alert: {0}")]
    Unsuitable(String),
    #[error("not a silence id Alertmanager hands out (a UUID): {0}")]
    InvalidId(String),
}

/// One silence to create.
#[derive(Debug, Clone)]
pub struct SilenceRequest<'a> {
    /// The labels to match, each an equality matcher (the alert group's, or the alert's).
    pub labels: &'a BTreeMap<String, String>,
    pub starts_at: OffsetDateTime,
    pub duration: Duration,
    /// Who asked (the Slack user's name).
    pub created_by: &'a str,
    pub episode_id: &'a str,
    /// The episode's API URL, when `server.public_url` is set.
    pub episode_url: Option<&'a str>,
}

/// A silence Alertmanager accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: String,
    pub ends_at: OffsetDateTime,
}

impl SilenceRequest<'_> {
    pub fn ends_at(&self) -> OffsetDateTime {
        self.starts_at + self.duration.min(MAX_SILENCE)
    }

    /// The body of `POST /api/v2/silences` (pure; refuses what it cannot send faithfully).
    pub fn body(&self) -> Result<Value, SilenceError> {
        if self.labels.is_empty() {
            return Err(SilenceError::Unsuitable(
                "the alert has no labels, so a silence would match every alert".into(),
            ));
        }
        if self.labels.len() > MAX_MATCHERS {
            return Err(SilenceError::Unsuitable(format!(
                "{} labels, more than the {MAX_MATCHERS} a silence here may match",
                self.labels.len()
            )));
        }
        if let Some((name, _)) = self
            .labels
            .iter()
            .find(|(_, value)| value.chars().count() > MAX_MATCHER_VALUE_CHARS)
        {
            return Err(SilenceError::Unsuitable(format!(
                "the value of label {} is longer than {MAX_MATCHER_VALUE_CHARS} characters",
                one_line(name, 80)
            )));
        }
        if self.duration.is_zero() {
            return Err(SilenceError::Unsuitable("a silence must last".into()));
        }
        let matchers: Vec<Value> = self
            .labels
            .iter()
            .map(|(name, value)| {
                json!({"name": name, "value": value, "isRegex": false, "isEqual": true})
            })
            .collect();
        let link = self
            .episode_url
            .map(|url| format!(" ({url})"))
            .unwrap_or_default();
        let comment = format!(
            "Silenced from cabal-triage for episode {}{link}",
            self.episode_id
        );
        Ok(json!({
            "matchers": matchers,
            "startsAt": rfc3339(self.starts_at),
            "endsAt": rfc3339(self.ends_at()),
            "createdBy": one_line(self.created_by, MAX_CREATED_BY_CHARS),
            "comment": one_line(&comment, MAX_COMMENT_CHARS),
        }))
    }
}

/// Text for Alertmanager's UI: one line, no invisible characters, addresses redacted, bounded.
fn one_line(text: &str, max_chars: usize) -> String {
    let clean = redact(&sanitize_line(text), false).into_owned();
    if clean.trim().is_empty() {
        return "cabal-triage".into();
    }
    clean.chars().take(max_chars).collect()
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A silence id as Alertmanager makes them (a UUID); anything else is refused before it is put
/// in a URL path.
pub fn valid_silence_id(id: &str) -> Result<&str, SilenceError> {
    let ok = (8..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if ok {
        Ok(id)
    } else {
        Err(SilenceError::InvalidId(one_line(id, 80)))
    }
}

/// Alertmanager's API v2 for silences.
pub struct SilenceClient {
    http: reqwest::Client,
    base_url: String,
    token: Option<Secret>,
}

#[derive(Deserialize)]
struct Created {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

impl SilenceClient {
    /// None when `alertmanager.url` is not set.
    pub fn from_config(http: reqwest::Client, config: &AlertmanagerConfig) -> Option<Self> {
        Some(SilenceClient {
            http,
            base_url: config.url.as_deref()?.trim_end_matches('/').to_string(),
            token: config.token.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match &self.token {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }

    /// Creates the silence; its id and end.
    pub async fn create(&self, silence: &SilenceRequest<'_>) -> Result<Silence, SilenceError> {
        const WHAT: &str = "create a silence";
        let body = silence.body()?;
        let response = self
            .request(reqwest::Method::POST, "/api/v2/silences")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| unreachable(WHAT, e))?;
        let text = read_answer(WHAT, response).await?;
        let created: Created =
            serde_json::from_str(&text).map_err(|e| SilenceError::Malformed {
                what: WHAT,
                reason: e.to_string(),
            })?;
        let id = valid_silence_id(&created.silence_id).map_err(|e| SilenceError::Malformed {
            what: WHAT,
            reason: e.to_string(),
        })?;
        Ok(Silence {
            id: id.to_string(),
            ends_at: silence.ends_at(),
        })
    }

    /// Expires the silence (Alertmanager keeps it, expired, for its retention).
    pub async fn expire(&self, id: &str) -> Result<(), SilenceError> {
        const WHAT: &str = "expire a silence";
        let id = valid_silence_id(id)?;
        let response = self
            .request(reqwest::Method::DELETE, &format!("/api/v2/silence/{id}"))
            .send()
            .await
            .map_err(|e| unreachable(WHAT, e))?;
        read_answer(WHAT, response).await.map(|_| ())
    }
}

fn unreachable(what: &'static str, error: reqwest::Error) -> SilenceError {
    // Without the URL: it may carry credentials.
    let reason = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else {
        error.without_url().to_string()
    };
    SilenceError::Unreachable { what, reason }
}

async fn read_answer(
    what: &'static str,
    response: reqwest::Response,
) -> Result<String, SilenceError> {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        return Ok(text);
    }
    let hint = match status.as_u16() {
        401 | 403 => "; check alertmanager.token (or the proxy in front of Alertmanager)",
        404 => "; check alertmanager.url (the silence may also be gone already)",
        400 | 422 => "; Alertmanager did not accept the silence as sent",
        _ => "",
    };
    Err(SilenceError::Refused {
        what,
        status: status.as_u16(),
        body: body_excerpt(&text),
        hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("alertname".to_string(), "SendmailDeferredSpike".to_string()),
            ("severity".to_string(), "warning".to_string()),
        ])
    }

    #[test]
    fn body_has_one_equality_matcher_per_label_and_links_the_episode() {
        let labels = labels();
        let request = SilenceRequest {
            labels: &labels,
            starts_at: datetime!(2026-12-07 18:00:00 UTC),
            duration: Duration::from_secs(2 * 3600),
            created_by: "jane\u{202e}\u{0007} doe",
            episode_id: "ep-1",
            episode_url: Some("https://triage.example/api/v1/episodes/ep-1"),
        };
        let body = request.body().unwrap();
        assert_eq!(body["matchers"].as_array().unwrap().len(), 2);
        assert_eq!(
            body["matchers"][0],
            json!({"name": "alertname", "value": "SendmailDeferredSpike", "isRegex": false, "isEqual": true})
        );
        assert_eq!(body["startsAt"], "2026-12-07T18:00:00Z");
        assert_eq!(body["endsAt"], "2026-12-07T20:00:00Z");
        let created_by = body["createdBy"].as_str().unwrap();
        assert!(!created_by.contains('\u{202e}') && !created_by.contains('\u{0007}'));
        assert!(created_by.contains("jane"));
        assert!(body["comment"]
            .as_str()
            .unwrap()
            .contains("https://triage.example/api/v1/episodes/ep-1"));
    }

    #[test]
    fn hostile_or_oversized_requests_are_refused_before_sending() {
        let empty = BTreeMap::new();
        let base = |labels| SilenceRequest {
            labels,
            starts_at: datetime!(2026-12-07 18:00:00 UTC),
            duration: Duration::from_secs(60),
            created_by: "",
            episode_id: "ep-1",
            episode_url: None,
        };
        assert!(matches!(
            base(&empty).body(),
            Err(SilenceError::Unsuitable(_))
        ));
        let many: BTreeMap<String, String> = (0..100)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .collect();
        assert!(base(&many).body().is_err());
        let long = BTreeMap::from([("alertname".to_string(), "x".repeat(5000))]);
        assert!(base(&long).body().is_err());
        let labels = labels();
        let body = base(&labels).body().unwrap();
        assert_eq!(
            body["createdBy"], "cabal-triage",
            "an empty name is not sent"
        );
        let forever = SilenceRequest {
            duration: Duration::from_secs(u32::MAX.into()),
            ..base(&labels)
        };
        assert_eq!(forever.ends_at(), forever.starts_at + MAX_SILENCE);
    }

    #[test]
    fn only_uuid_like_ids_reach_a_url() {
        assert!(valid_silence_id("0b4f3c1e-2f0a-4b7e-9d61-1c2f3e4d5a6b").is_ok());
        for bad in [
            "",
            "../../api/v2/status",
            "abc",
            "0b4f3c1e/x",
            "0b4f3c1e?x=1",
            &"a".repeat(65),
        ] {
            assert!(valid_silence_id(bad).is_err(), "{bad}");
        }
    }
}
