//! The service's own Prometheus metrics (prometheus-client). Counters and histograms are
//! updated where things happen; ledger-derived gauges (episodes by state, queue depth) are read
//! from the ledger at scrape time so that they are right after a restart. That read is bounded:
//! one at a time (concurrent scrapes share it), reused for a few seconds, and given up after a
//! deadline, so a slow or unreachable ledger (DynamoDB reads its `recent` index page by page)
//! never makes a scrape time out; a read that fails is logged and counted, and the gauges keep
//! the values of the last read that succeeded.

use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use time::OffsetDateTime;

use crate::ledger::{Ledger, LedgerStats};

/// A ledger read younger than this serves the next scrape too (HA Prometheus pairs scrape the
/// same target within seconds of each other).
const LEDGER_STATS_MAX_AGE: Duration = Duration::from_secs(5);
/// How long a scrape waits for the ledger's statistics (Prometheus' default scrape timeout is 10 s).
const LEDGER_STATS_DEADLINE: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub destination: String,
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    pub webhook_requests: Family<CodeLabels, Counter>,
    pub alerts_received: Counter,
    pub repeats: Counter,
    pub episodes: Family<StateLabels, Gauge>,
    pub queue_depth: Gauge,
    pub job_duration: Family<OutcomeLabels, Histogram>,
    pub probe_outcomes: Family<ProbeLabels, Counter>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub ledger_stats_failures: Counter,
    /// When the ledger's statistics were last read successfully; held while a read is under way.
    ledger_stats_read_at: tokio::sync::Mutex<Option<Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cabal_triage");
        let webhook_requests = Family::<CodeLabels, Counter>::default();
        registry.register(
            "webhook_requests",
            "Webhook requests by HTTP status code",
            webhook_requests.clone(),
        );
        let alerts_received = Counter::default();
        registry.register(
            "alerts_received",
            "Alerts received in accepted webhook payloads",
            alerts_received.clone(),
        );
        let repeats = Counter::default();
        registry.register(
            "alert_repeats",
            "Notifications of already known episodes (Alertmanager re-sends and HA duplicates)",
            repeats.clone(),
        );
        let episodes = Family::<StateLabels, Gauge>::default();
        registry.register(
            "episodes",
            "Episodes in the ledger by triage state",
            episodes.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Triage jobs waiting for a worker",
            queue_depth.clone(),
        );
        let job_duration = Family::<OutcomeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 12))
        });
        registry.register(
            "job_duration_seconds",
            "Triage job duration by outcome",
            job_duration.clone(),
        );
        let probe_outcomes = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "probe_outcomes",
            "Diagnostic probe runs by probe and outcome",
            probe_outcomes.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Deliveries to Slack / PagerDuty by destination and outcome",
            deliveries.clone(),
        );
        let ledger_stats_failures = Counter::default();
        registry.register(
            "ledger_stats_failures",
            "Scrapes whose read of the ledger's statistics failed or timed out (the episode and queue gauges then keep their last values)",
            ledger_stats_failures.clone(),
        );
        Metrics {
            registry,
            webhook_requests,
            alerts_received,
            repeats,
            episodes,
            queue_depth,
            job_duration,
            probe_outcomes,
            deliveries,
            ledger_stats_failures,
            ledger_stats_read_at: tokio::sync::Mutex::new(None),
        }
    }

    /// Brings the ledger-derived gauges up to date for a scrape (see the module comment).
    pub async fn refresh_ledger(&self, ledger: &dyn Ledger) {
        let mut read_at = self.ledger_stats_read_at.lock().await;
        if read_at.is_some_and(|at| at.elapsed() < LEDGER_STATS_MAX_AGE) {
            return;
        }
        let read = ledger.stats(OffsetDateTime::now_utc());
        match tokio::time::timeout(LEDGER_STATS_DEADLINE, read).await {
            Ok(Ok(stats)) => {
                self.observe_ledger(&stats);
                *read_at = Some(Instant::now());
            }
            Ok(Err(error)) => {
                self.ledger_stats_failures.inc();
                tracing::warn!(%error, "ledger statistics unavailable for /metrics; the episode and queue gauges keep their last values");
            }
            Err(_) => {
                self.ledger_stats_failures.inc();
                tracing::warn!(
                    deadline_secs = LEDGER_STATS_DEADLINE.as_secs(),
                    "ledger statistics took too long for /metrics; the episode and queue gauges keep their last values"
                );
            }
        }
    }

    pub fn observe_ledger(&self, stats: &LedgerStats) {
        for (state, count) in &stats.episodes_by_state {
            self.episodes
                .get_or_create(&StateLabels {
                    state: state.as_str().to_string(),
                })
                .set(*count as i64);
        }
        self.queue_depth.set(stats.queue_depth as i64);
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
