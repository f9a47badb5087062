//! CloudWatch Logs adapter: one FilterLogEvents page, errors classified.

use aws_sdk_cloudwatchlogs::Client;

use super::error::{classify, AwsError, CallContext};

/// IAM action of the call, as the error messages and the policy name it.
pub const FILTER_LOG_EVENTS: &str = "logs:FilterLogEvents";

/// One event as FilterLogEvents returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLogEvent {
    pub timestamp: i64,
    pub message: String,
    pub log_stream: String,
}

/// One page of results and the token of the next one.
#[derive(Debug, Clone, Default)]
pub struct LogPage {
    pub events: Vec<RawLogEvent>,
    pub next_token: Option<String>,
}

/// What to ask FilterLogEvents for.
#[derive(Debug, Clone)]
pub struct FilterQuery<'a> {
    pub log_group: &'a str,
    /// Epoch milliseconds, inclusive.
    pub start_ms: i64,
    /// Epoch milliseconds, inclusive.
    pub end_ms: i64,
    pub filter_pattern: &'a str,
    pub limit: i32,
}

/// Fetches one page. A missing log group comes back as `AwsError::LogGroupNotFound`.
pub async fn filter_log_events_page(
    client: &Client,
    endpoint: Option<&str>,
    query: &FilterQuery<'_>,
    next_token: Option<String>,
) -> Result<LogPage, AwsError> {
    let ctx = CallContext {
        iam_action: FILTER_LOG_EVENTS,
        resource: Some(query.log_group),
        endpoint,
    };
    let output = client
        .filter_log_events()
        .log_group_name(query.log_group)
        .start_time(query.start_ms)
        .end_time(query.end_ms)
        .filter_pattern(query.filter_pattern)
        .limit(query.limit)
        .set_next_token(next_token)
        .send()
        .await
        .map_err(|e| classify(ctx, e).for_log_group(query.log_group))?;
    let events = output
        .events()
        .iter()
        .map(|e| RawLogEvent {
            timestamp: e.timestamp().unwrap_or(0),
            message: e.message().unwrap_or("").to_string(),
            log_stream: e.log_stream_name().unwrap_or("").to_string(),
        })
        .collect();
    Ok(LogPage {
        events,
        next_token: output.next_token().map(str::to_string),
    })
}
