//! A small Slack Web API client for the calls the bot makes: `chat.postMessage`, `chat.update`
//! and `conversations.history` (to find a message an interrupted attempt posted). Every answer's
//! body is read: Slack reports most errors as HTTP 200 with `ok:false`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::errors::classify;
use crate::config::Secret;
use crate::notify::http::{body_excerpt, retry_after, transient_status, transport_error};
use crate::notify::DeliveryError;
use crate::report::render::slack::SlackMessage;

/// Messages per `conversations.history` page (Slack recommends at most 200).
const HISTORY_PAGE_SIZE: usize = 200;
/// Pages read when looking for an episode's message before giving up.
const HISTORY_MAX_PAGES: usize = 10;

/// The `metadata.event_type` that marks the bot's episode messages.
pub const EVENT_TYPE: &str = "cabal_triage_episode";

pub struct SlackApi {
    http: reqwest::Client,
    base_url: String,
    token: Secret,
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
            token,
        }
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
            .bearer_auth(self.token.expose())
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_string())
            .send()
            .await;
        self.read(method, response).await
    }

    /// Posts a message (into a thread with `thread_ts`); the episode marker goes into the
    /// message metadata so that `find_episode_message` can find it again.
    pub async fn post_message(
        &self,
        channel: &str,
        message: &SlackMessage,
        thread_ts: Option<&str>,
        episode_id: Option<&str>,
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
        if let Some(episode) = episode_id {
            body["metadata"] =
                json!({"event_type": EVENT_TYPE, "event_payload": {"episode": episode}});
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
    /// and `latest` (Unix seconds), by the marker in its metadata, page by page (a busy channel
    /// has more than one page in that window). Needs the `channels:history` scope. Gives up with
    /// an error after `HISTORY_MAX_PAGES` pages, so that a flooded channel costs a bounded
    /// number of calls.
    pub async fn find_episode_message(
        &self,
        channel: &str,
        episode_id: &str,
        (oldest, latest): (i64, i64),
    ) -> Result<Option<MessageRef>, DeliveryError> {
        let (oldest, latest) = (oldest.to_string(), latest.to_string());
        let limit = HISTORY_PAGE_SIZE.to_string();
        let mut cursor = String::new();
        for _ in 0..HISTORY_MAX_PAGES {
            let mut query = vec![
                ("channel", channel),
                ("oldest", oldest.as_str()),
                ("latest", latest.as_str()),
                ("inclusive", "true"),
                ("include_all_metadata", "true"),
                ("limit", limit.as_str()),
            ];
            if !cursor.is_empty() {
                query.push(("cursor", cursor.as_str()));
            }
            let response = self
                .http
                .get(format!("{}/conversations.history", self.base_url))
                .bearer_auth(self.token.expose())
                .query(&query)
                .send()
                .await;
            let answer = self.read("conversations.history", response).await?;
            let found = answer["messages"].as_array().and_then(|messages| {
                messages.iter().find(|m| {
                    m["metadata"]["event_type"] == EVENT_TYPE
                        && m["metadata"]["event_payload"]["episode"] == episode_id
                })
            });
            if let Some(ts) = found.and_then(|m| m["ts"].as_str()) {
                return Ok(Some(MessageRef {
                    channel: channel.to_string(),
                    ts: ts.to_string(),
                }));
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
            "the channel has more than {} messages in the time an earlier attempt may have \
             posted; stopped looking for its message in conversations.history",
            HISTORY_MAX_PAGES * HISTORY_PAGE_SIZE
        )))
    }
}
