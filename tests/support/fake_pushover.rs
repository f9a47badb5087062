//! A fake Pushover Messages API on 127.0.0.1 for the notify tests: `POST /1/messages.json` with
//! a form body, validated as Pushover does (token, user, message required; title 250, message
//! 1024, url 512 characters), answered with `{"status":1,"request":…}`; records every request
//! and answers scripted failures: 429, HTTP errors, slow answers after the work.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

#[derive(Debug, Clone)]
pub enum Scripted {
    Status(u16),
    RateLimited,
    SlowAfterWork(Duration),
}

#[derive(Default)]
struct PushoverState {
    /// Every request's form fields, in arrival order.
    requests: Vec<HashMap<String, String>>,
    /// The messages accepted.
    accepted: Vec<HashMap<String, String>>,
    script: VecDeque<Scripted>,
    next: u64,
}

#[derive(Clone)]
pub struct FakePushover {
    pub addr: SocketAddr,
    state: Arc<Mutex<PushoverState>>,
}

impl FakePushover {
    pub async fn start() -> FakePushover {
        let state = Arc::new(Mutex::new(PushoverState::default()));
        let app = Router::new()
            .route("/1/messages.json", post(messages))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakePushover { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn script(&self, answer: Scripted) {
        self.state.lock().unwrap().script.push_back(answer);
    }

    pub fn requests(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn accepted(&self) -> Vec<HashMap<String, String>> {
        self.state.lock().unwrap().accepted.clone()
    }
}

async fn messages(State(state): State<Arc<Mutex<PushoverState>>>, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let script = {
        let mut state = state.lock().unwrap();
        state.requests.push(form.clone());
        state.script.pop_front()
    };
    let request = format!("fake-request-{}", uuid_like(&state));
    match script {
        Some(Scripted::Status(code)) => {
            return (
                StatusCode::from_u16(code).unwrap(),
                Json(json!({"status": 0, "errors": ["fake pushover failure"], "request": request})),
            )
                .into_response()
        }
        Some(Scripted::RateLimited) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"status": 0, "errors": ["application is over its monthly message limit"], "request": request})),
            )
                .into_response()
        }
        _ => {}
    }
    let mut errors = Vec::new();
    if form.get("token").map(String::as_str) != Some("apptoken123") {
        errors.push("application token is invalid");
    }
    if form.get("user").map(String::as_str) != Some("userkey456") {
        errors.push("user identifier is not a valid user, group, or subscribed user key");
    }
    let len = |k: &str| form.get(k).map_or(0, |v| v.chars().count());
    if len("message") == 0 {
        errors.push("message cannot be blank");
    }
    if len("message") > 1024 {
        errors.push("message is too long");
    }
    if len("title") > 250 {
        errors.push("title is too long");
    }
    if len("url") > 512 {
        errors.push("url is too long");
    }
    if !errors.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": 0, "errors": errors, "request": request})),
        )
            .into_response();
    }
    state.lock().unwrap().accepted.push(form);
    if let Some(Scripted::SlowAfterWork(delay)) = script {
        tokio::time::sleep(delay).await;
    }
    Json(json!({"status": 1, "request": request})).into_response()
}

fn uuid_like(state: &Mutex<PushoverState>) -> u64 {
    let mut state = state.lock().unwrap();
    state.next += 1;
    state.next
}
