//! The outbox dispatcher: a background task that claims due delivery rows from the ledger,
//! hands each to its destination for one attempt, and records the outcome, applying the shared
//! retry stage to failures. Rows were written in the same transaction as the state change that
//! caused them, so nothing is lost across restarts; rows in flight at a crash come back at start
//! with what their attempt may have sent in doubt, which tells the destination to check before
//! sending again.
//!
//! A row's lease runs from the claim's start. When the claim itself took most of the lease (a
//! busy ledger: claiming row by row through a slow DynamoDB table), another replica may
//! take the row over while this attempt is still under way, and, having found no message yet,
//! post it a second time. So an attempt starts only while at least half the lease is left (the
//! configuration keeps a lease of at least four HTTP timeouts); otherwise the row is handed back
//! (`DeliveryResult::Released`) for an immediate new attempt, without sending anything, and
//! without using up an attempt or putting anything in doubt.
//!
//! Whatever an attempt may have sent without its outcome being recorded (it failed after the
//! request left, its process stopped, its lease ran out) is marked in the ledger as a window of
//! doubt on the row; the next attempt gets it (`ClaimedDelivery::in_doubt`) and looks within
//! it before sending again.
//!
//! Rows this process writes (a webhook recorded, a triage ended) wake the dispatcher at once
//! through [`DeliveriesWritten`] (`delivery.wake_on_write`), so a verdict goes out as soon as it
//! is stored instead of at the next poll; the poll (`delivery.poll_interval_ms`) still finds
//! rows other replicas wrote and retries that came due. A wake that arrives while attempts are
//! under way may be for a row waiting behind one of them (rows of one episode and destination
//! go in order), so the next attempt to finish claims again at once. A wake brings the next claim
//! forward to no sooner than a quarter poll (10-100 ms) after the previous one, so that a storm's
//! writes do not turn into a claim each.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::pin;
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::ntfy::Ntfy;
use super::pagerduty::PagerDuty;
use super::pushover::Pushover;
use super::retry::{Decision, RetryPolicy};
use super::slack::{SlackBot, SlackWebhook};
use super::{failpoint, DeliveryContext, Destination, RenderSettings, Sent};
use crate::config::{Config, DeliveryConfig, SlackMode};
use crate::ledger::{ClaimedDelivery, DeliveriesWritten, DeliveryResult, Ledger};
use crate::metrics::{DeliveryLabels, Metrics};

/// Rows claimed per ledger call: small, so that attempts start while the next rows are claimed.
const CLAIM_BATCH: usize = 4;

pub struct Outbox {
    ledger: Arc<dyn Ledger>,
    written: Arc<DeliveriesWritten>,
    destinations: HashMap<&'static str, Arc<dyn Destination>>,
    policy: RetryPolicy,
    config: DeliveryConfig,
    settings: RenderSettings,
    metrics: Arc<Metrics>,
    owner: String,
}

/// The destinations the configuration turns on.
pub fn configured_destinations(config: &Config) -> Result<Vec<Arc<dyn Destination>>, String> {
    let http = super::http::client(Duration::from_millis(config.delivery.http_timeout_ms))?;
    let mut destinations: Vec<Arc<dyn Destination>> = Vec::new();
    if config.slack.enabled() {
        match config.slack.mode {
            SlackMode::Bot => {
                if let Some(token) = &config.slack.bot_token {
                    destinations.push(Arc::new(SlackBot::new(
                        http.clone(),
                        &config.slack,
                        token.clone(),
                    )));
                }
            }
            SlackMode::Webhook => {
                if let Some(url) = &config.slack.webhook_url {
                    destinations.push(Arc::new(SlackWebhook::new(http.clone(), url.clone())));
                }
            }
        }
    }
    if let (true, Some(token)) = (config.pagerduty.enabled(), &config.pagerduty.api_token) {
        destinations.push(Arc::new(PagerDuty::new(
            http.clone(),
            &config.pagerduty.api_base_url,
            token.clone(),
            config.pagerduty.from_email.as_deref().unwrap_or_default(),
        )));
    }
    if let Some(ntfy) = Ntfy::from_config(http.clone(), &config.ntfy) {
        destinations.push(Arc::new(ntfy));
    }
    if let Some(pushover) = Pushover::from_config(http, &config.pushover) {
        destinations.push(Arc::new(pushover));
    }
    Ok(destinations)
}

impl Outbox {
    pub fn new(
        ledger: Arc<dyn Ledger>,
        destinations: Vec<Arc<dyn Destination>>,
        config: &Config,
        metrics: Arc<Metrics>,
        owner: String,
    ) -> Self {
        Outbox {
            ledger,
            written: DeliveriesWritten::new(),
            destinations: destinations.into_iter().map(|d| (d.name(), d)).collect(),
            policy: RetryPolicy::from_config(&config.delivery),
            config: config.delivery.clone(),
            settings: RenderSettings {
                public_url: config.server.public_url.clone(),
                show_local_parts: config.privacy.show_local_parts,
                links: super::links::LinkSettings::from_config(config),
            },
            metrics,
            owner,
        }
    }

    /// Claims at once whenever `written` is told (with `delivery.wake_on_write`), besides the
    /// poll.
    pub fn woken_by(mut self, written: Arc<DeliveriesWritten>) -> Self {
        if self.config.wake_on_write {
            self.written = written;
        }
        self
    }

    /// Delivers until `stop` is cancelled; attempts in progress then finish.
    ///
    /// Up to `delivery.concurrency` attempts run at once. Rows are claimed a few at a time
    /// (`CLAIM_BATCH`), and each batch's attempts start as soon as it returns, while the next
    /// batch is claimed: against a slow ledger (DynamoDB claims row by row), a big batch would
    /// spend its rows' leases before the first attempt began.
    pub async fn run(self, stop: CancellationToken) {
        let lease = Duration::from_secs(self.config.lease_secs);
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        let mut idle_wait = poll;
        let mut in_flight = FuturesUnordered::new();
        let mut claim_not_before = Instant::now();
        // A wake came while attempts were under way: its row may wait behind one of them.
        let mut woken_while_busy = false;
        // Wakes come with every ledger write (a storm: hundreds a second); they bring the next
        // claim forward, but not closer than this to the previous one, so a busy ledger
        // (DynamoDB) is not asked for due rows after every write.
        let wake_gap = (poll / 4).clamp(Duration::from_millis(10), Duration::from_millis(100));
        let mut last_claim = Instant::now();
        loop {
            let free = self.config.concurrency.saturating_sub(in_flight.len());
            if stop.is_cancelled() {
                // Let the attempts under way finish; claim nothing more.
                while in_flight.next().await.is_some() {}
                return;
            }
            if free > 0 && Instant::now() >= claim_not_before {
                let limit = free.min(CLAIM_BATCH);
                let claim_started = OffsetDateTime::now_utc();
                last_claim = Instant::now();
                let claim = self
                    .ledger
                    .claim_deliveries(&self.owner, lease, claim_started, limit);
                match while_attempts_run(claim, &mut in_flight).await {
                    Ok(claimed) if !claimed.is_empty() => {
                        idle_wait = poll;
                        // A short batch: nothing more is due, so wait a poll before claiming
                        // again. A full one may have more behind it: claim again at once.
                        if claimed.len() < limit {
                            claim_not_before = Instant::now() + poll;
                        }
                        failpoint::delay_once(failpoint::OUTBOX_SLOW_CLAIM, lease * 3 / 4).await;
                        let lease_ends = claim_started + lease;
                        for delivery in claimed {
                            in_flight.push(self.attempt_in_lease(delivery, lease_ends, lease));
                        }
                        continue;
                    }
                    Ok(_) => {
                        idle_wait = poll;
                        claim_not_before = Instant::now() + idle_wait;
                    }
                    Err(error) => {
                        tracing::error!(%error, "outbox cannot claim deliveries");
                        idle_wait = (idle_wait * 2).min(Duration::from_secs(30));
                        claim_not_before = Instant::now() + idle_wait;
                    }
                }
            }
            let can_claim = self.config.concurrency > in_flight.len();
            tokio::select! {
                Some(()) = in_flight.next(), if !in_flight.is_empty() => {
                    if woken_while_busy {
                        claim_not_before = claim_not_before.min(last_claim + wake_gap);
                        woken_while_busy = !in_flight.is_empty();
                    }
                }
                _ = tokio::time::sleep_until(claim_not_before.into()), if can_claim => {}
                _ = self.written.told(), if can_claim => {
                    claim_not_before = claim_not_before.min(last_claim + wake_gap);
                    woken_while_busy = !in_flight.is_empty();
                }
                _ = stop.cancelled() => {}
            }
        }
    }

    /// One attempt at one row if enough of its lease is left (see the module comment), else
    /// the row handed back for a new claim.
    async fn attempt_in_lease(
        &self,
        delivery: ClaimedDelivery,
        lease_ends: OffsetDateTime,
        lease: Duration,
    ) {
        let now = OffsetDateTime::now_utc();
        if enough_lease_left(lease_ends, lease, now) {
            return self.attempt(delivery).await;
        }
        let left = Duration::try_from(lease_ends - now).unwrap_or_default();
        let error = format!(
            "not sent: only {} ms of the {} s delivery lease were left when the claim returned \
             (the ledger is slow); handed back for a new attempt",
            left.as_millis(),
            lease.as_secs()
        );
        tracing::warn!(episode = %delivery.episode.id, destination = %delivery.destination, kind = delivery.kind.as_str(), attempt = delivery.attempt, %error, "delivery not attempted");
        self.metrics
            .deliveries
            .get_or_create(&DeliveryLabels {
                destination: delivery.destination.clone(),
                outcome: "lease_short".to_string(),
            })
            .inc();
        let result = DeliveryResult::Released { reason: error };
        if let Err(error) = self
            .ledger
            .record_delivery(delivery.id, &self.owner, result, now)
            .await
        {
            tracing::error!(%error, episode = %delivery.episode.id, "cannot hand the delivery back; it is retried when its lease expires");
        }
    }

    /// One attempt at one row, recorded.
    async fn attempt(&self, delivery: ClaimedDelivery) {
        let context = DeliveryContext::new(&*self.ledger, &self.settings);
        let outcome = match self.destinations.get(delivery.destination.as_str()) {
            None => Err(super::DeliveryError::permanent(format!(
                "destination {} is not configured any more; nothing was sent",
                delivery.destination
            ))),
            // Written under a configuration that routed this kind here (the ledger writes rows
            // only for the kinds a destination wants): nothing to send.
            Some(destination) if !destination.wants(delivery.kind) => Ok(Sent::Skipped(format!(
                "{} does not take {} notifications",
                delivery.destination,
                delivery.kind.as_str()
            ))),
            Some(destination) => destination.deliver(&delivery, &context).await,
        };
        let now = OffsetDateTime::now_utc();
        let (result, label) = match outcome {
            Ok(Sent::Delivered(external_ref)) => {
                (DeliveryResult::Delivered { external_ref }, "delivered")
            }
            Ok(Sent::Skipped(reason)) => (DeliveryResult::Skipped { reason }, "skipped"),
            Err(error) => {
                let age: Duration = (now - delivery.created_at).try_into().unwrap_or_default();
                match self
                    .policy
                    .decide(delivery.attempt, age, &error, rand::random::<f64>())
                {
                    Decision::RetryAfter(delay) => {
                        tracing::warn!(episode = %delivery.episode.id, destination = %delivery.destination, kind = delivery.kind.as_str(), attempt = delivery.attempt, retry_in_ms = delay.as_millis() as u64, %error, "delivery failed; will retry");
                        (
                            DeliveryResult::Retry {
                                error: error.to_string(),
                                not_before: now + delay,
                            },
                            "retry",
                        )
                    }
                    Decision::GiveUp(reason) => {
                        tracing::error!(episode = %delivery.episode.id, destination = %delivery.destination, kind = delivery.kind.as_str(), attempt = delivery.attempt, error = %reason, "delivery failed; giving up");
                        (DeliveryResult::Failed { error: reason }, "failed")
                    }
                }
            }
        };
        if label == "delivered" {
            tracing::info!(episode = %delivery.episode.id, destination = %delivery.destination, kind = delivery.kind.as_str(), "delivered");
        }
        self.metrics
            .deliveries
            .get_or_create(&DeliveryLabels {
                destination: delivery.destination.clone(),
                outcome: label.to_string(),
            })
            .inc();
        let refs = context.take_refs();
        let refs: Vec<(&str, &str)> = refs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match self
            .ledger
            .record_delivery_with_refs(
                delivery.id,
                &self.owner,
                result,
                (&delivery.episode.id, &refs),
                now,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(episode = %delivery.episode.id, destination = %delivery.destination, kind = delivery.kind.as_str(), attempt = delivery.attempt, "delivery lease lost before its outcome was recorded; another attempt owns the row")
            }
            Err(error) => {
                tracing::error!(%error, episode = %delivery.episode.id, "cannot record the delivery outcome; the row is retried when its lease expires")
            }
        }
    }
}

/// Awaits `claim` while driving the attempts under way, so that they are not held up by it.
async fn while_attempts_run<T>(
    claim: impl Future<Output = T>,
    in_flight: &mut FuturesUnordered<impl Future<Output = ()>>,
) -> T {
    let mut claim = pin!(claim);
    loop {
        tokio::select! {
            result = &mut claim => return result,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}

/// Whether an attempt may start at `now` on a row whose lease of `lease` ends at `lease_ends`:
/// at least half the lease must be left.
fn enough_lease_left(lease_ends: OffsetDateTime, lease: Duration, now: OffsetDateTime) -> bool {
    Duration::try_from(lease_ends - now).is_ok_and(|left| left >= lease / 2)
}

#[cfg(test)]
mod lease_tests {
    use super::*;

    #[test]
    fn an_attempt_starts_only_with_half_its_lease_left() {
        let lease = Duration::from_secs(10);
        let claimed = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let ends = claimed + lease;
        let after = |ms: i64| claimed + time::Duration::milliseconds(ms);
        assert!(enough_lease_left(ends, lease, after(0)));
        assert!(enough_lease_left(ends, lease, after(5_000)));
        assert!(!enough_lease_left(ends, lease, after(5_001)));
        assert!(!enough_lease_left(ends, lease, after(10_000)));
        assert!(!enough_lease_left(ends, lease, after(60_000)), "expired");
        // A clock that went back counts as a fresh claim, not as an error.
        assert!(enough_lease_left(ends, lease, after(-3_000)));
    }
}

#[cfg(test)]
mod route_tests {
    use super::*;
    use crate::config::Secret;
    use crate::ledger::{DeliveryKind, Route};

    fn routes(config: &Config) -> Vec<Route> {
        configured_destinations(config)
            .unwrap()
            .iter()
            .map(|d| d.route())
            .collect()
    }

    #[test]
    fn the_configured_destinations_say_which_changes_they_want() {
        let mut config = Config::default();
        assert!(routes(&config).is_empty(), "nothing configured, no route");
        config.slack.bot_token = Some(Secret::new("xoxb-test"));
        config.pagerduty.api_token = Some(Secret::new("pd-test"));
        config.pagerduty.from_email = Some("oncall@example.com".into());
        assert_eq!(
            routes(&config),
            [
                Route::new("slack", DeliveryKind::ALL),
                Route::new(
                    "pagerduty",
                    [
                        DeliveryKind::Verdict,
                        DeliveryKind::TriageFailed,
                        DeliveryKind::Retriaged
                    ]
                ),
            ]
        );
        config.slack.mode = SlackMode::Webhook;
        config.slack.webhook_url = Some(Secret::new("https://hooks.slack.invalid/T0/B0/x"));
        assert_eq!(
            routes(&config)[0],
            Route::new("slack-webhook", [DeliveryKind::Verdict])
        );
    }
}

#[cfg(test)]
mod unwanted_row_tests {
    use super::*;
    use crate::alert::AlertStatus;
    use crate::config::Secret;
    use crate::ledger::tests::{incoming, T0};
    use crate::ledger::{DeliveryKind, Route, SqliteLedger};

    /// A row its destination does not want (written under an older configuration) is skipped
    /// by the outbox, once for every destination, without asking the destination.
    #[tokio::test]
    async fn a_row_the_destination_does_not_want_is_skipped_unsent() {
        let dir = tempfile::tempdir().unwrap();
        // Rows for every kind, as a configuration that routed everything to PagerDuty wrote.
        let ledger: Arc<dyn Ledger> = Arc::new(
            SqliteLedger::open(
                &dir.path().join("ledger.db"),
                vec![Route::new("pagerduty", DeliveryKind::ALL)],
            )
            .unwrap(),
        );
        let id = ledger
            .ingest(
                vec![incoming("0000000unwanted", T0, AlertStatus::Firing, true)],
                T0,
            )
            .await
            .unwrap()[0]
            .id
            .clone();
        ledger
            .lease_next("w", Duration::from_secs(30), T0)
            .await
            .unwrap();
        let mut config = Config::default();
        // Nothing listens there: a request would fail and be retried, not skipped.
        config.pagerduty.api_base_url = "http://127.0.0.1:9".into();
        config.pagerduty.api_token = Some(Secret::new("pd-test"));
        config.pagerduty.from_email = Some("oncall@example.com".into());
        let outbox = Outbox::new(
            Arc::clone(&ledger),
            configured_destinations(&config).unwrap(),
            &config,
            Arc::new(Metrics::new()),
            "test/outbox".into(),
        );
        let now = OffsetDateTime::now_utc();
        let claimed = ledger
            .claim_deliveries("test/outbox", Duration::from_secs(30), now, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].kind, DeliveryKind::Started);
        outbox.attempt(claimed.into_iter().next().unwrap()).await;
        let detail = ledger.get_episode(&id).await.unwrap().unwrap();
        let row = &detail.deliveries[0];
        assert_eq!(
            (row.kind.as_str(), row.state.as_str()),
            ("started", "skipped")
        );
        assert_eq!(row.attempts, 1, "{row:?}");
        assert!(
            row.last_error
                .as_deref()
                .is_some_and(|e| e.contains("does not take started")),
            "{row:?}"
        );
    }
}
