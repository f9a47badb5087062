//! The CloudWatch Logs scan: each tier's delivery lines (`stat=Deferred` or `dsn=5`) within the
//! window, all pages, the three tiers in parallel, capped per tier.
//!
//! One combined filter pattern, `?"stat=Deferred" ?"dsn=5"` (CloudWatch ORs `?` terms), rather
//! than two scans: half the FilterLogEvents calls against an account-wide quota of a few calls
//! per second shared with everyone else reading logs, one pass per tier so the caps bound the
//! whole tier, and no duplicates to merge. Each returned event is checked again on this side
//! (`is_delivery_line`), so a backend that ignores or misreads the pattern (moto treats `?`
//! terms as "match everything") cannot fill the caps with unrelated lines.
//!
//! This file holds what every implementation shares (the pattern, the caps, the result); the
//! CloudWatch Logs implementation is `aws::probes::logs`.

use std::time::Duration;

use crate::report::Step;

use super::snapshot::{LogEvent, Snapshot, Window};
use super::{step, ProbeError};

/// The terms of the runbook's metric filters.
pub const DEFERRED_TERM: &str = "stat=Deferred";
pub const BOUNCED_TERM: &str = "dsn=5";
/// Both terms ORed, in CloudWatch Logs filter syntax.
pub const FILTER_PATTERN: &str = r#"?"stat=Deferred" ?"dsn=5""#;

/// Whether a message matches the filter pattern (the same substring test CloudWatch applies to
/// quoted terms).
pub fn is_delivery_line(message: &str) -> bool {
    message.contains(DEFERRED_TERM) || message.contains(BOUNCED_TERM)
}

/// The caps of one tier's scan.
#[derive(Debug, Clone, Copy)]
pub struct LogCaps {
    pub max_events: usize,
    pub max_bytes: usize,
    pub page_limit: i32,
}

/// Events kept so far on one tier, within the caps (pure; tested on its own).
#[derive(Debug, Default)]
pub struct LogAccumulator {
    pub events: Vec<LogEvent>,
    pub bytes: usize,
    pub truncated: bool,
}

impl LogAccumulator {
    /// Adds the matching events of a page. Returns false once a cap is reached: the event that
    /// would cross it is not kept and the scan stops, marked `truncated`.
    pub fn push_page(&mut self, page: impl IntoIterator<Item = LogEvent>, caps: &LogCaps) -> bool {
        for event in page {
            if !is_delivery_line(&event.message) {
                continue;
            }
            if self.events.len() >= caps.max_events
                || self.bytes.saturating_add(event.message.len()) > caps.max_bytes
            {
                self.truncated = true;
                return false;
            }
            self.bytes += event.message.len();
            self.events.push(event);
        }
        true
    }
}

/// One tier's scan: the events gathered (even when it failed part way), and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct TierLogScan {
    pub tier: String,
    pub log_group: String,
    pub events: Vec<LogEvent>,
    pub bytes: usize,
    pub truncated: bool,
    pub pages: u32,
    pub error: Option<ProbeError>,
    pub elapsed: Duration,
    /// The newest event of the log group, any line; `None` when unknown (see `newest_error`).
    pub newest_event_ms: Option<i64>,
    /// Why the newest event could not be read, when it could not.
    pub newest_error: Option<ProbeError>,
}

impl TierLogScan {
    /// The newest event time from the streams' own times and the events this scan read: a
    /// stream's `lastEventTimestamp` is updated by CloudWatch eventually (usually within the
    /// hour), so a scanned event newer than it wins. `None` when the streams were not read.
    pub fn newest_of(streams_ms: Option<i64>, events: &[LogEvent]) -> Option<i64> {
        let scanned = events.iter().map(|e| e.timestamp).max();
        streams_ms.max(scanned)
    }

    pub fn step(&self) -> Step {
        step(
            format!("log scan {}", self.tier),
            self.elapsed,
            self.error.as_ref(),
        )
    }
}

/// The scan of every tier.
#[derive(Debug, Clone, PartialEq)]
pub struct LogScan {
    pub window: Window,
    /// In report order (imap, smtp-in, smtp-out).
    pub tiers: Vec<TierLogScan>,
}

impl LogScan {
    pub fn tier(&self, tier: &str) -> Option<&TierLogScan> {
        self.tiers.iter().find(|t| t.tier == tier)
    }

    pub fn steps(&self) -> Vec<Step> {
        self.tiers.iter().map(TierLogScan::step).collect()
    }

    /// Writes the window and each tier's events into a replay snapshot.
    pub fn record(&self, snapshot: &mut Snapshot) {
        snapshot.window = Some(self.window);
        for scan in &self.tiers {
            let tier = snapshot.tier_mut(&scan.tier);
            tier.log_events = Some(scan.events.clone());
            tier.log_error = scan.error.as_ref().map(|e| e.message.clone());
            tier.log_truncated = scan.truncated;
            tier.newest_log_event_ms = scan.newest_event_ms;
            tier.newest_log_event_error = scan.newest_error.as_ref().map(|e| e.message.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(message: &str) -> LogEvent {
        LogEvent {
            timestamp: 1,
            message: message.to_string(),
            log_stream: "smtp-out/smtp-out/0a1b".into(),
        }
    }

    #[test]
    fn only_delivery_lines_are_kept() {
        assert!(is_delivery_line("... dsn=4.7.28, stat=Deferred: 421 ..."));
        assert!(is_delivery_line("... dsn=5.1.1, stat=User unknown"));
        assert!(!is_delivery_line("... dsn=2.0.0, stat=Sent (ok)"));
        assert!(!is_delivery_line(
            "supervisord: reconfigure entered RUNNING state"
        ));
    }

    #[test]
    fn caps_stop_the_scan_and_mark_it_truncated() {
        let caps = LogCaps {
            max_events: 3,
            max_bytes: 1_000,
            page_limit: 100,
        };
        let mut acc = LogAccumulator::default();
        assert!(acc.push_page(vec![raw("stat=Deferred a"), raw("noise")], &caps));
        assert!(!acc.push_page(
            vec![
                raw("dsn=5.1.1 b"),
                raw("stat=Deferred c"),
                raw("stat=Deferred d")
            ],
            &caps
        ));
        assert_eq!(acc.events.len(), 3);
        assert!(acc.truncated);

        let caps = LogCaps {
            max_events: 100,
            max_bytes: 30,
            page_limit: 100,
        };
        let mut acc = LogAccumulator::default();
        assert!(!acc.push_page(
            vec![raw("stat=Deferred 0123456"), raw("stat=Deferred 0123456")],
            &caps
        ));
        assert_eq!(acc.events.len(), 1);
        assert_eq!(acc.bytes, 21);
        assert!(acc.truncated);
    }
}
