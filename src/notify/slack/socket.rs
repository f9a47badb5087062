//! Slack Socket Mode: the outbound WebSocket over which Slack delivers button presses, so a
//! service without a public HTTPS endpoint (Cabalmail's private subnets) can have buttons.
//!
//! `apps.connections.open` with the app-level token gives a one-use `wss://` URL; the session
//! starts with a `hello` (whose `debug_info.approximate_connection_time` says when Slack will
//! rotate the connection), then envelopes, each acknowledged at once with its `envelope_id`
//! (Slack retries an envelope not acknowledged within 3 s), before anything is done about it.
//! A `disconnect` envelope, a closed socket or the connection's time running out opens a new
//! connection; failures to open one back off (`timing::Backoff`). The envelope parsing is pure
//! and refuses oversized or malformed frames without panicking.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::config::Secret;
use crate::timing::Backoff;

/// The largest envelope read (a `block_actions` payload is a few KiB).
pub const MAX_ENVELOPE_BYTES: usize = 256 * 1024;
/// Reconnect this long before Slack's announced rotation.
const ROTATION_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketError {
    #[error("Slack refused apps.connections.open: {0}; check slack.app_token (an app-level xapp- token with connections:write, Socket Mode enabled for the app)")]
    Refused(String),
    #[error(
        "cannot reach Slack for Socket Mode: {0}; check slack.api_base_url and outbound HTTPS"
    )]
    Unreachable(String),
    #[error("Slack's Socket Mode envelope cannot be read: {0}")]
    Malformed(String),
}

/// One Socket Mode envelope, as far as this service cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Envelope {
    /// The session is up; Slack rotates it after about this long.
    Hello { connection_time: Option<Duration> },
    /// Slack is about to close this connection: open another.
    Disconnect { reason: String },
    /// An envelope to acknowledge; `payload` is the interaction (`block_actions` for buttons).
    Acknowledge {
        envelope_id: String,
        kind: String,
        payload: Value,
    },
}

/// Reads one text frame.
pub fn parse_envelope(text: &str) -> Result<Envelope, SocketError> {
    if text.len() > MAX_ENVELOPE_BYTES {
        return Err(SocketError::Malformed(format!(
            "{} bytes, more than {MAX_ENVELOPE_BYTES}",
            text.len()
        )));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|e| SocketError::Malformed(e.to_string()))?;
    let kind = value["type"].as_str().unwrap_or_default();
    match kind {
        "hello" => Ok(Envelope::Hello {
            connection_time: value["debug_info"]["approximate_connection_time"]
                .as_u64()
                .map(Duration::from_secs),
        }),
        "disconnect" => Ok(Envelope::Disconnect {
            reason: value["reason"]
                .as_str()
                .unwrap_or("unknown")
                .chars()
                .take(80)
                .collect(),
        }),
        _ => {
            let envelope_id = value["envelope_id"]
                .as_str()
                .filter(|id| !id.is_empty() && id.len() <= 200)
                .ok_or_else(|| {
                    SocketError::Malformed(format!("a {:.40} envelope without envelope_id", kind))
                })?;
            Ok(Envelope::Acknowledge {
                envelope_id: envelope_id.to_string(),
                kind: kind.chars().take(40).collect(),
                payload: value["payload"].clone(),
            })
        }
    }
}

/// The acknowledgement of an envelope.
pub fn ack(envelope_id: &str) -> String {
    json!({ "envelope_id": envelope_id }).to_string()
}

/// One button press from a `block_actions` payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonPress {
    pub user_id: String,
    /// The user's name as Slack sends it (for `createdBy` and the replies).
    pub user_name: String,
    pub action_id: String,
    pub value: String,
    pub channel: String,
    /// The message the button is on.
    pub message_ts: String,
    /// The thread of that message (its own ts when it is a top-level message).
    pub thread_ts: String,
    /// What names this one press (the interaction's `trigger_id`, the action and its
    /// `action_ts`): the same when Slack delivers the press again, so it is handled once. Empty
    /// when the payload has neither; the envelope id stands in then.
    pub key: String,
}

/// The presses of an interactive payload (none unless it is `block_actions` with the fields
/// a press needs).
pub fn button_presses(payload: &Value) -> Vec<ButtonPress> {
    if payload["type"] != "block_actions" {
        return Vec::new();
    }
    let text = |v: &Value| {
        v.as_str()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect::<String>()
    };
    let user_id = text(&payload["user"]["id"]);
    let user_name = match text(&payload["user"]["username"]) {
        name if name.is_empty() => text(&payload["user"]["name"]),
        name => name,
    };
    let channel = text(&payload["channel"]["id"]);
    let message_ts = match text(&payload["container"]["message_ts"]) {
        ts if ts.is_empty() => text(&payload["message"]["ts"]),
        ts => ts,
    };
    let thread_ts = match text(&payload["message"]["thread_ts"]) {
        ts if ts.is_empty() => message_ts.clone(),
        ts => ts,
    };
    if user_id.is_empty() || channel.is_empty() || message_ts.is_empty() {
        return Vec::new();
    }
    payload["actions"]
        .as_array()
        .map(|actions| {
            actions
                .iter()
                .take(5)
                .map(|action| ButtonPress {
                    key: press_key(&text(&payload["trigger_id"]), action, &text),
                    user_id: user_id.clone(),
                    user_name: user_name.clone(),
                    action_id: text(&action["action_id"]),
                    value: text(&action["value"]),
                    channel: channel.clone(),
                    message_ts: message_ts.clone(),
                    thread_ts: thread_ts.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn press_key(trigger_id: &str, action: &Value, text: &impl Fn(&Value) -> String) -> String {
    let action_ts = text(&action["action_ts"]);
    if trigger_id.is_empty() && action_ts.is_empty() {
        return String::new();
    }
    format!("{trigger_id}|{}|{action_ts}", text(&action["action_id"]))
}

/// The presses handled lately, so that one Slack delivers again (an acknowledgement it did not
/// get, a session that ended meanwhile) is not acted on twice: silenced twice, re-run twice.
/// Bounded: the oldest keys go first.
pub struct HandledPresses {
    keys: Mutex<(VecDeque<String>, HashSet<String>)>,
    capacity: usize,
}

impl HandledPresses {
    pub fn new(capacity: usize) -> Self {
        HandledPresses {
            keys: Mutex::new((VecDeque::new(), HashSet::new())),
            capacity: capacity.max(1),
        }
    }

    /// Whether `key` is new (and now remembered).
    pub fn first_time(&self, key: &str) -> bool {
        let mut guard = match self.keys.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (order, seen) = &mut *guard;
        if !seen.insert(key.to_string()) {
            return false;
        }
        order.push_back(key.to_string());
        while order.len() > self.capacity {
            if let Some(oldest) = order.pop_front() {
                seen.remove(&oldest);
            }
        }
        true
    }
}

/// What is done about a press (after it was acknowledged).
#[async_trait]
pub trait PressHandler: Send + Sync {
    async fn handle(&self, press: ButtonPress);
}

/// The Socket Mode client.
pub struct SocketMode {
    http: reqwest::Client,
    api_base_url: String,
    app_token: Secret,
}

/// Why a session ended.
#[derive(Debug, PartialEq, Eq)]
enum SessionEnd {
    Stopped,
    Reconnect(String),
}

impl SocketMode {
    pub fn new(http: reqwest::Client, api_base_url: &str, app_token: Secret) -> Self {
        SocketMode {
            http,
            api_base_url: api_base_url.trim_end_matches('/').to_string(),
            app_token,
        }
    }

    /// `apps.connections.open`: the WebSocket URL of a new session.
    pub async fn open(&self) -> Result<String, SocketError> {
        let response = self
            .http
            .post(format!("{}/apps.connections.open", self.api_base_url))
            .bearer_auth(self.app_token.expose())
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .map_err(|e| SocketError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).map_err(|_| {
            SocketError::Unreachable(format!("HTTP {}: not a Slack API answer", status.as_u16()))
        })?;
        if body["ok"] != true {
            return Err(SocketError::Refused(
                body["error"]
                    .as_str()
                    .unwrap_or("unknown_error")
                    .chars()
                    .take(80)
                    .collect(),
            ));
        }
        let url = body["url"].as_str().unwrap_or_default();
        if !allowed_socket_url(url) {
            return Err(SocketError::Refused(
                "the answer holds no wss:// URL".to_string(),
            ));
        }
        Ok(url.to_string())
    }

    /// Runs sessions one after the other until `stop`.
    pub async fn run(self, handler: Arc<dyn PressHandler>, stop: CancellationToken) {
        const BACKOFF: Backoff =
            Backoff::equal_jitter(Duration::from_secs(1), Duration::from_secs(60));
        let mut failures = 0u32;
        let handled = HandledPresses::new(1024);
        loop {
            if stop.is_cancelled() {
                return;
            }
            let outcome = match self.open().await {
                Ok(url) => session(&url, &handler, &handled, &stop).await,
                Err(error) => Err(error.to_string()),
            };
            match outcome {
                Ok(SessionEnd::Stopped) => return,
                Ok(SessionEnd::Reconnect(reason)) => {
                    failures = 0;
                    tracing::info!(%reason, "Slack Socket Mode: reconnecting");
                }
                Err(error) => {
                    tracing::warn!(%error, "Slack Socket Mode: no session; trying again");
                    let pause = BACKOFF.pause(failures);
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
    }
}

/// Slack hands out `wss://` URLs; `ws://` is accepted on loopback only (the tests' fake).
fn allowed_socket_url(url: &str) -> bool {
    url.starts_with("wss://")
        || ["ws://127.0.0.1:", "ws://localhost:", "ws://[::1]:"]
            .iter()
            .any(|prefix| url.starts_with(prefix))
}

async fn session(
    url: &str,
    handler: &Arc<dyn PressHandler>,
    handled: &HandledPresses,
    stop: &CancellationToken,
) -> Result<SessionEnd, String> {
    let connector = if url.starts_with("wss://") {
        Some(tls_connector()?)
    } else {
        None
    };
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_tls_with_config(url, None, true, connector),
    )
    .await
    .map_err(|_| "the WebSocket did not open within 10 s".to_string())?
    .map_err(|e| format!("cannot open the WebSocket: {e}"))?;
    let (mut sink, mut stream) = socket.split();
    // Until `hello` says otherwise, rotate after an hour.
    let mut rotate_at = tokio::time::Instant::now() + Duration::from_secs(3600);
    loop {
        let frame = tokio::select! {
            _ = stop.cancelled() => {
                let _ = sink.close().await;
                return Ok(SessionEnd::Stopped);
            }
            _ = tokio::time::sleep_until(rotate_at) => {
                let _ = sink.close().await;
                return Ok(SessionEnd::Reconnect("the connection's time is nearly up".into()));
            }
            frame = stream.next() => frame,
        };
        let text = match frame {
            None => return Ok(SessionEnd::Reconnect("Slack closed the WebSocket".into())),
            Some(Err(error)) => return Err(format!("the WebSocket failed: {error}")),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) => {
                return Ok(SessionEnd::Reconnect("Slack closed the WebSocket".into()))
            }
            Some(Ok(Message::Ping(data))) => {
                sink.send(Message::Pong(data))
                    .await
                    .map_err(|e| e.to_string())?;
                continue;
            }
            Some(Ok(_)) => continue,
        };
        match parse_envelope(&text) {
            Ok(Envelope::Hello { connection_time }) => {
                if let Some(time) = connection_time {
                    rotate_at = tokio::time::Instant::now()
                        + time
                            .saturating_sub(ROTATION_MARGIN)
                            .max(Duration::from_secs(5));
                }
            }
            Ok(Envelope::Disconnect { reason }) => {
                let _ = sink.close().await;
                return Ok(SessionEnd::Reconnect(format!(
                    "Slack asked to reconnect ({reason})"
                )));
            }
            Ok(Envelope::Acknowledge {
                envelope_id,
                kind,
                payload,
            }) => {
                // Acknowledged first: Slack waits 3 s, whatever the action then takes.
                sink.send(Message::text(ack(&envelope_id)))
                    .await
                    .map_err(|e| format!("cannot acknowledge an envelope: {e}"))?;
                if kind == "interactive" {
                    for (index, press) in button_presses(&payload).into_iter().enumerate() {
                        let key = if press.key.is_empty() {
                            format!("envelope|{envelope_id}|{index}")
                        } else {
                            press.key.clone()
                        };
                        if !handled.first_time(&key) {
                            tracing::info!(
                                action = %press.action_id,
                                "Slack delivered a press again; it was handled already"
                            );
                            continue;
                        }
                        let handler = Arc::clone(handler);
                        tokio::spawn(async move { handler.handle(press).await });
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "Slack Socket Mode: envelope skipped"),
        }
    }
}

fn tls_connector() -> Result<tokio_tungstenite::Connector, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_parse_and_hostile_frames_are_refused() {
        assert_eq!(
            parse_envelope(
                r#"{"type":"hello","debug_info":{"approximate_connection_time":18060}}"#
            )
            .unwrap(),
            Envelope::Hello {
                connection_time: Some(Duration::from_secs(18060))
            }
        );
        assert!(matches!(
            parse_envelope(r#"{"type":"disconnect","reason":"refresh_requested"}"#).unwrap(),
            Envelope::Disconnect { reason } if reason == "refresh_requested"
        ));
        let Envelope::Acknowledge {
            envelope_id, kind, ..
        } = parse_envelope(r#"{"type":"interactive","envelope_id":"e-1","payload":{}}"#).unwrap()
        else {
            panic!("not an envelope to acknowledge");
        };
        assert_eq!(
            (envelope_id.as_str(), kind.as_str()),
            ("e-1", "interactive")
        );
        assert_eq!(ack("e-1"), r#"{"envelope_id":"e-1"}"#);
        for bad in [
            "",
            "[",
            "{\"type\":\"interactive\"}",
            "null",
            "{\"type\":\"x\",\"envelope_id\":\"\"}",
        ] {
            assert!(parse_envelope(bad).is_err(), "{bad}");
        }
        let huge = format!(
            "{{\"type\":\"interactive\",\"envelope_id\":\"e\",\"payload\":\"{}\"}}",
            "x".repeat(MAX_ENVELOPE_BYTES)
        );
        assert!(parse_envelope(&huge).is_err());
        let deep = "[".repeat(100_000);
        assert!(parse_envelope(&deep).is_err());
    }

    #[test]
    fn a_press_delivered_again_is_handled_once_and_the_memory_is_bounded() {
        let payload = |trigger: &str, action_ts: &str| {
            json!({"type": "block_actions", "trigger_id": trigger,
                "user": {"id": "U1", "username": "jane"}, "channel": {"id": "C1"},
                "container": {"message_ts": "1.2"},
                "actions": [{"action_id": "silence_2h", "value": "ep", "action_ts": action_ts}]})
        };
        let first = button_presses(&payload("t-1", "100.1"));
        let again = button_presses(&payload("t-1", "100.1"));
        let second_press = button_presses(&payload("t-2", "101.7"));
        assert_eq!(first[0].key, again[0].key);
        assert_ne!(first[0].key, second_press[0].key);
        assert_eq!(button_presses(&payload("", ""))[0].key, "");
        let handled = HandledPresses::new(2);
        assert!(handled.first_time(&first[0].key));
        assert!(!handled.first_time(&again[0].key));
        assert!(handled.first_time(&second_press[0].key));
        assert!(handled.first_time("third"));
        // The oldest was forgotten: capacity 2.
        assert!(handled.first_time(&first[0].key));
        assert!(!handled.first_time("third"));
    }

    #[test]
    fn presses_need_a_user_a_channel_and_a_message() {
        let payload = serde_json::json!({
            "type": "block_actions",
            "user": {"id": "U1", "username": "jane"},
            "channel": {"id": "C1"},
            "container": {"message_ts": "1.2"},
            "message": {"ts": "1.2"},
            "actions": [{"action_id": "silence_2h", "value": "ep-1"}]
        });
        let presses = button_presses(&payload);
        assert_eq!(presses.len(), 1);
        assert_eq!(presses[0].user_name, "jane");
        assert_eq!(presses[0].thread_ts, "1.2");
        let mut no_user = payload.clone();
        no_user["user"] = Value::Null;
        assert!(button_presses(&no_user).is_empty());
        let mut other = payload.clone();
        other["type"] = json!("view_submission");
        assert!(button_presses(&other).is_empty());
        assert!(button_presses(&json!("text")).is_empty());
    }

    #[test]
    fn only_wss_or_loopback_urls_are_followed() {
        assert!(allowed_socket_url(
            "wss://wss-primary.slack.com/link/?ticket=x"
        ));
        assert!(allowed_socket_url("ws://127.0.0.1:4000/"));
        assert!(!allowed_socket_url("ws://evil.example/"));
        assert!(!allowed_socket_url("https://slack.com"));
    }
}
