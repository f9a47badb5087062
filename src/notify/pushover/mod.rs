//! The Pushover destination: the verdict on the phone of whoever is on call, for the severities
//! configured (`pushover.severities`, critical by default, as Cabalmail's `alert_sink` pages),
//! within Pushover's limits (title 250, message 1024, url 512 characters), priority from the
//! `severity` label (`pushover.priority_*`), `url` to the runbook (else the first evidence link,
//! else the episode). One message per verdict (or failed triage) and one on resolution. The
//! request id Pushover answers with is stored as the row's reference.
//!
//! A message in doubt is not resent blindly. Pushover has no way to ask whether a message
//! arrived, so each failed attempt records whether it certainly did not reach Pushover (no
//! connection, or an HTTP answer: Pushover saw the request and refused or failed it) by
//! counting such clean failures in the episode's references (`pushover.clean.<row>`). When a
//! row comes back in doubt, it is sent again only if every earlier attempt failed cleanly;
//! otherwise (a timeout after the request left, a crash or a lost lease mid-attempt) the row
//! ends `skipped` with the reason, because a priority-1 page sent twice at night costs more than
//! one lost here, where Slack, ntfy and PagerDuty still carry the verdict exactly once.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::http::{body_excerpt, retry_after, transport_error};
use super::{
    failpoint, stored_report, with_annotation, DeliveryContext, DeliveryError, Destination, Sent,
};
use crate::alert::AlertStatus;
use crate::config::{Config, PushoverConfig, RotatingSecret, Rotation};
use crate::ledger::{ClaimedDelivery, DeliveryKind, EpisodeState};
use crate::report::render::phone::{self, PhoneLimits};

/// The destination name (delivery rows and the `destination` metric label).
pub const DESTINATION: &str = "pushover";

/// Pushover's documented limits.
pub const LIMITS: PhoneLimits = PhoneLimits {
    title: 250,
    body: 1024,
    url: 512,
};
/// `url_title` limit.
const MAX_URL_TITLE: usize = 100;

pub struct Pushover {
    http: reqwest::Client,
    base_url: String,
    config: PushoverConfig,
    /// `pushover.app_token` and `pushover.user_key`, replaced on SIGHUP.
    app_token: RotatingSecret,
    user_key: RotatingSecret,
}

/// How an attempt failed: whether the request may have reached Pushover.
enum Failure {
    /// Certainly not delivered (no connection, or Pushover answered).
    Clean(DeliveryError),
    /// It may have been delivered (timed out or cut off after the request left).
    Unsure(DeliveryError),
}

impl Pushover {
    /// `None` when Pushover is not configured (both keys).
    pub fn from_config(http: reqwest::Client, config: &PushoverConfig) -> Option<Self> {
        let (Some(app_token), Some(user_key)) = (&config.app_token, &config.user_key) else {
            return None;
        };
        Some(Pushover {
            http,
            base_url: config.api_base_url.trim_end_matches('/').to_string(),
            config: config.clone(),
            app_token: RotatingSecret::new(app_token.clone()),
            user_key: RotatingSecret::new(user_key.clone()),
        })
    }

    fn pages_for(&self, delivery: &ClaimedDelivery) -> bool {
        let severity = delivery
            .alert
            .labels
            .get("severity")
            .map(String::as_str)
            .unwrap_or("");
        self.config.severities.iter().any(|s| s == severity)
    }

    fn priority(&self, delivery: &ClaimedDelivery) -> i8 {
        if delivery.kind == DeliveryKind::Resolved
            || delivery.episode.status == AlertStatus::Resolved
        {
            return self.config.priority_resolved;
        }
        match delivery.alert.labels.get("severity").map(String::as_str) {
            Some("critical") => self.config.priority_critical,
            _ => self.config.priority_warning,
        }
    }

    async fn send(&self, form: &[(&str, String)]) -> Result<String, Failure> {
        let (token, user) = (self.app_token.current(), self.user_key.current());
        let mut fields: Vec<(&str, &str)> =
            vec![("token", token.expose()), ("user", user.expose())];
        fields.extend(form.iter().map(|(k, v)| (*k, v.as_str())));
        let body = serde_urlencoded::to_string(&fields).map_err(|e| {
            Failure::Clean(DeliveryError::permanent(format!(
                "cannot encode the Pushover message: {e}"
            )))
        })?;
        let what = "message";
        let response = self
            .http
            .post(format!("{}/1/messages.json", self.base_url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                let clean = e.is_connect();
                let error = transport_error("Pushover", what, e);
                if clean {
                    Failure::Clean(error)
                } else {
                    Failure::Unsure(error)
                }
            })?;
        let status = response.status();
        let wait = retry_after(response.headers());
        let text = response
            .text()
            .await
            .map_err(|e| Failure::Unsure(transport_error("Pushover", what, e)))?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() && answer["status"] == 1 {
            return answer["request"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| {
                    Failure::Clean(DeliveryError::permanent(
                        "Pushover accepted the message without a request id; check pushover.api_base_url",
                    ))
                });
        }
        let errors = answer["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| body_excerpt(&text));
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(Failure::Clean(DeliveryError::Transient {
                reason: format!(
                    "Pushover answered HTTP {} to the {what}: {}",
                    status.as_u16(),
                    body_excerpt(&errors)
                ),
                retry_after: wait.or(Some(Duration::from_secs(5))),
            }));
        }
        Err(Failure::Clean(DeliveryError::permanent(format!(
            "Pushover refused the {what} with HTTP {}: {}; check pushover.app_token and pushover.user_key",
            status.as_u16(),
            body_excerpt(&errors)
        ))))
    }
}

/// The reference key counting a row's clean failures.
pub fn clean_ref(row: i64) -> String {
    format!("pushover.clean.{row}")
}

#[async_trait]
impl Destination for Pushover {
    fn name(&self) -> &'static str {
        DESTINATION
    }

    fn rotate_secrets(&self, config: &Config) -> Vec<(&'static str, Rotation)> {
        vec![
            (
                "pushover.app_token",
                self.app_token.rotate_to(config.pushover.app_token.as_ref()),
            ),
            (
                "pushover.user_key",
                self.user_key.rotate_to(config.pushover.user_key.as_ref()),
            ),
        ]
    }

    fn wants(&self, kind: DeliveryKind) -> bool {
        matches!(
            kind,
            DeliveryKind::Verdict
                | DeliveryKind::TriageFailed
                | DeliveryKind::Resolved
                | DeliveryKind::Retriaged
        )
    }

    async fn deliver(
        &self,
        delivery: &ClaimedDelivery,
        context: &DeliveryContext<'_>,
    ) -> Result<Sent, DeliveryError> {
        if !self.pages_for(delivery) {
            return Ok(Sent::Skipped(
                "the alert's severity is not in pushover.severities".into(),
            ));
        }
        if delivery.kind == DeliveryKind::Resolved
            && matches!(
                delivery.episode.state,
                EpisodeState::NoRunbook | EpisodeState::Skipped
            )
        {
            return Ok(Sent::Skipped(
                "no verdict was sent to Pushover for this episode".into(),
            ));
        }
        let clean_key = clean_ref(delivery.id);
        let clean: u32 = delivery
            .refs
            .get(&clean_key)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if delivery.in_doubt.is_some() && clean < delivery.attempt.saturating_sub(1) {
            return Ok(Sent::Skipped(
                "an earlier attempt may have reached Pushover (it timed out or was interrupted after the request left) and Pushover cannot be asked; not sent again, so as not to page twice".into(),
            ));
        }
        let report = stored_report(delivery)?;
        if let Some(reason) = super::phone_skip(delivery, report.as_ref()) {
            return Ok(Sent::Skipped(reason.into()));
        }
        let message = with_annotation(delivery, report.as_ref(), context.settings, |a| {
            phone::message(a, LIMITS)
        });
        let mut form = vec![
            ("title", message.title),
            ("message", message.body),
            ("priority", self.priority(delivery).to_string()),
            ("html", "0".to_string()),
        ];
        if let Some((label, url)) = message.links.first() {
            form.push(("url", url.clone()));
            form.push((
                "url_title",
                crate::report::render::escape::truncate(label, MAX_URL_TITLE),
            ));
        }
        match self.send(&form).await {
            Ok(request) => {
                failpoint::hit(failpoint::PUSHOVER_AFTER_SEND).await;
                Ok(Sent::Delivered(Some(request)))
            }
            Err(Failure::Clean(error)) => {
                context.keep_ref(&clean_key, &(clean + 1).to_string());
                Err(error)
            }
            Err(Failure::Unsure(error)) => Err(error),
        }
    }
}
