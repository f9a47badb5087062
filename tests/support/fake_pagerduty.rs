//! A fake PagerDuty REST API on 127.0.0.1 for the notify tests: records every request, serves
//! incidents that may appear only after some polls, keeps notes, and answers scripted failures.
//! It also takes Events API v2 `POST /v2/enqueue` (what Alertmanager's `pagerduty_configs` send):
//! a trigger opens one incident per `dedup_key`, as PagerDuty does.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

#[derive(Debug, Clone)]
pub enum Scripted {
    Status(u16),
    RateLimited {
        retry_after_secs: u64,
    },
    /// Do the work, then answer only after this long (the client times out first).
    SlowAfterWork(std::time::Duration),
}

struct Incident {
    id: String,
    key: String,
    /// The incident is listed only after this many lookups.
    appears_after_polls: usize,
}

#[derive(Default)]
struct PdState {
    requests: Vec<Recorded>,
    incidents: Vec<Incident>,
    polls: usize,
    notes: HashMap<String, Vec<String>>,
    /// Scripted answers by route: "list", "notes_get", "notes_post".
    script: VecDeque<(String, Scripted)>,
    /// Events API v2 bodies, in arrival order.
    events: Vec<Value>,
    /// Every call of a route answers this until the instant (an outage).
    outages: Vec<(String, Scripted, std::time::Instant)>,
}

#[derive(Clone)]
pub struct FakePagerDuty {
    pub addr: SocketAddr,
    state: Arc<Mutex<PdState>>,
}

impl FakePagerDuty {
    pub async fn start() -> FakePagerDuty {
        let state = Arc::new(Mutex::new(PdState::default()));
        let app = Router::new()
            .route("/incidents", get(list_incidents))
            .route("/incidents/{id}/notes", get(list_notes).post(add_note))
            .route("/v2/enqueue", post(enqueue_event))
            .fallback(fallback)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakePagerDuty { addr, state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn add_incident(&self, id: &str, incident_key: &str, appears_after_polls: usize) {
        self.state.lock().unwrap().incidents.push(Incident {
            id: id.into(),
            key: incident_key.into(),
            appears_after_polls,
        });
    }

    pub fn script(&self, route: &str, answer: Scripted) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back((route.to_string(), answer));
    }

    /// Every call of `route` answers `answer` until `until` (an outage window).
    #[allow(dead_code)] // used by tests/reliability.rs, not by every includer
    pub fn fail_until(&self, route: &str, answer: Scripted, until: std::time::Instant) {
        self.state
            .lock()
            .unwrap()
            .outages
            .push((route.to_string(), answer, until));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The Events API v2 URL (`pagerduty_configs.url`).
    #[allow(dead_code)]
    pub fn events_url(&self) -> String {
        format!("http://{}/v2/enqueue", self.addr)
    }

    /// Events API v2 bodies received so far.
    #[allow(dead_code)]
    pub fn events(&self) -> Vec<Value> {
        self.state.lock().unwrap().events.clone()
    }

    /// Ids of the incidents opened so far with their incident keys.
    #[allow(dead_code)]
    pub fn incidents(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .unwrap()
            .incidents
            .iter()
            .map(|i| (i.id.clone(), i.key.clone()))
            .collect()
    }

    pub fn notes(&self, incident: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .notes
            .get(incident)
            .cloned()
            .unwrap_or_default()
    }
}

fn record(
    state: &Mutex<PdState>,
    method: &str,
    path: String,
    query: HashMap<String, String>,
    headers: &HeaderMap,
    body: Value,
) {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    state.lock().unwrap().requests.push(Recorded {
        method: method.into(),
        path,
        query,
        headers,
        body,
    });
}

fn take(state: &Mutex<PdState>, route: &str) -> Option<Scripted> {
    let mut state = state.lock().unwrap();
    let now = std::time::Instant::now();
    if let Some((_, answer, _)) = state
        .outages
        .iter()
        .find(|(r, _, until)| r == route && now < *until)
    {
        return Some(answer.clone());
    }
    let index = state.script.iter().position(|(r, _)| r == route)?;
    state.script.remove(index).map(|(_, answer)| answer)
}

fn scripted(state: &Mutex<PdState>, route: &str) -> Option<Response> {
    answer(take(state, route)?)
}

fn answer(answer: Scripted) -> Option<Response> {
    Some(match answer {
        Scripted::Status(code) => (
            StatusCode::from_u16(code).unwrap(),
            Json(
                json!({"error": {"message": format!("fake pagerduty says {code}"), "code": 2100}}),
            ),
        )
            .into_response(),
        Scripted::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            [("ratelimit-reset", retry_after_secs.to_string())],
            Json(json!({"error": {"message": "Rate Limit Exceeded", "code": 2020}})),
        )
            .into_response(),
        Scripted::SlowAfterWork(_) => return None,
    })
}

async fn list_incidents(
    State(state): State<Arc<Mutex<PdState>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    record(
        &state,
        "GET",
        "/incidents".into(),
        query.clone(),
        &headers,
        Value::Null,
    );
    if let Some(response) = scripted(&state, "list") {
        return response;
    }
    let mut state = state.lock().unwrap();
    state.polls += 1;
    let polls = state.polls;
    let key = query.get("incident_key").cloned().unwrap_or_default();
    let incidents: Vec<Value> = state
        .incidents
        .iter()
        .filter(|i| i.key == key && polls > i.appears_after_polls)
        .map(|i| json!({"id": i.id, "incident_key": i.key, "status": "triggered", "created_at": "2026-11-28T20:00:05Z"}))
        .collect();
    Json(json!({"incidents": incidents, "limit": 25, "offset": 0, "more": false})).into_response()
}

async fn list_notes(
    State(state): State<Arc<Mutex<PdState>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    record(
        &state,
        "GET",
        format!("/incidents/{id}/notes"),
        HashMap::new(),
        &headers,
        Value::Null,
    );
    if let Some(response) = scripted(&state, "notes_get") {
        return response;
    }
    let state = state.lock().unwrap();
    if !state.incidents.iter().any(|i| i.id == id) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"message": "Not Found", "code": 2100}})),
        )
            .into_response();
    }
    let notes: Vec<Value> = state
        .notes
        .get(&id)
        .map(|n| n.iter().map(|c| json!({"id": "N", "content": c})).collect())
        .unwrap_or_default();
    Json(json!({"notes": notes})).into_response()
}

async fn add_note(
    State(state): State<Arc<Mutex<PdState>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    record(
        &state,
        "POST",
        format!("/incidents/{id}/notes"),
        HashMap::new(),
        &headers,
        body.clone(),
    );
    let delay = match take(&state, "notes_post") {
        Some(Scripted::SlowAfterWork(delay)) => Some(delay),
        Some(other) => return answer(other).unwrap(),
        None => None,
    };
    let response = {
        let mut state = state.lock().unwrap();
        if !state.incidents.iter().any(|i| i.id == id) {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": {"message": "Not Found", "code": 2100}})),
            )
                .into_response();
        }
        let content = body["note"]["content"].as_str().unwrap_or("").to_string();
        let notes = state.notes.entry(id).or_default();
        notes.push(content.clone());
        let note_id = format!("PN{}", notes.len());
        Json(json!({"note": {"id": note_id, "content": content}})).into_response()
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Events API v2: a `trigger` opens an incident for a `dedup_key` not seen before; every event
/// is recorded. Answers like PagerDuty: 202 with the dedup key, 400 without a routing key.
async fn enqueue_event(State(state): State<Arc<Mutex<PdState>>>, body: String) -> Response {
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut state = state.lock().unwrap();
    state.events.push(event.clone());
    let (Some(_), Some(dedup_key)) = (
        event["routing_key"].as_str(),
        event["dedup_key"].as_str().map(str::to_string),
    ) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "invalid event", "message": "Event object is invalid"})),
        )
            .into_response();
    };
    if event["event_action"] == "trigger" && !state.incidents.iter().any(|i| i.key == dedup_key) {
        let id = format!("PAM{}", state.incidents.len() + 1);
        state.incidents.push(Incident {
            id,
            key: dedup_key.clone(),
            appears_after_polls: 0,
        });
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})),
    )
        .into_response()
}

async fn fallback(
    State(state): State<Arc<Mutex<PdState>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    record(
        &state,
        method.as_str(),
        uri.path().to_string(),
        HashMap::new(),
        &headers,
        Value::Null,
    );
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"message": "Not Found", "code": 2100}})),
    )
        .into_response()
}
