//! What Slack and PagerDuty calls share: the HTTP client (rustls, a per-request timeout) and the
//! reading of an answer's status into a [`DeliveryError`]. Transport errors never carry the URL
//! (an incoming-webhook URL is a secret).

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use super::DeliveryError;

/// The longest `Retry-After` taken at face value.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("cabal-triage/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A request that got no answer: timeouts and connection failures are worth retrying.
pub fn transport_error(service: &str, what: &str, error: reqwest::Error) -> DeliveryError {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    DeliveryError::transient(format!("{service} {what} {kind}: {}", error.without_url()))
}

/// `Retry-After` in seconds (PagerDuty may send `ratelimit-reset` instead).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    ["retry-after", "ratelimit-reset"].iter().find_map(|name| {
        headers
            .get(*name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
            .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER))
    })
}

/// 429 and 5xx are transient; the caller decides about the other statuses.
pub fn transient_status(
    service: &str,
    what: &str,
    status: StatusCode,
    headers: &HeaderMap,
) -> Option<DeliveryError> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(DeliveryError::Transient {
            reason: format!("{service} rate-limited {what} (HTTP 429)"),
            retry_after: retry_after(headers),
        });
    }
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        return Some(DeliveryError::Transient {
            reason: format!("{service} answered HTTP {} to {what}", status.as_u16()),
            retry_after: retry_after(headers),
        });
    }
    None
}

/// The start of an error body, for an operator (never a secret: bodies come from the service).
pub fn body_excerpt(body: &str) -> String {
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    flat.trim().to_string()
}
