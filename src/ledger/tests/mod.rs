//! The ledger's behaviour, written against the trait so every implementation runs the same
//! suite (`suite` below: `episodes.rs`, `jobs.rs`, `outbox.rs`), and what only one backend
//! has (`on_sqlite.rs`, `on_dynamodb.rs`, which also run the suite on theirs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::alert::{AlertStatus, EpisodeKey, WebhookAlert};

mod episodes;
mod jobs;
mod on_dynamodb;
mod on_sqlite;
mod outbox;
mod retriage;

use episodes::*;
use jobs::*;
use outbox::*;
use retriage::*;

pub(crate) const T0: OffsetDateTime = datetime!(2026-11-28 20:00:00 UTC);

pub(crate) fn alert(
    fingerprint: &str,
    starts_at: OffsetDateTime,
    status: AlertStatus,
) -> WebhookAlert {
    WebhookAlert {
        status,
        labels: BTreeMap::from([
            ("alertname".to_string(), "SendmailDeferredSpike".to_string()),
            ("severity".to_string(), "warning".to_string()),
        ]),
        annotations: BTreeMap::new(),
        starts_at,
        ends_at: (status == AlertStatus::Resolved).then_some(starts_at + Duration::from_secs(600)),
        generator_url: String::new(),
        fingerprint: fingerprint.to_string(),
    }
}

pub(crate) fn incoming(
    fingerprint: &str,
    starts_at: OffsetDateTime,
    status: AlertStatus,
    has_runbook: bool,
) -> IncomingAlert {
    let alert = alert(fingerprint, starts_at, status);
    IncomingAlert {
        key: EpisodeKey::new(
            "{}:{alertname=\"SendmailDeferredSpike\"}",
            fingerprint,
            starts_at,
        ),
        alert,
        has_runbook,
        announce: false,
        max_attempts: 2,
        receiver: "triage".into(),
        external_url: String::new(),
    }
}

const LEASE: Duration = Duration::from_secs(30);

/// The behaviour every ledger must have. The ledger must be opened with `suite_routes()` (the
/// outbox checks count their rows).
pub(crate) async fn suite(ledger: Arc<dyn Ledger>) {
    dedup_and_resolve(&*ledger).await;
    leases_retries_and_failure(&*ledger).await;
    expired_lease_is_taken_over(&*ledger).await;
    outbox_order_leases_and_refs(&*ledger).await;
    outcomes_with_refs(&*ledger).await;
    listing_and_purge(&*ledger).await;
    doubt_windows(&*ledger).await;
    oversized_report_is_stored_trimmed(&*ledger).await;
    unknown_alerts_announced(&*ledger).await;
    alert_history(&*ledger).await;
    fresh_verdicts(&*ledger).await;
}

/// The destinations the suite is run with.
pub(crate) fn suite_routes() -> Vec<Route> {
    vec![slack_route(), pagerduty_route()]
}

/// A destination that wants a row for every kind of change (as Slack in bot mode does).
pub(crate) fn slack_route() -> Route {
    Route::new("slack", DeliveryKind::ALL)
}

/// A destination that wants the verdict only (as PagerDuty does).
pub(crate) fn pagerduty_route() -> Route {
    Route::new("pagerduty", [DeliveryKind::Verdict])
}

fn of_episode(claimed: Vec<ClaimedDelivery>, id: &str) -> Vec<ClaimedDelivery> {
    claimed.into_iter().filter(|d| d.episode.id == id).collect()
}

fn kinds(claimed: &[ClaimedDelivery]) -> Vec<(&str, DeliveryKind, u32)> {
    claimed
        .iter()
        .map(|d| (d.destination.as_str(), d.kind, d.attempt))
        .collect()
}

/// Ingests one firing alert at `t` and leases its episode's job as worker "w" (completing any
/// other job handed out first): the episode's `started` rows are then queued.
async fn new_episode_with_its_job(
    ledger: &dyn Ledger,
    fingerprint: &str,
    t: OffsetDateTime,
) -> (String, LeasedJob) {
    let id = ledger
        .ingest(vec![incoming(fingerprint, t, AlertStatus::Firing, true)], t)
        .await
        .unwrap()[0]
        .id
        .clone();
    loop {
        let job = ledger
            .lease_next("w", LEASE, t)
            .await
            .unwrap()
            .expect("job");
        if job.episode_id == id {
            return (id, job);
        }
        ledger
            .complete_job(job.job_id, "w", "{}".into(), t)
            .await
            .unwrap();
    }
}
