//! The operator API (`/api/v1/episodes*`), health, readiness and metrics.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{ApiError, AppState, Scope};
use crate::alert::AlertStatus;
use crate::ledger::{EpisodeQuery, EpisodeState};

const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
pub struct ListParams {
    limit: Option<String>,
    state: Option<String>,
    status: Option<String>,
}

fn require_read(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if state.auth.allows(authorization, Scope::Read) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong secret: send Authorization: Bearer <webhook or read secret>",
        ))
    }
}

fn ledger_error(error: crate::ledger::LedgerError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
}

pub async fn list_episodes(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    require_read(&state, &headers)?;
    let limit = match params.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("limit must be a number from 1 to {MAX_LIMIT}"),
                )
                .with_field(Some("limit")))
            }
        },
    };
    let episode_state = match params.state.as_deref() {
        None => None,
        Some(text) => Some(EpisodeState::parse(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "state must be one of queued, running, triaged, failed, no_runbook, skipped",
            )
            .with_field(Some("state"))
        })?),
    };
    let status = match params.status.as_deref() {
        None => None,
        Some("firing") => Some(AlertStatus::Firing),
        Some("resolved") => Some(AlertStatus::Resolved),
        Some(_) => {
            return Err(
                ApiError::new(StatusCode::BAD_REQUEST, "status must be firing or resolved")
                    .with_field(Some("status")),
            )
        }
    };
    let episodes = state
        .ledger
        .list_episodes(EpisodeQuery {
            limit,
            state: episode_state,
            status,
        })
        .await
        .map_err(ledger_error)?;
    Ok(Json(serde_json::json!({ "episodes": episodes })).into_response())
}

pub async fn get_episode(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require_read(&state, &headers)?;
    if id.len() > 64 {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such episode"));
    }
    match state.ledger.get_episode(&id).await.map_err(ledger_error)? {
        Some(detail) => Ok(Json(with_evidence_snapshot(detail)).into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "no such episode")),
    }
}

/// The episode as the API shows it: the report's replay snapshot moves to the top level as
/// `evidence_snapshot` (`docs/contracts.md`, "Replay snapshot"), so it can be saved and given to `triage --replay`.
fn with_evidence_snapshot(detail: crate::ledger::EpisodeDetail) -> serde_json::Value {
    let mut value = serde_json::to_value(detail).unwrap_or(serde_json::Value::Null);
    let snapshot = value
        .get_mut("report")
        .and_then(|r| r.as_object_mut())
        .and_then(|r| r.remove("evidence_snapshot"))
        .unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("evidence_snapshot".into(), snapshot);
    }
    value
}

pub async fn healthz() -> Response {
    (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response()
}

/// Readiness: the ledger writable, checked at most once per `ready::READY_TTL` for everyone.
/// Without a (read or webhook) token the failure says only "ledger not writable": the backend's
/// own words can name the table, the endpoint, a role ARN and the account.
pub async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let ledger = Arc::clone(&state.ledger);
    let checked = state
        .readiness
        .get(|| async move {
            ledger
                .check_writable(OffsetDateTime::now_utc())
                .await
                .map_err(|error| error.to_string())
        })
        .await;
    match checked {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))).into_response(),
        Err(detail) => {
            let mut body =
                serde_json::json!({"status": "not ready", "error": "ledger not writable"});
            if require_read(&state, &headers).is_ok() {
                body["detail"] = serde_json::Value::String(detail);
            }
            (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics
        .refresh_ledger(Arc::clone(&state.ledger))
        .await;
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}
