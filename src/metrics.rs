//! The service's own Prometheus metrics (prometheus-client). Counters and histograms are
//! updated where things happen; ledger-derived gauges (episodes by state, queue depth) are read
//! from the ledger so that they are right after a restart.
//!
//! That read is driven by scrapes but never holds one up for long: a scrape starts a read (or
//! joins the one under way; there is never more than one), waits for it a few seconds, and then
//! serves the last values it has. A read that outlasts the scrape goes on in the background and
//! serves the next scrape; this matters on DynamoDB, where the counts come from the `recent`
//! index page by page and take longer than a scrape with tens of thousands of episodes behind a
//! busy table. A result younger than a few seconds is reused (an HA Prometheus pair scrapes the
//! same target within seconds). A read that fails or exceeds its own deadline is logged and
//! counted; `cabal_triage_ledger_stats_timestamp_seconds` says when the values served were read.
//!
//! Beside its own `cabal_triage_*` metrics the registry serves `cabal_triage_build_info` (version
//! and git revision, value 1) and the standard `process_*` metrics (`process`).

mod process;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use time::OffsetDateTime;

use crate::ledger::{Ledger, LedgerError, LedgerStats};
use crate::report::{Step, StepOutcome};

/// The time rules of the ledger read behind the episode and queue gauges.
#[derive(Clone, Copy, Debug)]
struct LedgerStatsTiming {
    /// A read younger than this serves the next scrape too (HA Prometheus pairs scrape the same
    /// target within seconds of each other).
    max_age: Duration,
    /// How long a scrape waits for the read it started or joined before it serves the last
    /// values (Prometheus' default scrape timeout is 10 s).
    scrape_wait: Duration,
    /// How long a read may go on in the background before it is given up and counted as failed.
    read_deadline: Duration,
}

const LEDGER_STATS_TIMING: LedgerStatsTiming = LedgerStatsTiming {
    max_age: Duration::from_secs(5),
    scrape_wait: Duration::from_secs(3),
    read_deadline: Duration::from_secs(120),
};

/// The ledger read under way, shared by the scrapes waiting for it.
type LedgerRead = Shared<BoxFuture<'static, ()>>;

/// What the ledger-derived gauges were last given, and the read that will replace it.
#[derive(Default)]
struct LedgerStatsProgress {
    /// When the values in the gauges were read (`None`: never, since start).
    read_at: Option<Instant>,
    /// The read under way, if any.
    in_flight: Option<LedgerRead>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub revision: String,
}

/// The git revision the binary was built from: `CABAL_TRIAGE_REVISION` at compile time (the
/// Dockerfile passes its `REVISION` build argument), else "unknown".
pub const REVISION: &str = match option_env!("CABAL_TRIAGE_REVISION") {
    Some(revision) => revision,
    None => "unknown",
};

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
    pub probe_duration: Family<ProbeLabels, Histogram>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub ledger_stats_failures: Counter,
    pub ledger_stats_timestamp: Gauge<f64, std::sync::atomic::AtomicU64>,
    ledger_stats: Mutex<LedgerStatsProgress>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("cabal_triage");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                revision: REVISION.to_string(),
            })
            .set(1);
        registry.register(
            "build_info",
            "The version and git revision of this binary (value 1)",
            build_info,
        );
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
        // Probes answer in milliseconds (replay, a warm API) up to the triage budget: 5 ms to
        // about 41 s.
        let probe_duration = Family::<ProbeLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        registry.register(
            "probe_duration_seconds",
            "Diagnostic probe duration by probe and outcome (each step of a triage's report)",
            probe_duration.clone(),
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
            "Reads of the ledger's statistics that failed or timed out (the episode and queue gauges then keep their last values)",
            ledger_stats_failures.clone(),
        );
        let ledger_stats_timestamp = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "ledger_stats_timestamp_seconds",
            "When the episode and queue gauges were read from the ledger (Unix time; 0: not yet since start)",
            ledger_stats_timestamp.clone(),
        );
        Metrics {
            registry: root,
            webhook_requests,
            alerts_received,
            repeats,
            episodes,
            queue_depth,
            job_duration,
            probe_outcomes,
            probe_duration,
            deliveries,
            ledger_stats_failures,
            ledger_stats_timestamp,
            ledger_stats: Mutex::new(LedgerStatsProgress::default()),
        }
    }

    /// Counts each step of a finished triage's report (a probe: `tasks smtp-out`, `mailq imap`,
    /// `nat`, …) by outcome and records its duration. Step names come from the runbook and the
    /// configured tiers, never from alert labels, so the label set stays small.
    pub fn observe_steps(&self, steps: &[Step]) {
        for step in steps {
            let labels = ProbeLabels {
                probe: step.name.clone(),
                outcome: step_outcome(step.outcome).to_string(),
            };
            self.probe_outcomes.get_or_create(&labels).inc();
            self.probe_duration
                .get_or_create(&labels)
                .observe(step.ms as f64 / 1000.0);
        }
    }

    /// Brings the ledger-derived gauges up to date for a scrape, as far as a scrape can wait
    /// (see the module comment).
    pub async fn refresh_ledger(self: &Arc<Self>, ledger: Arc<dyn Ledger>) {
        self.refresh_ledger_with(
            move || async move { ledger.stats(OffsetDateTime::now_utc()).await }.boxed(),
            LEDGER_STATS_TIMING,
        )
        .await;
    }

    /// `refresh_ledger` with the read and its time rules given (unit tests).
    async fn refresh_ledger_with<Read>(self: &Arc<Self>, read: Read, timing: LedgerStatsTiming)
    where
        Read: FnOnce() -> BoxFuture<'static, Result<LedgerStats, LedgerError>>,
    {
        let in_flight = {
            let mut progress = self.ledger_stats_progress();
            if progress
                .read_at
                .is_some_and(|at| at.elapsed() < timing.max_age)
            {
                return;
            }
            match &progress.in_flight {
                // A finished read that is still here panicked (a read that ends clears itself).
                Some(in_flight) if in_flight.peek().is_none() => in_flight.clone(),
                previous => {
                    if previous.is_some() {
                        self.ledger_stats_failures.inc();
                        tracing::error!("a read of the ledger statistics for /metrics panicked (a bug; please report it); reading again");
                    }
                    let metrics = Arc::clone(self);
                    let read = tokio::time::timeout(timing.read_deadline, read());
                    let task = tokio::spawn(async move {
                        let outcome = read.await;
                        metrics.finish_ledger_read(outcome, timing.read_deadline);
                    });
                    let in_flight = task.map(|_| ()).boxed().shared();
                    progress.in_flight = Some(in_flight.clone());
                    in_flight
                }
            }
        };
        // Past the wait the scrape serves the last values; the read goes on without it.
        let _ = tokio::time::timeout(timing.scrape_wait, in_flight).await;
    }

    fn finish_ledger_read(
        &self,
        outcome: Result<Result<LedgerStats, LedgerError>, tokio::time::error::Elapsed>,
        read_deadline: Duration,
    ) {
        match outcome {
            Ok(Ok(stats)) => {
                self.observe_ledger(&stats);
                let now = OffsetDateTime::now_utc();
                self.ledger_stats_timestamp
                    .set(now.unix_timestamp_nanos() as f64 / 1e9);
                let mut progress = self.ledger_stats_progress();
                progress.read_at = Some(Instant::now());
                progress.in_flight = None;
                return;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "ledger statistics unavailable for /metrics; the episode and queue gauges keep their last values");
            }
            Err(_) => {
                tracing::warn!(
                    deadline_secs = read_deadline.as_secs(),
                    "reading the ledger statistics for /metrics took too long and was given up; the episode and queue gauges keep their last values"
                );
            }
        }
        self.ledger_stats_failures.inc();
        self.ledger_stats_progress().in_flight = None;
    }

    fn ledger_stats_progress(&self) -> std::sync::MutexGuard<'_, LedgerStatsProgress> {
        // The guarded data is two plain fields, valid whatever a panicking holder was doing.
        self.ledger_stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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

#[cfg(test)]
mod tests {
    //! The refresh's timing rules, with reads made up and the time rules scaled down.

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::ledger::EpisodeState;

    const TIMING: LedgerStatsTiming = LedgerStatsTiming {
        max_age: Duration::from_millis(1000),
        scrape_wait: Duration::from_millis(300),
        read_deadline: Duration::from_millis(1500),
    };
    /// A read that takes longer than a scrape waits, and less than its deadline.
    const SLOW: Duration = Duration::from_millis(900);
    const FAST: Duration = Duration::from_millis(5);

    fn stats(triaged: u64) -> LedgerStats {
        LedgerStats {
            episodes_by_state: vec![(EpisodeState::Triaged, triaged)],
            queue_depth: 2,
        }
    }

    /// A read that counts its calls, waits `takes`, and returns `result`.
    fn read(
        calls: &Arc<AtomicUsize>,
        takes: Duration,
        result: Result<LedgerStats, LedgerError>,
    ) -> impl FnOnce() -> BoxFuture<'static, Result<LedgerStats, LedgerError>> {
        let calls = Arc::clone(calls);
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(takes).await;
                result
            }
            .boxed()
        }
    }

    fn triaged(metrics: &Metrics) -> Option<String> {
        metrics
            .encode()
            .lines()
            .find(|line| line.starts_with("cabal_triage_episodes{state=\"triaged\"}"))
            .map(|line| line.rsplit(' ').next().unwrap_or_default().to_string())
    }

    #[tokio::test]
    async fn a_quick_read_serves_the_scrape_and_is_reused_for_a_few_seconds() {
        let metrics = Arc::new(Metrics::new());
        let calls = Arc::new(AtomicUsize::new(0));
        metrics
            .refresh_ledger_with(read(&calls, FAST, Ok(stats(7))), TIMING)
            .await;
        assert_eq!(triaged(&metrics).as_deref(), Some("7"));
        assert_eq!(metrics.queue_depth.get(), 2);
        assert!(metrics.ledger_stats_timestamp.get() > 1.0e9);
        metrics
            .refresh_ledger_with(read(&calls, FAST, Ok(stats(8))), TIMING)
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "reused within the max age");
        tokio::time::sleep(TIMING.max_age).await;
        metrics
            .refresh_ledger_with(read(&calls, FAST, Ok(stats(8))), TIMING)
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(triaged(&metrics).as_deref(), Some("8"));
    }

    #[tokio::test]
    async fn a_slow_read_does_not_hold_the_scrape_and_serves_the_next_one() {
        let metrics = Arc::new(Metrics::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let (first, second) = tokio::join!(
            metrics.refresh_ledger_with(read(&calls, SLOW, Ok(stats(10_000))), TIMING),
            metrics.refresh_ledger_with(read(&calls, SLOW, Ok(stats(1))), TIMING),
        );
        let ((), ()) = (first, second);
        let waited = started.elapsed();
        assert!(
            waited >= TIMING.scrape_wait && waited < SLOW,
            "the scrapes waited the scrape wait, not the read: {waited:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one read at a time");
        assert_eq!(triaged(&metrics), None, "nothing read yet");
        assert_eq!(metrics.ledger_stats_timestamp.get(), 0.0);
        // A scrape during the read joins it instead of starting another.
        metrics
            .refresh_ledger_with(read(&calls, SLOW, Ok(stats(1))), TIMING)
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The read went on without the scrapes; its result serves the next one at once.
        let read_done = started + SLOW + Duration::from_millis(50);
        tokio::time::sleep_until(tokio::time::Instant::from_std(read_done)).await;
        assert_eq!(triaged(&metrics).as_deref(), Some("10000"));
        let scrape = Instant::now();
        metrics
            .refresh_ledger_with(read(&calls, SLOW, Ok(stats(1))), TIMING)
            .await;
        assert!(scrape.elapsed() < TIMING.scrape_wait);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the result is reused");
        assert_eq!(triaged(&metrics).as_deref(), Some("10000"));
        assert_eq!(metrics.ledger_stats_failures.get(), 0);
    }

    #[tokio::test]
    async fn failed_and_overlong_reads_are_counted_and_keep_the_last_values() {
        let metrics = Arc::new(Metrics::new());
        let calls = Arc::new(AtomicUsize::new(0));
        metrics
            .refresh_ledger_with(read(&calls, FAST, Ok(stats(3))), TIMING)
            .await;
        tokio::time::sleep(TIMING.max_age).await;
        let unavailable = Err(LedgerError::Unavailable("connection refused".into()));
        metrics
            .refresh_ledger_with(read(&calls, FAST, unavailable), TIMING)
            .await;
        assert_eq!(metrics.ledger_stats_failures.get(), 1);
        assert_eq!(triaged(&metrics).as_deref(), Some("3"), "last values kept");
        // A failure is not reused: the next scrape reads again, and this read never ends.
        metrics
            .refresh_ledger_with(
                read(&calls, TIMING.read_deadline * 10, Ok(stats(4))),
                TIMING,
            )
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        tokio::time::sleep(TIMING.read_deadline).await;
        assert_eq!(
            metrics.ledger_stats_failures.get(),
            2,
            "given up at its deadline"
        );
        metrics
            .refresh_ledger_with(read(&calls, FAST, Ok(stats(5))), TIMING)
            .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "a new read after the one given up"
        );
        assert_eq!(triaged(&metrics).as_deref(), Some("5"));
    }

    #[tokio::test]
    async fn a_read_that_panicked_is_replaced_by_the_next_scrape() {
        let metrics = Arc::new(Metrics::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let panicking = {
            let calls = Arc::clone(&calls);
            move || -> BoxFuture<'static, Result<LedgerStats, LedgerError>> {
                calls.fetch_add(1, Ordering::SeqCst);
                async { panic!("a bug in a ledger's stats") }.boxed()
            }
        };
        metrics.refresh_ledger_with(panicking, TIMING).await;
        metrics
            .refresh_ledger_with(read(&calls, FAST, Ok(stats(6))), TIMING)
            .await;
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(triaged(&metrics).as_deref(), Some("6"));
        assert_eq!(metrics.ledger_stats_failures.get(), 1);
    }
}

fn step_outcome(outcome: StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Ok => "ok",
        StepOutcome::Failed => "failed",
        StepOutcome::TimedOut => "timed_out",
        StepOutcome::Skipped => "skipped",
    }
}

#[cfg(test)]
mod exposition_tests {
    //! What a scrape shows beside the service's own counters.

    use super::*;

    #[test]
    fn scrape_has_build_info_and_process_metrics_without_the_prefix() {
        let text = Metrics::new().encode();
        let build = format!(
            "cabal_triage_build_info{{version=\"{}\",revision=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION"),
            REVISION
        );
        assert!(text.contains(&build), "{text}");
        assert!(text.contains("cabal_triage_alerts_received"), "{text}");
        #[cfg(target_os = "linux")]
        for name in [
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_cpu_seconds_total",
            "process_start_time_seconds",
            "process_open_fds",
        ] {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in {text}"));
            let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(value >= 0.0, "{line}");
        }
        assert!(!text.contains("cabal_triage_process_"), "{text}");
    }

    #[test]
    fn every_step_of_a_report_is_counted_and_timed_by_probe_and_outcome() {
        let metrics = Metrics::new();
        let step = |name: &str, outcome, ms| Step {
            name: name.to_string(),
            outcome,
            ms,
            error: None,
        };
        metrics.observe_steps(&[
            step("mailq smtp-out", StepOutcome::Ok, 40),
            step("mailq smtp-out", StepOutcome::Ok, 60),
            step("nat", StepOutcome::TimedOut, 10_000),
        ]);
        let text = metrics.encode();
        for line in [
            "cabal_triage_probe_outcomes_total{probe=\"mailq smtp-out\",outcome=\"ok\"} 2",
            "cabal_triage_probe_outcomes_total{probe=\"nat\",outcome=\"timed_out\"} 1",
            "cabal_triage_probe_duration_seconds_sum{probe=\"mailq smtp-out\",outcome=\"ok\"} 0.1",
            "cabal_triage_probe_duration_seconds_count{probe=\"nat\",outcome=\"timed_out\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in {text}");
        }
    }
}
