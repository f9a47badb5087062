//! The service's own Prometheus metrics (prometheus-client). Counters and histograms are
//! updated where things happen; ledger-derived gauges (episodes by state, queue depth) are read
//! from the ledger at scrape time so that they are right after a restart.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::ledger::LedgerStats;

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
