//! The CloudWatch Logs implementation of `probe::LogScanProbe`: every page of FilterLogEvents
//! per tier, with the shared pattern and caps (`probe::logs`), the three tiers in parallel, each
//! call retried on throttling within the probe's deadline; beside each tier's pages, one
//! DescribeLogStreams for the group's newest event (any line), so the read adds no latency.

use async_trait::async_trait;
use tokio::time::Instant;

use crate::aws::logs::{
    filter_log_events_page, newest_event_ms, FilterQuery, DESCRIBE_LOG_STREAMS, FILTER_LOG_EVENTS,
};
use crate::aws::{retry, AwsClients};
use crate::config::Config;
use crate::probe::logs::{LogAccumulator, LogCaps, LogScan, TierLogScan, FILTER_PATTERN};
use crate::probe::snapshot::{LogEvent, Window};
use crate::probe::{LogScanProbe, ProbeError};
use crate::timing::{Backoff, Deadline};

/// The scan against CloudWatch Logs.
#[derive(Debug, Clone)]
pub struct AwsLogScan {
    client: aws_sdk_cloudwatchlogs::Client,
    endpoint: Option<String>,
    /// (tier, log group) in report order.
    tiers: Vec<(String, String)>,
    caps: LogCaps,
    backoff: Backoff,
}

impl AwsLogScan {
    pub fn new(clients: &AwsClients, config: &Config) -> AwsLogScan {
        let probes = &config.probes;
        AwsLogScan {
            client: clients.logs.clone(),
            endpoint: clients.endpoints.logs.clone(),
            tiers: config
                .cabalmail
                .tiers_in_order()
                .map(|(name, tier)| (name.to_string(), tier.log_group.clone()))
                .collect(),
            caps: LogCaps {
                max_events: probes.log_max_events_per_tier,
                max_bytes: probes.log_max_bytes_per_tier,
                page_limit: probes.log_page_limit,
            },
            backoff: probes.throttle_backoff(),
        }
    }

    async fn scan_tier(
        &self,
        tier: &str,
        log_group: &str,
        window: Window,
        deadline: Deadline,
    ) -> TierLogScan {
        let (mut scan, newest) = tokio::join!(
            self.scan_pages(tier, log_group, window, deadline),
            self.newest(log_group, deadline)
        );
        match newest {
            Ok(streams_ms) => {
                scan.newest_event_ms = TierLogScan::newest_of(streams_ms, &scan.events);
            }
            Err(e) => {
                tracing::warn!(tier, log_group, error = %e, "newest log event unknown");
                scan.newest_error = Some(e);
            }
        }
        scan
    }

    async fn newest(&self, log_group: &str, deadline: Deadline) -> Result<Option<i64>, ProbeError> {
        let action = format!("{DESCRIBE_LOG_STREAMS} on {log_group}");
        retry::call(&action, deadline, self.backoff, || {
            newest_event_ms(&self.client, self.endpoint.as_deref(), log_group)
        })
        .await
        .map_err(ProbeError::from)
    }

    async fn scan_pages(
        &self,
        tier: &str,
        log_group: &str,
        window: Window,
        deadline: Deadline,
    ) -> TierLogScan {
        let started = Instant::now();
        let query = FilterQuery {
            log_group,
            start_ms: window.from_ms(),
            end_ms: window.to_ms(),
            filter_pattern: FILTER_PATTERN,
            limit: self.caps.page_limit,
        };
        let action = format!("{FILTER_LOG_EVENTS} on {log_group}");
        let mut kept = LogAccumulator::default();
        let mut pages = 0u32;
        let mut token: Option<String> = None;
        let mut error = None;
        loop {
            let page = retry::call(&action, deadline, self.backoff, || {
                filter_log_events_page(
                    &self.client,
                    self.endpoint.as_deref(),
                    &query,
                    token.clone(),
                )
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(tier, log_group, pages, error = %e, "log scan stopped");
                    error = Some(ProbeError::from(e));
                    break;
                }
            };
            pages += 1;
            let events = page.events.into_iter().map(|raw| LogEvent {
                timestamp: raw.timestamp,
                message: raw.message,
                log_stream: raw.log_stream,
            });
            if !kept.push_page(events, &self.caps) {
                break;
            }
            match page.next_token {
                // CloudWatch ends with no token; a repeated token would loop forever.
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        TierLogScan {
            tier: tier.to_string(),
            log_group: log_group.to_string(),
            events: kept.events,
            bytes: kept.bytes,
            truncated: kept.truncated,
            pages,
            error,
            elapsed: started.elapsed(),
            newest_event_ms: None,
            newest_error: None,
        }
    }
}

#[async_trait]
impl LogScanProbe for AwsLogScan {
    async fn scan(&self, window: Window, deadline: Deadline) -> LogScan {
        let scans = self
            .tiers
            .iter()
            .map(|(tier, group)| self.scan_tier(tier, group, window, deadline));
        LogScan {
            window,
            tiers: futures::future::join_all(scans).await,
        }
    }
}
