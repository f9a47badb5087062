//! The Slack destinations.
//!
//! Bot mode (`SlackBot`, Web API): one message per episode. It is posted when triage starts,
//! edited in place with the verdict (or the triage failure) and on resolve, and repeats and the
//! resolution get thread replies under it. The message's channel ID and `ts` are stored per
//! episode in the ledger (`slack.channel`, `slack.ts`) with the outcome of the post.
//!
//! Crash safety: a process can die after Slack accepted the post and before the `ts` is stored,
//! a lease can run out under a slow ledger, a post can time out after Slack took it. The row
//! then comes back with a window of doubt (`ClaimedDelivery::in_doubt`: from the first such
//! attempt's claim to the end of the last one), and before posting again the bot looks for its
//! own message among the channel's messages in that window, give or take a minute
//! (`conversations.history` with `oldest` and `latest`, by the episode marker in the message
//! metadata). The window keeps the lookup to the few messages posted around the lost attempt,
//! however long the row then waited behind a backlog. The channel and `ts` are stored with the
//! row's outcome, in the same ledger write (`DeliveryContext::keep_ref`), so the same lookup
//! covers a crash before that write. Thread replies (repeats, the resolution) carry their
//! outbox row's marker, and a row in doubt looks for its reply the same way
//! (`conversations.replies`). If a lookup itself fails (for example the token lacks
//! `channels:history`), the bot posts anyway: at least once beats never, and the reason is
//! logged.
//!
//! Webhook mode (`SlackWebhook`): one post per finished triage, no edits and no threads (an
//! incoming webhook returns no `ts`).

pub mod actions;
mod api;
mod errors;
pub mod socket;

use async_trait::async_trait;

pub use api::{Marker, MessageRef, SlackApi, EVENT_TYPE, REPLY_EVENT_TYPE};

use super::http::{body_excerpt, transient_status, transport_error};
use super::{
    failpoint, retriage_changes, stored_report, with_annotation, DeliveryContext, DeliveryError,
    Destination, Sent,
};
use crate::config::{Config, RotatingSecret, Rotation, Secret, SlackConfig};
use crate::ledger::{ClaimedDelivery, DeliveryKind, DoubtWindow};
use crate::report::render::slack as render;

/// How far Slack's clock (which stamps a message's `ts`) may be from ours, in seconds.
const CLOCK_MARGIN_SECS: i64 = 60;

/// The destination names of the two modes (delivery rows and the `destination` metric label).
pub const BOT_DESTINATION: &str = "slack";
pub const WEBHOOK_DESTINATION: &str = "slack-webhook";

/// Ledger reference keys for the episode's message.
pub const REF_CHANNEL: &str = "slack.channel";
pub const REF_TS: &str = "slack.ts";

pub struct SlackBot {
    api: SlackApi,
    config: SlackConfig,
}

impl SlackBot {
    pub fn new(http: reqwest::Client, config: &SlackConfig, token: Secret) -> Self {
        SlackBot {
            api: SlackApi::new(http, &config.api_base_url, token),
            config: config.clone(),
        }
    }

    fn parent(delivery: &ClaimedDelivery) -> Option<MessageRef> {
        Some(MessageRef {
            channel: delivery.refs.get(REF_CHANNEL)?.clone(),
            ts: delivery.refs.get(REF_TS)?.clone(),
        })
    }

    /// Posts the episode's message, unless an interrupted earlier attempt already did.
    async fn post_parent(
        &self,
        delivery: &ClaimedDelivery,
        message: &render::SlackMessage,
        context: &DeliveryContext<'_>,
    ) -> Result<Sent, DeliveryError> {
        let channel = self
            .config
            .channel_for(&delivery.alert.labels)
            .ok_or_else(|| DeliveryError::permanent("no Slack channel configured (slack.channel)"))?
            .to_string();
        if let Some(doubt) = delivery.in_doubt {
            match self
                .api
                .find_episode_message(&channel, &delivery.episode.id, lookup_window(doubt))
                .await
            {
                Ok(Some(found)) => {
                    tracing::info!(episode = %delivery.episode.id, ts = %found.ts, "found the message an interrupted attempt posted; not posting again");
                    store_parent(context, &found);
                    self.api.update(&found, message).await?;
                    return Ok(Sent::Delivered(Some(format!(
                        "{}/{}",
                        found.channel, found.ts
                    ))));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(episode = %delivery.episode.id, %error, "cannot look for an earlier post (needs channels:history); posting, which may duplicate a message")
                }
            }
        }
        let posted = self
            .api
            .post_message(
                &channel,
                message,
                None,
                Some(Marker::Episode(&delivery.episode.id)),
            )
            .await?;
        failpoint::hit(failpoint::SLACK_AFTER_POST).await;
        store_parent(context, &posted);
        Ok(Sent::Delivered(Some(format!(
            "{}/{}",
            posted.channel, posted.ts
        ))))
    }

    /// Posts `reply` under the episode's message, unless an earlier attempt at this row already
    /// did (looked for, by the row's marker, only when the row has a window of doubt).
    async fn reply_once(
        &self,
        delivery: &ClaimedDelivery,
        parent: &MessageRef,
        reply: &render::SlackMessage,
    ) -> Result<Sent, DeliveryError> {
        let episode = delivery.episode.id.as_str();
        if let Some(doubt) = delivery.in_doubt {
            match self
                .api
                .find_reply(parent, episode, delivery.id, lookup_window(doubt))
                .await
            {
                Ok(Some(found)) => {
                    tracing::info!(%episode, ts = %found.ts, "found the reply an interrupted attempt posted; not posting again");
                    return Ok(Sent::Delivered(Some(format!(
                        "{}/{}",
                        found.channel, found.ts
                    ))));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%episode, %error, "cannot look for an earlier reply (needs channels:history); posting, which may duplicate it")
                }
            }
        }
        let marker = Marker::Reply {
            episode,
            row: delivery.id,
        };
        let posted = self
            .api
            .post_message(&parent.channel, reply, Some(&parent.ts), Some(marker))
            .await?;
        failpoint::hit(failpoint::SLACK_AFTER_REPLY).await;
        Ok(Sent::Delivered(Some(format!(
            "{}/{}",
            posted.channel, posted.ts
        ))))
    }
}

/// Where to look for what an earlier attempt may have posted: its window of doubt, with a
/// minute's margin either side (Slack stamps `ts` with its own clock).
fn lookup_window(doubt: DoubtWindow) -> (i64, i64) {
    (
        (doubt.from.unix_timestamp() - CLOCK_MARGIN_SECS).max(0),
        doubt.to.unix_timestamp() + CLOCK_MARGIN_SECS,
    )
}

/// The message's channel and `ts` go into the ledger with the row's outcome, in one write.
fn store_parent(context: &DeliveryContext<'_>, at: &MessageRef) {
    context.keep_ref(REF_CHANNEL, &at.channel);
    context.keep_ref(REF_TS, &at.ts);
}

#[async_trait]
impl Destination for SlackBot {
    fn name(&self) -> &'static str {
        BOT_DESTINATION
    }

    fn rotate_secrets(&self, config: &Config) -> Vec<(&'static str, Rotation)> {
        let rotation = self.api.token().rotate_to(config.slack.bot_token.as_ref());
        vec![("slack.bot_token", rotation)]
    }

    /// One message per episode kept up to date, with replies in its thread: every change.
    fn wants(&self, _kind: DeliveryKind) -> bool {
        true
    }

    async fn deliver(
        &self,
        delivery: &ClaimedDelivery,
        context: &DeliveryContext<'_>,
    ) -> Result<Sent, DeliveryError> {
        let report = stored_report(delivery)?;
        let settings = context.settings;
        let mut message = with_annotation(delivery, report.as_ref(), settings, render::message);
        // With Socket Mode, a firing episode's verdict carries the buttons.
        if self.config.app_token.is_some()
            && report.is_some()
            && delivery.episode.status == crate::alert::AlertStatus::Firing
            && message.blocks.len() < render::MAX_BLOCKS
        {
            message
                .blocks
                .push(actions::verdict_buttons(&delivery.episode.id));
        }
        let parent = Self::parent(delivery);
        match (delivery.kind, parent) {
            (DeliveryKind::Started, Some(_)) => Ok(Sent::Skipped(
                "the episode's message is already posted".into(),
            )),
            (
                DeliveryKind::Started
                | DeliveryKind::Verdict
                | DeliveryKind::TriageFailed
                | DeliveryKind::Retriaged,
                None,
            ) => self.post_parent(delivery, &message, context).await,
            (DeliveryKind::Verdict | DeliveryKind::TriageFailed, Some(parent)) => {
                self.api.update(&parent, &message).await?;
                Ok(Sent::Delivered(Some(format!(
                    "{}/{}",
                    parent.channel, parent.ts
                ))))
            }
            (DeliveryKind::Repeat | DeliveryKind::Resolved, None) => Ok(Sent::Skipped(
                "no episode message to reply to (it was never posted)".into(),
            )),
            (DeliveryKind::Repeat, Some(parent)) => {
                let reply =
                    with_annotation(delivery, report.as_ref(), settings, render::repeat_reply);
                self.reply_once(delivery, &parent, &reply).await
            }
            (DeliveryKind::Retriaged, Some(parent)) => {
                // The message shows the fresh verdict; the reply says what changed. Edit first
                // (idempotent), then the reply, found by its marker when in doubt.
                self.api.update(&parent, &message).await?;
                let changes = retriage_changes(delivery, report.as_ref());
                let reply = with_annotation(delivery, report.as_ref(), settings, |a| {
                    render::retriage_reply(a, changes.as_deref())
                });
                self.reply_once(delivery, &parent, &reply).await
            }
            (DeliveryKind::Resolved, Some(parent)) => {
                // Edit first (idempotent), then the reply: a retry after a failed reply edits
                // again, harmlessly.
                self.api.update(&parent, &message).await?;
                let reply =
                    with_annotation(delivery, report.as_ref(), settings, render::resolved_reply);
                self.reply_once(delivery, &parent, &reply).await
            }
        }
    }
}

/// Incoming-webhook mode: one post per finished triage.
pub struct SlackWebhook {
    http: reqwest::Client,
    url: RotatingSecret,
}

impl SlackWebhook {
    pub fn new(http: reqwest::Client, url: Secret) -> Self {
        SlackWebhook {
            http,
            url: RotatingSecret::new(url),
        }
    }
}

#[async_trait]
impl Destination for SlackWebhook {
    fn name(&self) -> &'static str {
        WEBHOOK_DESTINATION
    }

    fn rotate_secrets(&self, config: &Config) -> Vec<(&'static str, Rotation)> {
        let rotation = self.url.rotate_to(config.slack.webhook_url.as_ref());
        vec![("slack.webhook_url", rotation)]
    }

    /// An incoming webhook can neither edit nor thread: one post per finished triage.
    fn wants(&self, kind: DeliveryKind) -> bool {
        kind == DeliveryKind::Verdict
    }

    async fn deliver(
        &self,
        delivery: &ClaimedDelivery,
        context: &DeliveryContext<'_>,
    ) -> Result<Sent, DeliveryError> {
        let report = stored_report(delivery)?;
        let message = with_annotation(delivery, report.as_ref(), context.settings, render::message);
        let what = "incoming webhook post";
        let response = self
            .http
            .post(self.url.current().expose())
            .header("content-type", "application/json; charset=utf-8")
            .body(serde_json::json!({"text": message.text, "blocks": message.blocks}).to_string())
            .send()
            .await
            .map_err(|e| transport_error("Slack", what, e))?;
        let status = response.status();
        if let Some(error) = transient_status("Slack", what, status, response.headers()) {
            return Err(error);
        }
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(Sent::Delivered(None));
        }
        Err(DeliveryError::permanent(format!(
            "Slack refused the {what} with HTTP {}: {}; check slack.webhook_url",
            status.as_u16(),
            body_excerpt(&body)
        )))
    }
}
