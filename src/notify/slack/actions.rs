//! What the buttons on the verdict message do (Socket Mode delivers the presses, `socket.rs`):
//! "Silence 2 h" / "Silence 8 h" create an Alertmanager silence of the alert group's labels
//! (read back from the episode's `groupKey`; the alert's own labels when it cannot be read), with
//! `notify::silence`, and reply in the thread with its id, its end and an "Expire silence"
//! button; "Expire silence" expires it; "Re-run triage" claims a new triage of the episode
//! (`Ledger::claim_retriage`, whatever the verdict's age), whose verdict then edits the message
//! and replies with what changed like any fresh verdict. Only users in `slack.allowed_users`
//! may press them: anyone else gets an ephemeral "not allowed" and nothing happens. Every
//! press that acts is recorded in the ledger (`Ledger::record_operator_action`). The button
//! values are the episode id (and the silence id): checked, never trusted to choose anything
//! but which episode of the ledger is meant.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::api::{MessageRef, SlackApi};
use super::socket::{ButtonPress, PressHandler};
use crate::alert::group_matchers;
use crate::ledger::{EpisodeState, Ledger};
use crate::notify::silence::{valid_silence_id, SilenceClient, SilenceRequest};
use crate::report::redact::redact;
use crate::report::render::escape::untrusted_mrkdwn;
use crate::report::render::slack::SlackMessage;
use crate::report::sanitize::sanitize_line;

pub const SILENCE_2H: &str = "silence_2h";
pub const SILENCE_8H: &str = "silence_8h";
pub const EXPIRE_SILENCE: &str = "expire_silence";
pub const RERUN_TRIAGE: &str = "rerun_triage";

/// The buttons of a verdict message (an `actions` block), for episode `episode_id`.
pub fn verdict_buttons(episode_id: &str) -> Value {
    let button = |text: &str, action: &str| {
        json!({
            "type": "button",
            "text": {"type": "plain_text", "text": text},
            "action_id": action,
            "value": episode_id,
        })
    };
    json!({
        "type": "actions",
        "block_id": "cabal-triage-actions",
        "elements": [
            button("Silence 2 h", SILENCE_2H),
            button("Silence 8 h", SILENCE_8H),
            button("Re-run triage", RERUN_TRIAGE),
        ],
    })
}

/// Text for a Slack reply: the one sanitizer and redactor, escaped for mrkdwn, bounded.
fn slack_text(text: &str) -> String {
    untrusted_mrkdwn(text, 2900, false)
}

/// A message of one section of `text` (plain; escaped here with `slack_text`).
fn text_message(text: &str) -> SlackMessage {
    let text = slack_text(text);
    SlackMessage {
        blocks: vec![
            json!({"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": true}}),
        ],
        text,
    }
}

/// An episode id as the ledger makes them: short, plain.
fn valid_episode_id(value: &str) -> Option<&str> {
    (!value.is_empty()
        && value.len() <= 100
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    .then_some(value)
}

pub struct SlackActions {
    pub api: SlackApi,
    pub ledger: Arc<dyn Ledger>,
    pub silences: Option<SilenceClient>,
    pub allowed_users: Vec<String>,
    /// `server.public_url`, for the episode link in a silence's comment.
    pub public_url: Option<String>,
}

impl SlackActions {
    /// Whether `user` may press: listed in `slack.allowed_users`, or a member of a user group
    /// (`S…`) listed there (asked of Slack at each press, so membership changes count at once).
    async fn allowed(&self, user: &str) -> bool {
        if self.allowed_users.iter().any(|allowed| allowed == user) {
            return true;
        }
        for group in self.allowed_users.iter().filter(|id| id.starts_with('S')) {
            match self.api.usergroup_members(group).await {
                Ok(members) if members.iter().any(|member| member == user) => return true,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(group = %sanitize_line(group), %error, "cannot read a user group of slack.allowed_users (the bot needs usergroups:read)")
                }
            }
        }
        false
    }

    /// Who pressed, as plain text (sanitized, addresses redacted, bounded).
    fn who(press: &ButtonPress) -> String {
        let who = format!("{} ({})", press.user_id, press.user_name);
        redact(&sanitize_line(&who), false)
            .chars()
            .take(240)
            .collect()
    }

    /// Posts `text` (plain, escaped here for mrkdwn) in the press's thread, with `buttons` (an
    /// `actions` block) under it.
    async fn reply(&self, press: &ButtonPress, text: String, buttons: Option<Value>) {
        let mut message = text_message(&text);
        message.blocks.extend(buttons);
        if let Err(error) = self
            .api
            .post_message(&press.channel, &message, Some(&press.thread_ts), None)
            .await
        {
            tracing::warn!(%error, "Slack action: cannot reply in the thread");
        }
    }

    async fn record(&self, episode_id: &str, press: &ButtonPress, what: &str) {
        let text = format!("{} {what}", Self::who(press));
        if let Err(error) = self
            .ledger
            .record_operator_action(
                episode_id,
                &press.action_id,
                &text,
                OffsetDateTime::now_utc(),
            )
            .await
        {
            tracing::warn!(episode = %episode_id, %error, "Slack action done but not recorded in the ledger");
        }
    }

    async fn silence(&self, press: &ButtonPress, episode_id: &str, hours: u64) {
        let Some(silences) = &self.silences else {
            self.reply(
                press,
                "Cannot silence: alertmanager.url is not configured.".into(),
                None,
            )
            .await;
            return;
        };
        let detail = match self.ledger.get_episode(episode_id).await {
            Ok(Some(detail)) => detail,
            Ok(None) => {
                self.reply(
                    press,
                    "Cannot silence: the episode is not in the ledger any more.".into(),
                    None,
                )
                .await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "Slack action: ledger read failed");
                self.reply(
                    press,
                    "Cannot silence now: the ledger cannot be read; try again.".into(),
                    None,
                )
                .await;
                return;
            }
        };
        let alert_labels: BTreeMap<String, String> =
            serde_json::from_value(detail.alert["labels"].clone()).unwrap_or_default();
        // The group as Alertmanager groups it (what the message is about); the alert's own
        // labels only when the group key cannot be read back.
        let (labels, scope) = match group_matchers(&detail.summary.group_key, &alert_labels) {
            Some(group) => (group, "the alert group"),
            None => (
                alert_labels,
                "this alert only (its group labels could not be read)",
            ),
        };
        let matching: Vec<String> = labels
            .iter()
            .map(|(name, value)| format!("{name}=\"{value}\""))
            .collect();
        let episode_url = self.public_url.as_ref().map(|base| {
            format!(
                "{}/api/v1/episodes/{episode_id}",
                base.trim_end_matches('/')
            )
        });
        let request = SilenceRequest {
            labels: &labels,
            starts_at: OffsetDateTime::now_utc(),
            duration: Duration::from_secs(hours * 3600),
            created_by: &press.user_name,
            episode_id,
            episode_url: episode_url.as_deref(),
        };
        match silences.create(&request).await {
            Ok(silence) => {
                let until = silence
                    .ends_at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let what = format!(
                    "silenced the alert for {hours} h: silence {} until {until}",
                    silence.id
                );
                self.record(episode_id, press, &what).await;
                let text = format!(
                    "Silenced for {hours} h by {}: silence {} until {until}, {scope}: {}.",
                    Self::who(press),
                    silence.id,
                    matching.join(", ")
                );
                let expire = json!({"type": "actions", "elements": [{
                    "type": "button",
                    "text": {"type": "plain_text", "text": "Expire silence"},
                    "action_id": EXPIRE_SILENCE,
                    "value": format!("{episode_id} {}", silence.id),
                }]});
                self.reply(press, text, Some(expire)).await;
            }
            Err(error) => {
                tracing::warn!(%error, "Slack action: silence not created");
                self.reply(press, format!("Silence not created: {error}"), None)
                    .await;
            }
        }
    }

    async fn expire(&self, press: &ButtonPress) {
        let Some((episode_id, silence_id)) = press
            .value
            .split_once(' ')
            .and_then(|(e, s)| Some((valid_episode_id(e)?, valid_silence_id(s).ok()?)))
        else {
            return;
        };
        let Some(silences) = &self.silences else {
            return;
        };
        match silences.expire(silence_id).await {
            Ok(()) => {
                self.record(episode_id, press, &format!("expired silence {silence_id}"))
                    .await;
                let said = format!("Silence {silence_id} expired by {}.", Self::who(press));
                // The message that carried the button says so instead: no button left that
                // names a silence that no longer holds.
                let message = text_message(&said);
                let at = MessageRef {
                    channel: press.channel.clone(),
                    ts: press.message_ts.clone(),
                };
                if let Err(error) = self.api.update(&at, &message).await {
                    tracing::warn!(%error, "Slack action: cannot remove the Expire button");
                }
                self.reply(press, said, None).await;
            }
            Err(error) => {
                self.reply(press, format!("Silence not expired: {error}"), None)
                    .await;
            }
        }
    }

    async fn rerun(&self, press: &ButtonPress, episode_id: &str) {
        let now = OffsetDateTime::now_utc();
        let reason = format!("re-run from Slack by {}", Self::who(press));
        // Any verdict already reached qualifies: `now` as the age bound.
        match self
            .ledger
            .claim_retriage(episode_id, now + Duration::from_millis(1), &reason, now)
            .await
        {
            Ok(true) => {
                self.record(episode_id, press, "re-ran the triage").await;
                self.reply(
                    press,
                    format!(
                        "Triage re-run by {}; the new verdict will edit the message.",
                        Self::who(press)
                    ),
                    None,
                )
                .await;
            }
            Ok(false) => {
                let state = match self.ledger.get_episode(episode_id).await {
                    Ok(Some(detail)) => detail.summary.state,
                    _ => EpisodeState::Skipped,
                };
                let why = match state {
                    EpisodeState::Queued | EpisodeState::Running => "a triage is already running",
                    _ => "only a firing episode with a verdict can be triaged again",
                };
                self.reply(press, format!("Not re-run: {why}."), None).await;
            }
            Err(error) => {
                self.reply(press, format!("Not re-run: {error}"), None)
                    .await;
            }
        }
    }
}

#[async_trait]
impl PressHandler for SlackActions {
    async fn handle(&self, press: ButtonPress) {
        if !self.allowed(&press.user_id).await {
            tracing::info!(user = %sanitize_line(&press.user_id), action = %sanitize_line(&press.action_id), "Slack action refused: user not in slack.allowed_users");
            if let Err(error) = self
                .api
                .post_ephemeral(
                    &press.channel,
                    &press.user_id,
                    "You are not allowed to use cabal-triage's buttons (slack.allowed_users).",
                )
                .await
            {
                tracing::warn!(%error, "Slack action: cannot tell the user");
            }
            return;
        }
        let episode = valid_episode_id(&press.value);
        match (press.action_id.as_str(), episode) {
            (SILENCE_2H, Some(id)) => self.silence(&press, id, 2).await,
            (SILENCE_8H, Some(id)) => self.silence(&press, id, 8).await,
            (RERUN_TRIAGE, Some(id)) => self.rerun(&press, id).await,
            (EXPIRE_SILENCE, _) => self.expire(&press).await,
            _ => {
                tracing::info!(action = %sanitize_line(&press.action_id), "Slack action ignored: not one of cabal-triage's buttons")
            }
        }
    }
}

/// The Socket Mode client and what its presses do.
pub type Buttons = (super::socket::SocketMode, Arc<dyn PressHandler>);

/// Socket Mode and what its presses do, when `slack.app_token` is set (bot mode, validated).
pub fn from_config(
    config: &crate::config::Config,
    ledger: Arc<dyn Ledger>,
) -> Result<Option<Buttons>, String> {
    let (Some(app_token), Some(bot_token)) = (&config.slack.app_token, &config.slack.bot_token)
    else {
        return Ok(None);
    };
    let http = crate::notify::http::client(Duration::from_millis(config.delivery.http_timeout_ms))?;
    let socket =
        super::socket::SocketMode::new(http.clone(), &config.slack.api_base_url, app_token.clone());
    let actions = SlackActions {
        api: SlackApi::new(http.clone(), &config.slack.api_base_url, bot_token.clone()),
        ledger,
        silences: SilenceClient::from_config(http, &config.alertmanager),
        allowed_users: config.slack.allowed_users.clone(),
        public_url: config.server.public_url.clone(),
    };
    Ok(Some((socket, Arc::new(actions))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_escape_and_redact_what_a_user_controls() {
        let press = ButtonPress {
            user_id: "U1".into(),
            user_name: "<!channel> jane@example.com\u{202e}".into(),
            action_id: SILENCE_2H.into(),
            value: "ep-1".into(),
            channel: "C1".into(),
            message_ts: "1.2".into(),
            thread_ts: "1.2".into(),
            key: String::new(),
        };
        let who = SlackActions::who(&press);
        assert!(!who.contains("jane@") && !who.contains('\u{202e}'), "{who}");
        let text = slack_text(&format!("Silenced by {who}"));
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
    }

    #[test]
    fn button_values_name_an_episode_or_nothing() {
        assert_eq!(valid_episode_id("ep-0123_ab"), Some("ep-0123_ab"));
        for bad in ["", "../x", "a b", "ep\u{0}", &"e".repeat(101)] {
            assert_eq!(valid_episode_id(bad), None, "{bad}");
        }
        let buttons = verdict_buttons("ep-1");
        let actions: Vec<&str> = buttons["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(actions, [SILENCE_2H, SILENCE_8H, RERUN_TRIAGE]);
    }
}
