//! A fake Slack Web API on 127.0.0.1 for the notify tests: records every request, keeps the
//! messages it accepted (with metadata, so `conversations.history` can find them), and answers
//! scripted failures: 429 with Retry-After, HTTP errors, `ok:false` codes, slow answers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub body: Value,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub at: Instant,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: String,
    pub blocks: Value,
    pub metadata: Value,
}

/// A scripted answer for the next call of a method.
#[derive(Debug, Clone)]
pub enum Scripted {
    Status(u16),
    RateLimited {
        retry_after_secs: u64,
    },
    OkFalse(&'static str),
    /// Do the work, then answer only after this long (the client times out first).
    SlowAfterWork(Duration),
}

#[derive(Default)]
struct SlackState {
    requests: Vec<Recorded>,
    messages: Vec<Message>,
    script: VecDeque<(String, Scripted)>,
    /// Every call of a method answers this until the instant (an outage).
    outages: Vec<(String, Scripted, Instant)>,
    /// The last `ts` handed out, in microseconds since the Unix epoch.
    last_ts_micros: u64,
    /// What `apps.connections.open` answers (Socket Mode); none: `invalid_auth`.
    socket_url: Option<String>,
    /// User groups and their members (`usergroups.users.list`).
    user_groups: std::collections::HashMap<String, Vec<String>>,
}

impl SlackState {
    /// A message `ts` as Slack makes them: the time of posting (`secs.micros`), `ahead` later
    /// than now, unique and increasing in the order messages are added.
    fn stamp(&mut self, ahead: Duration) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            + ahead;
        self.last_ts_micros = (now.as_micros() as u64).max(self.last_ts_micros + 1);
        format!(
            "{}.{:06}",
            self.last_ts_micros / 1_000_000,
            self.last_ts_micros % 1_000_000
        )
    }
}

/// A `ts`, or an `oldest` / `latest` bound, in microseconds (None: not a number).
fn ts_micros(text: &str) -> Option<u64> {
    let (secs, fraction) = text.split_once('.').unwrap_or((text, ""));
    let micros = format!("{fraction:0<6}");
    Some(secs.parse::<u64>().ok()? * 1_000_000 + micros.get(..6)?.parse::<u64>().ok()?)
}

#[derive(Clone)]
pub struct FakeSlack {
    pub addr: SocketAddr,
    state: Arc<Mutex<SlackState>>,
}

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let state = Arc::new(Mutex::new(SlackState::default()));
        let app = Router::new()
            .route("/api/{method}", post(handle_post).get(handle_get))
            .route("/hooks/{*rest}", post(handle_hook))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeSlack { addr, state }
    }

    pub fn api_base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    pub fn webhook_url(&self) -> String {
        format!("http://{}/hooks/T000/B000/XyZhookTOKEN123", self.addr)
    }

    /// Scripts the next call of `method` (several entries for the same method apply in order).
    pub fn script(&self, method: &str, answer: Scripted) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back((method.to_string(), answer));
    }

    /// Every call of `method` answers `answer` until `until` (a rate limit or outage window).
    #[allow(dead_code)] // used by tests/reliability.rs, not by every includer
    pub fn fail_until(&self, method: &str, answer: Scripted, until: Instant) {
        self.state
            .lock()
            .unwrap()
            .outages
            .push((method.to_string(), answer, until));
    }

    pub fn requests(&self, method: &str) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.method == method)
            .cloned()
            .collect()
    }

    pub fn all_requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Adds `count` top-level messages to `channel` as other posters would (a busy channel),
    /// stamped `ahead` later than now (as if they came while a backlog waited; later messages
    /// are stamped after them).
    pub fn add_others(&self, channel: &str, count: usize, ahead: Duration) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..count {
            let ts = state.stamp(ahead);
            state.messages.push(Message {
                channel: channel.to_string(),
                ts,
                thread_ts: None,
                text: "someone else's message".into(),
                blocks: Value::Null,
                metadata: Value::Null,
            });
        }
    }

    /// The WebSocket URL `apps.connections.open` hands out (a fake Socket Mode server's).
    /// A user group `usergroups.users.list` knows.
    #[allow(dead_code)]
    pub fn add_user_group(&self, group: &str, members: &[&str]) {
        self.state.lock().unwrap().user_groups.insert(
            group.to_string(),
            members.iter().map(|m| m.to_string()).collect(),
        );
    }

    #[allow(dead_code)]
    pub fn set_socket_url(&self, url: &str) {
        self.state.lock().unwrap().socket_url = Some(url.to_string());
    }

    pub fn messages(&self) -> Vec<Message> {
        self.state.lock().unwrap().messages.clone()
    }

    /// Top-level messages (not thread replies).
    pub fn parents(&self) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread_ts.is_none())
            .collect()
    }

    pub fn replies(&self) -> Vec<Message> {
        self.messages()
            .into_iter()
            .filter(|m| m.thread_ts.is_some())
            .collect()
    }
}

fn take_script(state: &Mutex<SlackState>, method: &str) -> Option<Scripted> {
    let mut state = state.lock().unwrap();
    let now = Instant::now();
    if let Some((_, answer, _)) = state
        .outages
        .iter()
        .find(|(m, _, until)| m == method && now < *until)
    {
        return Some(answer.clone());
    }
    let index = state.script.iter().position(|(m, _)| m == method)?;
    state.script.remove(index).map(|(_, s)| s)
}

fn record(state: &Mutex<SlackState>, method: &str, headers: &HeaderMap, body: Value) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    state.lock().unwrap().requests.push(Recorded {
        method: method.to_string(),
        body,
        authorization: header("authorization"),
        content_type: header("content-type"),
        at: Instant::now(),
    });
}

fn scripted_failure(answer: &Scripted) -> Option<Response> {
    match answer {
        Scripted::Status(code) => Some(
            (
                StatusCode::from_u16(*code).unwrap(),
                format!("fake slack says {code}"),
            )
                .into_response(),
        ),
        Scripted::RateLimited { retry_after_secs } => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                Json(json!({"ok": false, "error": "ratelimited"})),
            )
                .into_response(),
        ),
        Scripted::OkFalse(code) => Some(Json(json!({"ok": false, "error": code})).into_response()),
        Scripted::SlowAfterWork(_) => None,
    }
}

async fn handle_post(
    State(state): State<Arc<Mutex<SlackState>>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    record(&state, &method, &headers, body.clone());
    let script = take_script(&state, &method);
    if let Some(response) = script.as_ref().and_then(scripted_failure) {
        return response;
    }
    let answer = {
        let mut state = state.lock().unwrap();
        match method.as_str() {
            "chat.postMessage" => {
                let ts = state.stamp(Duration::ZERO);
                let channel = body["channel"].as_str().unwrap_or("").to_string();
                state.messages.push(Message {
                    channel: channel.clone(),
                    ts: ts.clone(),
                    thread_ts: body["thread_ts"].as_str().map(str::to_string),
                    text: body["text"].as_str().unwrap_or("").to_string(),
                    blocks: body["blocks"].clone(),
                    metadata: body["metadata"].clone(),
                });
                json!({"ok": true, "channel": channel, "ts": ts, "message": {}})
            }
            "chat.update" => {
                let found = state
                    .messages
                    .iter_mut()
                    .find(|m| body["channel"] == m.channel.as_str() && body["ts"] == m.ts.as_str());
                match found {
                    Some(message) => {
                        message.text = body["text"].as_str().unwrap_or("").to_string();
                        if !body["blocks"].is_null() {
                            message.blocks = body["blocks"].clone();
                        }
                        json!({"ok": true, "channel": message.channel, "ts": message.ts})
                    }
                    None => json!({"ok": false, "error": "message_not_found"}),
                }
            }
            "apps.connections.open" => match &state.socket_url {
                Some(url) => json!({"ok": true, "url": url}),
                None => json!({"ok": false, "error": "invalid_auth"}),
            },
            "chat.postEphemeral" => {
                let ts = state.stamp(Duration::ZERO);
                json!({"ok": true, "message_ts": ts})
            }
            _ => json!({"ok": false, "error": "unknown_method"}),
        }
    };
    if let Some(Scripted::SlowAfterWork(delay)) = script {
        tokio::time::sleep(delay).await;
    }
    Json(answer).into_response()
}

async fn handle_get(
    State(state): State<Arc<Mutex<SlackState>>>,
    Path(method): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    record(&state, &method, &headers, json!(query));
    if let Some(response) = take_script(&state, &method)
        .as_ref()
        .and_then(scripted_failure)
    {
        return response;
    }
    if method == "usergroups.users.list" {
        let state = state.lock().unwrap();
        let group = query.get("usergroup").cloned().unwrap_or_default();
        return Json(match state.user_groups.get(&group) {
            Some(users) => json!({"ok": true, "users": users}),
            None => json!({"ok": false, "error": "no_such_subteam"}),
        })
        .into_response();
    }
    let channel = query.get("channel").cloned().unwrap_or_default();
    // `conversations.history`: the channel's top-level messages, newest first.
    // `conversations.replies`: a thread (the parent, then its replies), oldest first.
    let (thread, newest_first) = match method.as_str() {
        "conversations.history" => (None, true),
        "conversations.replies" => match query.get("ts") {
            Some(ts) => (Some(ts.clone()), false),
            None => return Json(json!({"ok": false, "error": "thread_not_found"})).into_response(),
        },
        _ => return Json(json!({"ok": false, "error": "unknown_method"})).into_response(),
    };
    let listed = |m: &Message| match &thread {
        None => m.thread_ts.is_none(),
        Some(ts) => m.thread_ts.as_ref() == Some(ts) || (m.thread_ts.is_none() && &m.ts == ts),
    };
    // Pages as Slack's do: `limit` per page (100 by default, at most 999), an opaque cursor
    // for the next page, only messages between `oldest` and `latest` (exclusive unless
    // `inclusive=true`).
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 999);
    let skip = match query.get("cursor").map(String::as_str) {
        None | Some("") => 0,
        Some(cursor) => match cursor
            .strip_prefix("fake-cursor-")
            .and_then(|n| n.parse().ok())
        {
            Some(skip) => skip,
            None => return Json(json!({"ok": false, "error": "invalid_cursor"})).into_response(),
        },
    };
    let bound = |name: &str| match query.get(name) {
        None => Ok(None),
        Some(text) => ts_micros(text).map(Some).ok_or(()),
    };
    let (Ok(oldest), Ok(latest)) = (bound("oldest"), bound("latest")) else {
        return Json(json!({"ok": false, "error": "invalid_ts_oldest"})).into_response();
    };
    let inclusive = query.get("inclusive").map(String::as_str) == Some("true");
    let in_window = |ts: u64| {
        let after = oldest.is_none_or(|o| ts > o || (inclusive && ts == o));
        let before = latest.is_none_or(|l| ts < l || (inclusive && ts == l));
        after && before
    };
    let state = state.lock().unwrap();
    let mut in_channel: Vec<&Message> = state
        .messages
        .iter()
        .filter(|m| m.channel == channel && listed(m))
        .filter(|m| ts_micros(&m.ts).is_some_and(in_window))
        .collect();
    if newest_first {
        in_channel.reverse();
    }
    let has_more = in_channel.len() > skip + limit;
    let messages: Vec<Value> = in_channel
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(|m| {
            let mut v = json!({"type": "message", "ts": m.ts, "text": m.text});
            if query.get("include_all_metadata").map(String::as_str) == Some("true")
                && !m.metadata.is_null()
            {
                v["metadata"] = m.metadata.clone();
            }
            v
        })
        .collect();
    let next_cursor = if has_more {
        format!("fake-cursor-{}", skip + limit)
    } else {
        String::new()
    };
    Json(json!({
        "ok": true,
        "messages": messages,
        "has_more": has_more,
        "response_metadata": {"next_cursor": next_cursor},
    }))
    .into_response()
}

async fn handle_hook(
    State(state): State<Arc<Mutex<SlackState>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    record(&state, "incoming-webhook", &headers, body);
    if let Some(response) = take_script(&state, "incoming-webhook")
        .as_ref()
        .and_then(scripted_failure)
    {
        return response;
    }
    "ok".into_response()
}
