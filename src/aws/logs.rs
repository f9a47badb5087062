//! CloudWatch Logs adapter: one FilterLogEvents page; the newest event time of a log group
//! (DescribeLogStreams); errors classified.

use aws_sdk_cloudwatchlogs::Client;

use super::error::{classify, AwsError, CallContext};

/// IAM action of the call, as the error messages and the policy name it.
pub const FILTER_LOG_EVENTS: &str = "logs:FilterLogEvents";
/// IAM action of the newest-event read.
pub const DESCRIBE_LOG_STREAMS: &str = "logs:DescribeLogStreams";

/// Streams read to find a group's newest event: the first streams by last event time, a few in
/// case CloudWatch's ordering lags (a stream's times are updated eventually).
const NEWEST_STREAMS: i32 = 5;

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

/// The newest event time of a log group, epoch milliseconds: the latest `lastEventTimestamp` or
/// `lastIngestionTime` among its streams most recently written (`DescribeLogStreams` ordered by
/// `LastEventTime`, descending, one page). `None` for a group without events.
pub async fn newest_event_ms(
    client: &Client,
    endpoint: Option<&str>,
    log_group: &str,
) -> Result<Option<i64>, AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_LOG_STREAMS,
        resource: Some(log_group),
        endpoint,
    };
    let output = client
        .describe_log_streams()
        .log_group_name(log_group)
        .order_by(aws_sdk_cloudwatchlogs::types::OrderBy::LastEventTime)
        .descending(true)
        .limit(NEWEST_STREAMS)
        .send()
        .await
        .map_err(|e| classify(ctx, e).for_log_group(log_group))?;
    Ok(output
        .log_streams()
        .iter()
        .flat_map(|s| [s.last_event_timestamp(), s.last_ingestion_time()])
        .flatten()
        .max())
}
