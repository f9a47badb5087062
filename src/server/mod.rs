//! The HTTP edge (axum): the Alertmanager webhook, the operator API, health and metrics. One path
//! from socket to handler: `router` builds the routes, each handler is in its own file.

mod api;
pub mod auth;
pub mod conn;
mod intake;
pub mod ready;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::sync::Notify;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::runbook::Registry;

pub use auth::{Authenticator, Scope};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub ledger: Arc<dyn Ledger>,
    pub runbooks: Arc<Registry>,
    pub auth: Arc<Authenticator>,
    pub metrics: Arc<Metrics>,
    /// Wakes idle workers when new jobs are recorded.
    pub work_available: Arc<Notify>,
    /// Told after an ingest wrote delivery rows, so the outbox sends them at once.
    pub deliveries_written: Arc<crate::ledger::DeliveriesWritten>,
    /// `notify.unknown_alerts = "post"`: an alert without a runbook gets one message.
    pub post_unknown_alerts: bool,
    pub limits: Limits,
    /// `/readyz`'s cached ledger check.
    pub readiness: Arc<ready::Readiness>,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    /// Time to receive a whole webhook body (408 past it).
    pub body_read_timeout: std::time::Duration,
    pub alerts_per_payload: usize,
    pub max_attempts: u32,
    /// `runbooks.retriage_after_secs`: a repeat of a firing episode whose verdict is older is
    /// triaged again (None: never).
    pub retriage_after: Option<std::time::Duration>,
}

pub fn router(state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .route("/api/v1/alerts", post(intake::receive_alerts))
        .route("/api/v1/episodes", get(api::list_episodes))
        .route("/api/v1/episodes/{id}", get(api::get_episode))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// A JSON error body: `{"error": "...", "field": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            field: None,
        }
    }

    pub fn with_field(mut self, field: Option<&str>) -> Self {
        self.field = field.map(str::to_string);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(field) = self.field {
            body["field"] = serde_json::Value::String(field);
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"cabal-triage\""),
            );
        }
        response
    }
}
