//! The ntfy destination: the verdict on the operator's phone through a self-hosted ntfy server,
//! as Cabalmail's own `alert_sink` pushes alerts there. One notification per verdict (or
//! failed triage) and one on resolution: title from the alertname and the verdict, the short
//! annotation as the body (`report::render::phone`), priority from the `severity` label
//! (`ntfy.priority_*`), `Click` to the episode (else the runbook), up to three `view` actions.
//!
//! Exactly once: every publish carries a tag naming its outbox row (`ct-<episode>-<row>`), and
//! ntfy's message `id` is stored as the row's reference. A row in doubt (an attempt that may
//! have published without its outcome being recorded) first polls the topic's cache
//! (`GET /<topic>/json?poll=1&since=…`, from a minute before its window of doubt) for that tag,
//! and publishes only when it is not there. If the poll itself fails (the server keeps no
//! cache, the token may not read), it publishes anyway: at least once beats never.

mod api;

use async_trait::async_trait;

pub use api::{find_tagged, NtfyApi, NtfyAuth, Publish, ViewAction};

use super::{
    failpoint, stored_report, with_annotation, DeliveryContext, DeliveryError, Destination, Sent,
};
use crate::alert::AlertStatus;
use crate::config::{Config, NtfyConfig, RotatingSecret, Rotation};
use crate::ledger::{ClaimedDelivery, DeliveryKind, EpisodeState};
use crate::report::render::phone::{self, PhoneLimits};

/// The destination name (delivery rows and the `destination` metric label).
pub const DESTINATION: &str = "ntfy";

/// ntfy's default message limit is 4096 bytes; the body stays well under it in characters
/// that may take several bytes.
const LIMITS: PhoneLimits = PhoneLimits {
    title: 200,
    body: 1500,
    url: 1000,
};

/// How far ntfy's clock may be from ours, in seconds.
const CLOCK_MARGIN_SECS: i64 = 60;

pub struct Ntfy {
    api: NtfyApi,
    config: NtfyConfig,
}

impl Ntfy {
    /// `None` when ntfy is not configured (`ntfy.base_url` and `ntfy.topic`).
    pub fn from_config(http: reqwest::Client, config: &NtfyConfig) -> Option<Self> {
        let (Some(base_url), Some(topic)) = (&config.base_url, &config.topic) else {
            return None;
        };
        let auth = match (&config.token, &config.username, &config.password) {
            (Some(token), _, _) => NtfyAuth::Token(RotatingSecret::new(token.clone())),
            (None, Some(username), Some(password)) => NtfyAuth::Basic {
                username: username.clone(),
                password: RotatingSecret::new(password.clone()),
            },
            _ => NtfyAuth::None,
        };
        Some(Ntfy {
            api: NtfyApi::new(http, base_url, topic, auth),
            config: config.clone(),
        })
    }

    fn priority(&self, delivery: &ClaimedDelivery) -> u8 {
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
}

/// The tag that names an outbox row's notification, so that a later attempt can find it.
pub fn marker(delivery: &ClaimedDelivery) -> String {
    format!("ct-{}-{}", delivery.episode.id, delivery.id)
}

#[async_trait]
impl Destination for Ntfy {
    fn name(&self) -> &'static str {
        DESTINATION
    }

    fn rotate_secrets(&self, config: &Config) -> Vec<(&'static str, Rotation)> {
        match self.api.auth() {
            NtfyAuth::None => Vec::new(),
            NtfyAuth::Token(token) => {
                vec![("ntfy.token", token.rotate_to(config.ntfy.token.as_ref()))]
            }
            NtfyAuth::Basic { password, .. } => {
                vec![(
                    "ntfy.password",
                    password.rotate_to(config.ntfy.password.as_ref()),
                )]
            }
        }
    }

    /// The verdict (or the failure), a fresh verdict that changed (`phone_skip`) and the
    /// resolution: what an operator on the phone needs.
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
        if delivery.kind == DeliveryKind::Resolved
            && matches!(
                delivery.episode.state,
                EpisodeState::NoRunbook | EpisodeState::Skipped
            )
        {
            return Ok(Sent::Skipped(
                "no verdict was sent to ntfy for this episode".into(),
            ));
        }
        let report = stored_report(delivery)?;
        if let Some(reason) = super::phone_skip(delivery, report.as_ref()) {
            return Ok(Sent::Skipped(reason.into()));
        }
        let message = with_annotation(delivery, report.as_ref(), context.settings, |a| {
            phone::message(a, LIMITS)
        });
        let marker = marker(delivery);
        if let Some(doubt) = delivery.in_doubt {
            match self
                .api
                .find(&marker, doubt.from.unix_timestamp() - CLOCK_MARGIN_SECS)
                .await
            {
                Ok(Some(id)) => {
                    tracing::info!(episode = %delivery.episode.id, %id, "found the ntfy message an interrupted attempt published; not publishing again");
                    return Ok(Sent::Delivered(Some(id)));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(episode = %delivery.episode.id, %error, "cannot look for an earlier ntfy message; publishing, which may duplicate it")
                }
            }
        }
        let tag = match (delivery.kind, delivery.episode.state) {
            (DeliveryKind::Resolved, _) => "white_check_mark",
            (_, EpisodeState::Failed) => "warning",
            _ => "rotating_light",
        };
        let click = context
            .settings
            .public_url
            .is_some()
            .then(|| message.links.iter().find(|(label, _)| label == "Episode"))
            .flatten()
            .or_else(|| message.links.first())
            .map(|(_, url)| url.clone());
        let publish = Publish {
            title: message.title,
            message: message.body,
            priority: self.priority(delivery),
            tags: vec![tag.to_string(), "cabal-triage".into(), marker],
            click,
            actions: message
                .links
                .into_iter()
                .filter(|(label, _)| label != "Episode")
                .take(3)
                .map(|(label, url)| ViewAction { label, url })
                .collect(),
        };
        let id = self.api.publish(&publish).await?;
        failpoint::hit(failpoint::NTFY_AFTER_PUBLISH).await;
        Ok(Sent::Delivered(Some(id)))
    }
}
