//! `POST /api/v1/alerts`: the Alertmanager webhook. It checks, in this order, the secret (401),
//! the content type (415), the size (413), the time the body takes (408), the payload (400), then records every alert in the
//! ledger and answers 202 only once they are committed; 503 when the ledger cannot write, so
//! Alertmanager retries. No triage happens here: workers are woken and the answer is immediate.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use time::OffsetDateTime;

use super::{ApiError, AppState, Scope};
use crate::alert::{excerpt, parse_webhook, EpisodeKey};
use crate::ledger::{IncomingAlert, IngestOutcome, LedgerError};
use crate::metrics::CodeLabels;

pub async fn receive_alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(|id| excerpt(id).into_owned())
        .unwrap_or_default();
    let response = match handle(&state, &headers, body).await {
        Ok(response) => response,
        Err(error) => {
            if error.status().is_server_error() {
                tracing::error!(request_id = %request_id, status = error.status().as_u16(), error = %error.message(), "webhook refused");
            } else {
                tracing::warn!(request_id = %request_id, status = error.status().as_u16(), error = %error.message(), "webhook refused");
            }
            error.into_response()
        }
    };
    state
        .metrics
        .webhook_requests
        .get_or_create(&CodeLabels {
            code: response.status().as_u16(),
        })
        .inc();
    response
}

async fn handle(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !state.auth.allows(authorization, Scope::Webhook) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong secret: send Authorization: Bearer <secret> (or basic auth with the secret as password)",
        ));
    }
    if !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/json",
        ));
    }
    let limit = state.limits.body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than the limit of {limit} bytes (server.body_limit_bytes); lower max_alerts on the webhook config"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > DISCARD_MAX_BYTES) {
        // Far too large to be worth reading: answer at once (the connection is closed).
        return Err(too_large());
    }
    let timeout = state.limits.body_read_timeout;
    let read = tokio::time::timeout(timeout, read_limited(body, limit)).await;
    let Ok(read) = read else {
        return Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} s (server.body_read_timeout_secs)",
                timeout.as_secs_f64()
            ),
        ));
    };
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(BodyRead::TooLarge) => return Err(too_large()),
        Err(BodyRead::Failed(error)) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("could not read the body: {error}"),
            ))
        }
    };
    let payload = parse_webhook(&bytes).map_err(|error| {
        ApiError::new(StatusCode::BAD_REQUEST, error.to_string()).with_field(error.field())
    })?;
    if payload.alerts.len() > state.limits.alerts_per_payload {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} alerts in one payload, more than the limit of {} (server.max_alerts_per_payload); set max_alerts on the webhook config",
                payload.alerts.len(),
                state.limits.alerts_per_payload
            ),
        )
        .with_field(Some("alerts")));
    }
    if payload.truncated_alerts > 0 {
        tracing::warn!(
            truncated = payload.truncated_alerts,
            "Alertmanager truncated this notification (max_alerts): the dropped alerts are not recorded"
        );
    }
    let alert_count = payload.alerts.len();
    let incoming: Vec<IncomingAlert> = payload
        .alerts
        .into_iter()
        .map(|alert| IncomingAlert {
            key: EpisodeKey::new(&payload.group_key, &alert.fingerprint, alert.starts_at),
            has_runbook: state.runbooks.has(alert.alertname()),
            announce: state.post_unknown_alerts
                && alert.status == crate::alert::AlertStatus::Firing
                && !state.runbooks.has(alert.alertname()),
            alert,
            max_attempts: state.limits.max_attempts,
            receiver: payload.receiver.clone(),
            external_url: payload.external_url.clone(),
        })
        .collect();
    let results = state
        .ledger
        .ingest(incoming, OffsetDateTime::now_utc())
        .await
        .map_err(|error| match error {
            LedgerError::Unavailable(_) | LedgerError::Closed | LedgerError::Locked(_) => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not stored, retry: {error}"),
                )
            }
            // Alertmanager resends a 5xx forever and drops a 4xx: an alert that can never be
            // stored is refused for good, saying why.
            LedgerError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("not stored, do not retry: {error}"),
            ),
            LedgerError::Corrupt(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("not stored: {error}"),
            ),
        })?;
    state.metrics.alerts_received.inc_by(alert_count as u64);
    let mut created = 0;
    for result in &results {
        match result.outcome {
            IngestOutcome::Created => created += 1,
            IngestOutcome::Repeat => {
                state.metrics.repeats.inc();
            }
            IngestOutcome::Resolved => {}
        }
    }
    let retriaged = claim_retriages(state, &results).await;
    if created + retriaged > 0 {
        state.work_available.notify_waiters();
    }
    // New episodes, repeats and resolutions write delivery rows with the ingest.
    if !results.is_empty() {
        state.deliveries_written.tell();
    }
    tracing::info!(
        group_key = %excerpt(&payload.group_key),
        alerts = alert_count,
        new_episodes = created,
        "alerts recorded"
    );
    let episodes: Vec<serde_json::Value> = results
        .iter()
        .map(|r| serde_json::json!({"id": r.id, "alertname": r.alertname, "state": r.state, "outcome": r.outcome}))
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "episodes": episodes })),
    )
        .into_response())
}

/// Fresh verdicts: each repeat of a triaged episode claims a new triage when its verdict is
/// older than `runbooks.retriage_after_secs`. The ledger decides with one conditional write, so
/// of the replicas receiving the same repeat one claims it. The alerts are stored whatever
/// happens here: a claim that fails is logged, and the next repeat tries again. Returns how many
/// were claimed.
async fn claim_retriages(state: &AppState, results: &[crate::ledger::IngestResult]) -> usize {
    let Some(after) = state.limits.retriage_after else {
        return 0;
    };
    let now = OffsetDateTime::now_utc();
    let mut claimed = 0;
    for result in results {
        if result.outcome != IngestOutcome::Repeat
            || result.state != crate::ledger::EpisodeState::Triaged
        {
            continue;
        }
        let reason = format!(
            "Alertmanager repeated the alert and the verdict was older than {} s (runbooks.retriage_after_secs)",
            after.as_secs()
        );
        match state
            .ledger
            .claim_retriage(&result.id, now - after, &reason, now)
            .await
        {
            Ok(true) => {
                claimed += 1;
                tracing::info!(episode = %result.id, "verdict older than runbooks.retriage_after_secs: triaging again");
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(episode = %result.id, %error, "could not claim a fresh triage; the next repeat tries again")
            }
        }
    }
    claimed
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Bodies over the limit but under this are read to the end and discarded before the 413, so
/// the sender sees the 413 rather than a connection reset mid-write (which Alertmanager would
/// retry as a transport error).
const DISCARD_MAX_BYTES: u64 = 16 * 1024 * 1024;

enum BodyRead {
    TooLarge,
    Failed(String),
}

/// Reads the body up to `limit` bytes; past it, drains (up to `DISCARD_MAX_BYTES`) and reports
/// `TooLarge`.
async fn read_limited(mut body: Body, limit: usize) -> Result<bytes::Bytes, BodyRead> {
    let mut collected = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    let mut over = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyRead::Failed(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if over || collected.len() + data.len() > limit {
            over = true;
            if seen > DISCARD_MAX_BYTES {
                break;
            }
            continue;
        }
        collected.extend_from_slice(&data);
    }
    if over {
        Err(BodyRead::TooLarge)
    } else {
        Ok(collected.freeze())
    }
}
