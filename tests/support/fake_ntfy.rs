//! A fake ntfy server on 127.0.0.1 for the notify tests, behaving as ntfy does: publish as JSON
//! (`POST /` with the topic in the body) or in the header form (`POST/PUT /<topic>`, the body the
//! message, `Title`/`Priority`/`Tags`/`Click` headers), every message kept in the topic's cache
//! with an id and a time, and the poll (`GET /<topic>/json?poll=1&since=<unix|all>`) answering the
//! cached messages as newline-delimited JSON. Records every request; answers scripted failures:
//! 429 with Retry-After, HTTP errors, slow answers (after the work, so the client times out on a
//! message that was published).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    pub time: i64,
    pub topic: String,
    pub title: String,
    pub message: String,
    pub priority: u64,
    pub tags: Vec<String>,
    pub click: Option<String>,
    pub actions: Value,
}

#[derive(Debug, Clone)]
pub enum Scripted {
    Status(u16),
    RateLimited {
        retry_after_secs: u64,
    },
    /// Publish, then answer only after this long.
    SlowAfterWork(Duration),
}

#[derive(Default)]
struct NtfyState {
    requests: Vec<Recorded>,
    messages: Vec<Message>,
    /// Scripted answers by route: "publish", "poll".
    script: VecDeque<(String, Scripted)>,
    next_id: u64,
    /// The bearer token it accepts (`tk_testtoken` until told otherwise), like an ntfy server's
    /// access token for the topic.
    token: Option<String>,
}

#[derive(Clone)]
pub struct FakeNtfy {
    pub addr: SocketAddr,
    state: Arc<Mutex<NtfyState>>,
}

impl FakeNtfy {
    pub async fn start() -> FakeNtfy {
        let state = Arc::new(Mutex::new(NtfyState::default()));
        let app = Router::new()
            .route("/", any(publish_json))
            .route("/{topic}", any(publish_headers))
            .route("/{topic}/json", get(poll))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeNtfy { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, route: &str, answer: Scripted) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back((route.to_string(), answer));
    }

    /// Accepts only this bearer token from now on (a rotated access token).
    pub fn accept_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_string());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn messages(&self) -> Vec<Message> {
        self.state.lock().unwrap().messages.clone()
    }
}

fn record(
    state: &Mutex<NtfyState>,
    method: &Method,
    path: &str,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: Value,
) {
    state.lock().unwrap().requests.push(Recorded {
        method: method.to_string(),
        path: path.to_string(),
        query,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body,
    });
}

fn take_script(state: &Mutex<NtfyState>, route: &str) -> Option<Scripted> {
    let mut state = state.lock().unwrap();
    let index = state.script.iter().position(|(r, _)| r == route)?;
    state.script.remove(index).map(|(_, s)| s)
}

fn failure(answer: &Scripted) -> Option<Response> {
    match answer {
        Scripted::Status(code) => Some(
            (
                StatusCode::from_u16(*code).unwrap(),
                Json(json!({"code": u32::from(*code) * 100, "http": code, "error": "fake ntfy failure"})),
            )
                .into_response(),
        ),
        Scripted::RateLimited { retry_after_secs } => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                Json(json!({"code": 42901, "http": 429, "error": "limit reached: too many requests"})),
            )
                .into_response(),
        ),
        Scripted::SlowAfterWork(_) => None,
    }
}

fn authorized(state: &Mutex<NtfyState>, headers: &HeaderMap) -> bool {
    let token = state.lock().unwrap().token.clone();
    let token = token.as_deref().unwrap_or("tk_testtoken");
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {token}") || v.starts_with("Basic "))
}

async fn store(state: &Mutex<NtfyState>, script: Option<Scripted>, message: Message) -> Response {
    let answer = {
        let mut state = state.lock().unwrap();
        state.next_id += 1;
        let mut message = message;
        message.id = format!("fakeid{:06}", state.next_id);
        message.time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let answer = event(&message);
        state.messages.push(message);
        answer
    };
    if let Some(Scripted::SlowAfterWork(delay)) = script {
        tokio::time::sleep(delay).await;
    }
    Json(answer).into_response()
}

fn event(message: &Message) -> Value {
    json!({
        "id": message.id, "time": message.time, "expires": message.time + 43200,
        "event": "message", "topic": message.topic, "title": message.title,
        "message": message.message, "priority": message.priority, "tags": message.tags,
        "click": message.click, "actions": message.actions,
    })
}

async fn publish_json(
    State(state): State<Arc<Mutex<NtfyState>>>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    record(&state, &method, "/", HashMap::new(), &headers, body.clone());
    if method != Method::POST && method != Method::PUT {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let script = take_script(&state, "publish");
    if let Some(response) = script.as_ref().and_then(failure) {
        return response;
    }
    if !authorized(&state, &headers) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"code": 40301, "http": 403, "error": "forbidden"})),
        )
            .into_response();
    }
    let Some(topic) = body["topic"].as_str() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 40001, "http": 400, "error": "invalid request: topic missing"})),
        )
            .into_response();
    };
    let actions = body["actions"].clone();
    if actions.as_array().is_some_and(|a| a.len() > 3) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": 40018, "http": 400, "error": "too many actions"})),
        )
            .into_response();
    }
    let message = Message {
        id: String::new(),
        time: 0,
        topic: topic.to_string(),
        title: body["title"].as_str().unwrap_or("").to_string(),
        message: body["message"].as_str().unwrap_or("").to_string(),
        priority: body["priority"].as_u64().unwrap_or(3),
        tags: body["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        click: body["click"].as_str().map(str::to_string),
        actions,
    };
    store(&state, script, message).await
}

async fn publish_headers(
    State(state): State<Arc<Mutex<NtfyState>>>,
    Path(topic): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    record(
        &state,
        &method,
        &format!("/{topic}"),
        HashMap::new(),
        &headers,
        json!(body),
    );
    if method != Method::POST && method != Method::PUT {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let script = take_script(&state, "publish");
    if let Some(response) = script.as_ref().and_then(failure) {
        return response;
    }
    if !authorized(&state, &headers) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let message = Message {
        id: String::new(),
        time: 0,
        topic,
        title: header("title").unwrap_or_default(),
        message: body,
        priority: header("priority").and_then(|p| p.parse().ok()).unwrap_or(3),
        tags: header("tags")
            .map(|t| t.split(',').map(|x| x.trim().to_string()).collect())
            .unwrap_or_default(),
        click: header("click"),
        actions: Value::Null,
    };
    store(&state, script, message).await
}

async fn poll(
    State(state): State<Arc<Mutex<NtfyState>>>,
    Path(topic): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    record(
        &state,
        &method,
        &format!("/{topic}/json"),
        query.clone(),
        &headers,
        Value::Null,
    );
    if let Some(response) = take_script(&state, "poll").as_ref().and_then(failure) {
        return response;
    }
    if query.get("poll").map(String::as_str) != Some("1") {
        return (
            StatusCode::BAD_REQUEST,
            "the fake streams nothing: poll=1 only",
        )
            .into_response();
    }
    let since: i64 = match query.get("since").map(String::as_str) {
        None | Some("all") => 0,
        Some(text) => match text.parse() {
            Ok(since) => since,
            Err(_) => return (StatusCode::BAD_REQUEST, "invalid since").into_response(),
        },
    };
    let state = state.lock().unwrap();
    let lines: String = state
        .messages
        .iter()
        .filter(|m| m.topic == topic && m.time >= since)
        .map(|m| format!("{}\n", event(m)))
        .collect();
    lines.into_response()
}
