//! A small Slack Web API client for the calls the bot makes: `chat.postMessage`, `chat.update`
//! and `conversations.history` (to find a message an interrupted attempt posted). Every answer's
//! body is read: Slack reports most errors as HTTP 200 with `ok:false`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::errors::classify;
use crate::config::{RotatingSecret, Secret};
use crate::notify::http::{body_excerpt, retry_after, transient_status, transport_error};
use crate::notify::DeliveryError;
use crate::report::render::slack::SlackMessage;

/// Messages per `conversations.history` page (Slack recommends at most 200).
const HISTORY_PAGE_SIZE: usize = 200;
/// Pages read when looking for an episode's message before giving up.
const HISTORY_MAX_PAGES: usize = 10;

/// The `metadata.event_type` that marks the bot's episode messages.
pub const EVENT_TYPE: &str = "cabal_triage_episode";
/// The `metadata.event_type` that marks the bot's thread replies (one per outbox row).
pub const REPLY_EVENT_TYPE: &str = "cabal_triage_reply";

/// What a message's metadata says it is, so that a later attempt can find it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker<'a> {
    /// The episode's message.
    Episode(&'a str),
    /// A thread reply sent for one outbox row (its delivery id).
    Reply { episode: &'a str, row: i64 },
}

impl Marker<'_> {
    fn metadata(self) -> Value {
        match self {
            Marker::Episode(episode) => {
                json!({"event_type": EVENT_TYPE, "event_payload": {"episode": episode}})
            }
            Marker::Reply { episode, row } => json!({
                "event_type": REPLY_EVENT_TYPE,
                "event_payload": {"episode": episode, "row": row.to_string()},
            }),
        }
    }

    /// Whether a message from `conversations.history` / `.replies` carries the marker whose
    /// metadata is `expected` (`Marker::metadata`, built once per lookup).
    fn is_on(expected: &Value, message: &Value) -> bool {
        let metadata = &message["metadata"];
        metadata["event_type"] == expected["event_type"]
            && expected["event_payload"]
                .as_object()
                .is_some_and(|payload| {
                    payload
                        .iter()
                        .all(|(key, value)| &metadata["event_payload"][key] == value)
                })
    }
}

pub struct SlackApi {
    http: reqwest::Client,
    base_url: String,
    token: RotatingSecret,
}

/// Where a posted message lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    /// The channel ID Slack answered with (not the configured name).
    pub channel: String,
    pub ts: String,
}

impl SlackApi {
    pub fn new(http: reqwest::Client, base_url: &str, token: Secret) -> Self {
        SlackApi {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: RotatingSecret::new(token),
        }
    }

    /// The bot token, shared with the destination's secret rotation.
    pub fn token(&self) -> &RotatingSecret {
        &self.token
    }

    async fn read(
        &self,
        method: &str,
        response: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Value, DeliveryError> {
        let response = response.map_err(|e| transport_error("Slack", method, e))?;
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(error) = transient_status("Slack", method, status, &headers) {
            return Err(error);
        }
        let text = response
            .text()
            .await
            .map_err(|e| transport_error("Slack", method, e))?;
        if status != StatusCode::OK {
            return Err(DeliveryError::permanent(format!(
                "Slack answered HTTP {} to {method}: {}; check slack.api_base_url",
                status.as_u16(),
                body_excerpt(&text)
            )));
        }
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            DeliveryError::transient(format!(
                "Slack's answer to {method} is not JSON: {}",
                body_excerpt(&text)
            ))
        })?;
        if body["ok"] == true {
            return Ok(body);
        }
        let code = body["error"].as_str().unwrap_or("unknown_error");
        Err(classify(method, code, retry_after(&headers)))
    }

    async fn post(&self, method: &str, body: &Value) -> Result<Value, DeliveryError> {
        let response = self
            .http
            .post(format!("{}/{method}", self.base_url))
            .bearer_auth(self.token.current().expose())
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await;
        self.read(method, response).await
    }

    /// Posts a message (into a thread with `thread_ts`); the marker goes into the message
    /// metadata so that `find_episode_message` / `find_reply` can find it again.
    pub async fn post_message(
        &self,
        channel: &str,
        message: &SlackMessage,
        thread_ts: Option<&str>,
        marker: Option<Marker<'_>>,
    ) -> Result<MessageRef, DeliveryError> {
        let mut body = json!({
            "channel": channel,
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        if let Some(marker) = marker {
            body["metadata"] = marker.metadata();
        }
        let answer = self.post("chat.postMessage", &body).await?;
        match (answer["channel"].as_str(), answer["ts"].as_str()) {
            (Some(channel), Some(ts)) => Ok(MessageRef {
                channel: channel.to_string(),
                ts: ts.to_string(),
            }),
            _ => Err(DeliveryError::permanent(
                "Slack chat.postMessage answered ok without channel and ts; check slack.api_base_url",
            )),
        }
    }

    /// Replaces a message's text and blocks (blocks are always sent: without them Slack keeps
    /// the old ones).
    /// The members of a user group (`usergroups.users.list`, scope `usergroups:read`).
    pub async fn usergroup_members(&self, group: &str) -> Result<Vec<String>, DeliveryError> {
        const METHOD: &str = "usergroups.users.list";
        let response = self
            .http
            .get(format!("{}/{METHOD}", self.base_url))
            .bearer_auth(self.token.current().expose())
            .query(&[("usergroup", group)])
            .send()
            .await;
        let answer = self.read(METHOD, response).await?;
        Ok(answer["users"]
            .as_array()
            .map(|users| {
                users
                    .iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// A message only `user` sees (`chat.postEphemeral`).
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), DeliveryError> {
        let body = json!({"channel": channel, "user": user, "text": text});
        self.post("chat.postEphemeral", &body).await.map(|_| ())
    }

    pub async fn update(
        &self,
        at: &MessageRef,
        message: &SlackMessage,
    ) -> Result<(), DeliveryError> {
        let body = json!({
            "channel": at.channel,
            "ts": at.ts,
            "text": message.text,
            "blocks": message.blocks,
        });
        self.post("chat.update", &body).await.map(|_| ())
    }

    /// Looks for the episode's message among the channel's messages posted between `oldest`
    /// and `latest` (Unix seconds), by the marker in its metadata (`conversations.history`;
    /// needs the `channels:history` scope).
    pub async fn find_episode_message(
        &self,
        channel: &str,
        episode_id: &str,
        window: (i64, i64),
    ) -> Result<Option<MessageRef>, DeliveryError> {
        let found = self
            .find_marked(
                "conversations.history",
                &[("channel", channel)],
                Marker::Episode(episode_id),
                window,
            )
            .await?;
        Ok(found.map(|ts| MessageRef {
            channel: channel.to_string(),
            ts,
        }))
    }

    /// Looks for the reply an earlier attempt at outbox row `row` posted under `parent`
    /// between `oldest` and `latest` (`conversations.replies`; the same scope).
    pub async fn find_reply(
        &self,
        parent: &MessageRef,
        episode_id: &str,
        row: i64,
        window: (i64, i64),
    ) -> Result<Option<MessageRef>, DeliveryError> {
        let found = self
            .find_marked(
                "conversations.replies",
                &[("channel", &parent.channel), ("ts", &parent.ts)],
                Marker::Reply {
                    episode: episode_id,
                    row,
                },
                window,
            )
            .await?;
        Ok(found.map(|ts| MessageRef {
            channel: parent.channel.clone(),
            ts,
        }))
    }

    /// The `ts` of the message carrying `marker` among those `method` lists between `oldest`
    /// and `latest` (Unix seconds), page by page (a busy channel has more than one page in that
    /// window). Gives up with an error after `HISTORY_MAX_PAGES` pages, so that a flooded
    /// channel costs a bounded number of calls.
    async fn find_marked(
        &self,
        method: &str,
        scope: &[(&str, &str)],
        marker: Marker<'_>,
        (oldest, latest): (i64, i64),
    ) -> Result<Option<String>, DeliveryError> {
        let (oldest, latest) = (oldest.to_string(), latest.to_string());
        let limit = HISTORY_PAGE_SIZE.to_string();
        let expected = marker.metadata();
        let mut cursor = String::new();
        for _ in 0..HISTORY_MAX_PAGES {
            let mut query = scope.to_vec();
            query.extend([
                ("oldest", oldest.as_str()),
                ("latest", latest.as_str()),
                ("inclusive", "true"),
                ("include_all_metadata", "true"),
                ("limit", limit.as_str()),
            ]);
            if !cursor.is_empty() {
                query.push(("cursor", cursor.as_str()));
            }
            let response = self
                .http
                .get(format!("{}/{method}", self.base_url))
                .bearer_auth(self.token.current().expose())
                .query(&query)
                .send()
                .await;
            let answer = self.read(method, response).await?;
            let found = answer["messages"]
                .as_array()
                .and_then(|messages| messages.iter().find(|m| Marker::is_on(&expected, m)))
                .and_then(|m| m["ts"].as_str());
            if let Some(ts) = found {
                return Ok(Some(ts.to_string()));
            }
            let next = answer["response_metadata"]["next_cursor"]
                .as_str()
                .unwrap_or_default();
            if answer["has_more"] != true || next.is_empty() {
                return Ok(None);
            }
            cursor = next.to_string();
        }
        Err(DeliveryError::transient(format!(
            "more than {} messages in the time an earlier attempt may have posted; stopped \
             looking for its message in {method}",
            HISTORY_MAX_PAGES * HISTORY_PAGE_SIZE
        )))
    }
}
