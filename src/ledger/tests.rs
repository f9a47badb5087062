//! The ledger's behaviour, written against the trait so every implementation runs the same
//! suite (`suite` below); the SQLite instantiation is at the bottom.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;
use time::OffsetDateTime;

use super::*;
use crate::alert::{AlertStatus, EpisodeKey, WebhookAlert};

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

async fn outbox_order_leases_and_refs(ledger: &dyn Ledger) {
    let t = T0 + Duration::from_secs(200);
    // A triage that used up its attempts earlier (bb01) told Slack so.
    let failed_id = incoming(
        "bb01",
        T0 + Duration::from_secs(10),
        AlertStatus::Firing,
        true,
    )
    .key
    .id();
    let failed = ledger.get_episode(&failed_id).await.unwrap().unwrap();
    assert!(
        failed
            .deliveries
            .iter()
            .any(|d| d.kind == "triage_failed" && d.destination == "slack"),
        "{:?}",
        failed.deliveries
    );
    assert!(!failed
        .deliveries
        .iter()
        .any(|d| d.kind == "triage_failed" && d.destination == "pagerduty"));

    let (id, job) = new_episode_with_its_job(ledger, "ff01", t).await;
    assert!(ledger
        .complete_job(job.job_id, "w", r#"{"verdict":1}"#.into(), t)
        .await
        .unwrap());
    for _ in 0..3 {
        let repeat = ledger
            .ingest(vec![incoming("ff01", t, AlertStatus::Firing, true)], t)
            .await
            .unwrap();
        assert_eq!(repeat[0].outcome, IngestOutcome::Repeat);
    }
    ledger
        .ingest(vec![incoming("ff01", t, AlertStatus::Resolved, true)], t)
        .await
        .unwrap();

    // The oldest unfinished row of each destination goes first; Slack's verdict waits for its
    // "started" post, PagerDuty only wants the verdict.
    let first = of_episode(
        ledger.claim_deliveries("d1", LEASE, t, 100).await.unwrap(),
        &id,
    );
    assert_eq!(
        kinds(&first),
        vec![
            ("slack", DeliveryKind::Started, 1),
            ("pagerduty", DeliveryKind::Verdict, 1)
        ]
    );
    assert!(
        of_episode(
            ledger.claim_deliveries("d2", LEASE, t, 100).await.unwrap(),
            &id
        )
        .is_empty(),
        "claimed rows and the rows behind them are not handed out twice"
    );
    let (started, pagerduty) = (&first[0], &first[1]);
    assert_eq!(pagerduty.report_json.as_deref(), Some(r#"{"verdict":1}"#));
    assert_eq!(pagerduty.alert.fingerprint, "ff01");
    assert!(ledger
        .record_delivery_with_refs(
            started.id,
            "d1",
            DeliveryResult::Delivered {
                external_ref: Some("C1/1700000000.000100".into())
            },
            (&id, &[("slack.ts", "1700000000.000100")]),
            t
        )
        .await
        .unwrap());
    assert!(!ledger
        .record_delivery(
            pagerduty.id,
            "intruder",
            DeliveryResult::Failed { error: "no".into() },
            t
        )
        .await
        .unwrap());
    assert!(ledger
        .record_delivery(
            pagerduty.id,
            "d1",
            DeliveryResult::Retry {
                error: "incident not open yet".into(),
                not_before: t + Duration::from_secs(5)
            },
            t
        )
        .await
        .unwrap());
    let second = of_episode(
        ledger.claim_deliveries("d1", LEASE, t, 100).await.unwrap(),
        &id,
    );
    assert_eq!(kinds(&second), vec![("slack", DeliveryKind::Verdict, 1)]);
    assert_eq!(
        second[0].refs.get("slack.ts").map(String::as_str),
        Some("1700000000.000100")
    );
    // Nobody records the Slack verdict: its lease expires and it comes back, with the
    // PagerDuty retry that is now due.
    let later = t + LEASE + Duration::from_secs(1);
    let mut third = of_episode(
        ledger
            .claim_deliveries("d2", LEASE, later, 100)
            .await
            .unwrap(),
        &id,
    );
    third.sort_by(|a, b| a.destination.cmp(&b.destination));
    assert_eq!(
        kinds(&third),
        vec![
            ("pagerduty", DeliveryKind::Verdict, 2),
            ("slack", DeliveryKind::Verdict, 2)
        ]
    );
    assert!(
        !ledger
            .record_delivery(
                third[1].id,
                "d1",
                DeliveryResult::Delivered { external_ref: None },
                later
            )
            .await
            .unwrap(),
        "the expired owner cannot record"
    );
    ledger
        .record_delivery(
            third[0].id,
            "d2",
            DeliveryResult::Failed {
                error: "PagerDuty answered 404".into(),
            },
            later,
        )
        .await
        .unwrap();
    ledger
        .record_delivery(
            third[1].id,
            "d2",
            DeliveryResult::Delivered { external_ref: None },
            later,
        )
        .await
        .unwrap();
    // Three repeats coalesced into one row, then the resolution.
    let fourth = of_episode(
        ledger
            .claim_deliveries("d2", LEASE, later, 100)
            .await
            .unwrap(),
        &id,
    );
    assert_eq!(kinds(&fourth), vec![("slack", DeliveryKind::Repeat, 1)]);
    ledger
        .record_delivery(
            fourth[0].id,
            "d2",
            DeliveryResult::Skipped {
                reason: "no parent message".into(),
            },
            later,
        )
        .await
        .unwrap();
    let fifth = of_episode(
        ledger
            .claim_deliveries("d2", LEASE, later, 100)
            .await
            .unwrap(),
        &id,
    );
    assert_eq!(kinds(&fifth), vec![("slack", DeliveryKind::Resolved, 1)]);
    assert_eq!(fifth[0].episode.status, AlertStatus::Resolved);
    ledger
        .record_delivery(
            fifth[0].id,
            "d2",
            DeliveryResult::Delivered { external_ref: None },
            later,
        )
        .await
        .unwrap();
    assert!(of_episode(
        ledger
            .claim_deliveries("d2", LEASE, later + LEASE * 2, 100)
            .await
            .unwrap(),
        &id
    )
    .is_empty());
    let detail = ledger.get_episode(&id).await.unwrap().unwrap();
    let rows: Vec<(&str, &str, &str)> = detail
        .deliveries
        .iter()
        .map(|d| (d.destination.as_str(), d.kind.as_str(), d.state.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("slack", "started", "delivered"),
            ("slack", "verdict", "delivered"),
            ("pagerduty", "verdict", "failed"),
            ("slack", "repeat", "skipped"),
            ("slack", "resolved", "delivered"),
        ]
    );
    let failed_row = &detail.deliveries[2];
    assert_eq!(failed_row.attempts, 2);
    assert!(failed_row.last_error.as_deref().unwrap().contains("404"));
    assert_eq!(
        detail.deliveries[0].external_ref.as_deref(),
        Some("C1/1700000000.000100")
    );
    assert_eq!(
        detail.external_refs.get("slack.ts").map(String::as_str),
        Some("1700000000.000100")
    );
    // A later value of the same key replaces the earlier one, even from an attempt whose row
    // is finished (its lease was lost): the reference names what exists.
    let lost = |refs: &'static [(&'static str, &'static str)]| {
        ledger.record_delivery_with_refs(
            started.id,
            "lost-lease",
            DeliveryResult::Delivered { external_ref: None },
            (&id, refs),
            later,
        )
    };
    assert!(!lost(&[("slack.ts", "2.0")]).await.unwrap());
    let detail = ledger.get_episode(&id).await.unwrap().unwrap();
    assert_eq!(detail.external_refs["slack.ts"], "2.0");
    // Several at once (Slack's channel and ts), the others kept.
    assert!(!lost(&[("slack.channel", "C2"), ("slack.ts", "3.0")])
        .await
        .unwrap());
    let detail = ledger.get_episode(&id).await.unwrap().unwrap();
    assert_eq!(detail.external_refs["slack.channel"], "C2");
    assert_eq!(detail.external_refs["slack.ts"], "3.0");
    assert_eq!(detail.external_refs.len(), 2, "{:?}", detail.external_refs);
}

async fn dedup_and_resolve(ledger: &dyn Ledger) {
    let first = ledger
        .ingest(vec![incoming("aa01", T0, AlertStatus::Firing, true)], T0)
        .await
        .unwrap();
    assert_eq!(first[0].outcome, IngestOutcome::Created);
    assert_eq!(first[0].state, EpisodeState::Queued);
    for _ in 0..3 {
        let again = ledger
            .ingest(vec![incoming("aa01", T0, AlertStatus::Firing, true)], T0)
            .await
            .unwrap();
        assert_eq!(again[0].outcome, IngestOutcome::Repeat);
        assert_eq!(again[0].id, first[0].id);
    }
    // Counted, but no repeat row before a row that posts the episode's message: it could only
    // be skipped (nothing to reply to). Repeats behind such a row: outbox_order_leases_and_refs.
    let early = ledger.get_episode(&first[0].id).await.unwrap().unwrap();
    assert_eq!(early.summary.repeats, 3);
    assert!(early.deliveries.is_empty(), "{:?}", early.deliveries);
    let resolved = ledger
        .ingest(vec![incoming("aa01", T0, AlertStatus::Resolved, true)], T0)
        .await
        .unwrap();
    assert_eq!(resolved[0].outcome, IngestOutcome::Resolved);
    // A late firing notification from an HA peer does not un-resolve.
    ledger
        .ingest(vec![incoming("aa01", T0, AlertStatus::Firing, true)], T0)
        .await
        .unwrap();
    let detail = ledger.get_episode(&first[0].id).await.unwrap().unwrap();
    assert_eq!(detail.summary.status, AlertStatus::Resolved);
    assert_eq!(detail.summary.repeats, 4);
    assert!(detail.summary.ends_at.is_some());
    assert_eq!(detail.job.as_ref().unwrap().state, JobState::Queued);
    // A new startsAt is a new episode.
    let new = ledger
        .ingest(
            vec![incoming(
                "aa01",
                T0 + Duration::from_secs(3600),
                AlertStatus::Firing,
                true,
            )],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(new[0].outcome, IngestOutcome::Created);
    assert_ne!(new[0].id, first[0].id);
    // No runbook: recorded, no job. First seen resolved: skipped.
    let other = ledger
        .ingest(
            vec![
                incoming("aa02", T0, AlertStatus::Firing, false),
                incoming("aa03", T0, AlertStatus::Resolved, true),
            ],
            T0,
        )
        .await
        .unwrap();
    assert_eq!(other[0].state, EpisodeState::NoRunbook);
    assert_eq!(other[1].state, EpisodeState::Skipped);
    assert!(ledger
        .get_episode(&other[0].id)
        .await
        .unwrap()
        .unwrap()
        .job
        .is_none());
    // Drain the jobs created here so later checks start clean.
    while let Some(job) = ledger.lease_next("drain", LEASE, T0).await.unwrap() {
        assert!(ledger
            .complete_job(job.job_id, "drain", "{}".into(), T0)
            .await
            .unwrap());
    }
}

async fn leases_retries_and_failure(ledger: &dyn Ledger) {
    let t = T0 + Duration::from_secs(10);
    let created = ledger
        .ingest(vec![incoming("bb01", t, AlertStatus::Firing, true)], t)
        .await
        .unwrap();
    let job = ledger
        .lease_next("w1", LEASE, t)
        .await
        .unwrap()
        .expect("a job");
    assert_eq!(job.episode_id, created[0].id);
    assert_eq!(job.attempt, 1);
    assert!(
        ledger.lease_next("w2", LEASE, t).await.unwrap().is_none(),
        "leased job is not handed out twice"
    );
    assert!(ledger
        .renew_lease(job.job_id, "w1", LEASE, t)
        .await
        .unwrap());
    assert!(!ledger
        .renew_lease(job.job_id, "w2", LEASE, t)
        .await
        .unwrap());
    let state = ledger
        .fail_attempt(job.job_id, "w1", "boom".into(), Duration::from_secs(5), t)
        .await
        .unwrap();
    assert_eq!(state, JobState::Queued);
    assert!(
        ledger.lease_next("w1", LEASE, t).await.unwrap().is_none(),
        "retry waits for its backoff"
    );
    let t2 = t + Duration::from_secs(6);
    let job = ledger
        .lease_next("w1", LEASE, t2)
        .await
        .unwrap()
        .expect("retry");
    assert_eq!(job.attempt, 2);
    let state = ledger
        .fail_attempt(
            job.job_id,
            "w1",
            "boom again".into(),
            Duration::from_secs(5),
            t2,
        )
        .await
        .unwrap();
    assert_eq!(state, JobState::Failed);
    let detail = ledger.get_episode(&created[0].id).await.unwrap().unwrap();
    assert_eq!(detail.summary.state, EpisodeState::Failed);
    let job_view = detail.job.unwrap();
    assert_eq!(job_view.attempts, 2);
    assert!(job_view.last_error.unwrap().contains("boom again"));
    // Release gives the attempt back.
    let created = ledger
        .ingest(vec![incoming("bb02", t, AlertStatus::Firing, true)], t)
        .await
        .unwrap();
    let job = ledger.lease_next("w1", LEASE, t2).await.unwrap().unwrap();
    ledger.release(job.job_id, "w1", t2).await.unwrap();
    let job = ledger.lease_next("w1", LEASE, t2).await.unwrap().unwrap();
    assert_eq!(job.attempt, 1);
    assert!(!ledger
        .complete_job(job.job_id, "intruder", "{}".into(), t2)
        .await
        .unwrap());
    assert!(ledger
        .complete_job(job.job_id, "w1", r#"{"ok":true}"#.into(), t2)
        .await
        .unwrap());
    let detail = ledger.get_episode(&created[0].id).await.unwrap().unwrap();
    assert_eq!(detail.summary.state, EpisodeState::Triaged);
    assert_eq!(detail.report.unwrap()["ok"], true);
}

async fn expired_lease_is_taken_over(ledger: &dyn Ledger) {
    let t = T0 + Duration::from_secs(100);
    let created = ledger
        .ingest(vec![incoming("cc01", t, AlertStatus::Firing, true)], t)
        .await
        .unwrap();
    let job = ledger
        .lease_next("crashed", LEASE, t)
        .await
        .unwrap()
        .unwrap();
    let later = t + LEASE + Duration::from_secs(1);
    let taken = ledger
        .lease_next("survivor", LEASE, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.job_id, job.job_id);
    assert_eq!(taken.attempt, 2);
    assert!(
        !ledger
            .complete_job(job.job_id, "crashed", "{}".into(), later)
            .await
            .unwrap(),
        "the old owner lost the lease"
    );
    // Last attempt's lease expires too: failed, not handed out again.
    let much_later = later + LEASE + Duration::from_secs(1);
    assert!(ledger
        .lease_next("third", LEASE, much_later)
        .await
        .unwrap()
        .is_none());
    let detail = ledger.get_episode(&created[0].id).await.unwrap().unwrap();
    assert_eq!(detail.summary.state, EpisodeState::Failed);
    assert!(detail.job.unwrap().last_error.unwrap().contains("expired"));
}

/// The references an attempt produced are stored with its outcome; and even when the row is no
/// longer the recorder's, since they name what exists.
async fn outcomes_with_refs(ledger: &dyn Ledger) {
    let t = T0 + Duration::from_secs(300);
    let (id, job) = new_episode_with_its_job(ledger, "cc01", t).await;
    let started = of_episode(
        ledger.claim_deliveries("d1", LEASE, t, 100).await.unwrap(),
        &id,
    );
    assert_eq!(kinds(&started), vec![("slack", DeliveryKind::Started, 1)]);
    assert!(started[0].refs.is_empty());
    let slack_refs = [("slack.channel", "C9"), ("slack.ts", "9.000100")];
    assert!(ledger
        .record_delivery_with_refs(
            started[0].id,
            "d1",
            DeliveryResult::Delivered {
                external_ref: Some("C9/9.000100".into())
            },
            (&id, &slack_refs),
            t
        )
        .await
        .unwrap());
    assert!(ledger
        .complete_job(job.job_id, "w", r#"{"verdict":2}"#.into(), t)
        .await
        .unwrap());
    let mut verdicts = of_episode(
        ledger.claim_deliveries("d1", LEASE, t, 100).await.unwrap(),
        &id,
    );
    verdicts.sort_by(|a, b| a.destination.cmp(&b.destination));
    assert_eq!(
        kinds(&verdicts),
        vec![
            ("pagerduty", DeliveryKind::Verdict, 1),
            ("slack", DeliveryKind::Verdict, 1)
        ]
    );
    assert_eq!(verdicts[1].refs.get("slack.ts").unwrap(), "9.000100");
    assert_eq!(verdicts[1].refs.get("slack.channel").unwrap(), "C9");
    assert!(
        !ledger
            .record_delivery_with_refs(
                verdicts[0].id,
                "intruder",
                DeliveryResult::Failed { error: "no".into() },
                (&id, &[("pagerduty.incident", "P1")]),
                t
            )
            .await
            .unwrap(),
        "not the intruder's row"
    );
    assert!(ledger
        .record_delivery_with_refs(
            verdicts[0].id,
            "d1",
            DeliveryResult::Retry {
                error: "incident has no notes yet".into(),
                not_before: t + Duration::from_secs(5)
            },
            (&id, &[]),
            t
        )
        .await
        .unwrap());
    let detail = ledger.get_episode(&id).await.unwrap().unwrap();
    assert_eq!(
        detail.external_refs,
        BTreeMap::from([
            ("pagerduty.incident".to_string(), "P1".to_string()),
            ("slack.channel".to_string(), "C9".to_string()),
            ("slack.ts".to_string(), "9.000100".to_string()),
        ])
    );
    let states: Vec<(&str, &str, &str)> = detail
        .deliveries
        .iter()
        .map(|d| (d.destination.as_str(), d.kind.as_str(), d.state.as_str()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("slack", "started", "delivered"),
            ("slack", "verdict", "sending"),
            ("pagerduty", "verdict", "pending"),
        ]
    );
}

/// What an attempt may have sent without a recorded outcome is in doubt, as a window of time
/// the next attempt gets: a handed-back claim adds nothing (and is not counted), a failed
/// attempt adds its claim up to its failure, a lost lease adds the whole lease.
async fn doubt_windows(ledger: &dyn Ledger) {
    let t = T0 + Duration::from_secs(2_000);
    let at = |secs: u64| t + Duration::from_secs(secs);
    let (id, _job) = new_episode_with_its_job(ledger, "dd01", t).await;
    let id = id.as_str();
    let claim = |owner: &'static str, now: OffsetDateTime| async move {
        let claimed = ledger.claim_deliveries(owner, LEASE, now, 100).await;
        let mut ours = of_episode(claimed.unwrap(), id);
        assert_eq!(ours.len(), 1, "{ours:?}");
        ours.pop().unwrap()
    };
    let first = claim("d1", at(1)).await;
    assert_eq!((first.attempt, first.in_doubt), (1, None));
    let released = DeliveryResult::Released {
        reason: "not sent: lease too short".into(),
    };
    assert!(ledger
        .record_delivery(first.id, "d1", released, at(2))
        .await
        .unwrap());
    let second = claim("d1", at(3)).await;
    assert_eq!((second.attempt, second.in_doubt), (1, None), "released");
    let failed = DeliveryResult::Retry {
        error: "timed out".into(),
        not_before: at(5),
    };
    assert!(ledger
        .record_delivery(second.id, "d1", failed, at(5))
        .await
        .unwrap());
    let window = |from: u64, to: u64| {
        Some(DoubtWindow {
            from: at(from),
            to: at(to),
        })
    };
    let third = claim("d1", at(6)).await;
    assert_eq!((third.attempt, third.in_doubt), (2, window(3, 5)));
    // d1 stops; its lease runs out at 6 + 30 s and d2 takes the row over.
    let fourth = claim("d2", at(6 + 31)).await;
    assert_eq!((fourth.attempt, fourth.in_doubt), (3, window(3, 36)));
    assert!(ledger
        .record_delivery(
            fourth.id,
            "d2",
            DeliveryResult::Delivered { external_ref: None },
            at(38)
        )
        .await
        .unwrap());
}

async fn listing_and_purge(ledger: &dyn Ledger) {
    let all = ledger
        .list_episodes(EpisodeQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(all.len() >= 7, "{}", all.len());
    let failed = ledger
        .list_episodes(EpisodeQuery {
            limit: 1000,
            state: Some(EpisodeState::Failed),
            status: None,
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 2);
    let limited = ledger
        .list_episodes(EpisodeQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 2);
    let stats = ledger.stats(T0).await.unwrap();
    let failed_count = stats
        .episodes_by_state
        .iter()
        .find(|(s, _)| *s == EpisodeState::Failed)
        .unwrap()
        .1;
    assert_eq!(failed_count, 2);
    ledger.check_writable(T0).await.unwrap();
    let purged = ledger.purge(T0 + Duration::from_secs(100)).await.unwrap();
    assert!(purged >= 1);
    let purged_all = ledger
        .purge(T0 + Duration::from_secs(1_000_000))
        .await
        .unwrap();
    assert!(purged_all >= 1);
    assert!(ledger
        .list_episodes(EpisodeQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn sqlite_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let destinations = suite_routes();
    let ledger = SqliteLedger::open(&dir.path().join("ledger.db"), destinations).unwrap();
    suite(Arc::new(ledger)).await;
}

#[tokio::test]
async fn sqlite_is_one_process_and_reclaims_leases_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = SqliteLedger::open(&path, Vec::new()).unwrap();
    assert!(matches!(
        SqliteLedger::open(&path, Vec::new()),
        Err(LedgerError::Locked(_))
    ));
    let created = ledger
        .ingest(vec![incoming("dd01", T0, AlertStatus::Firing, true)], T0)
        .await
        .unwrap();
    ledger
        .lease_next("old-process", LEASE, T0)
        .await
        .unwrap()
        .unwrap();
    drop(ledger);
    let reopened = SqliteLedger::open(&path, Vec::new()).unwrap();
    let detail = reopened.get_episode(&created[0].id).await.unwrap().unwrap();
    assert_eq!(detail.summary.state, EpisodeState::Queued);
    assert!(detail
        .job
        .unwrap()
        .last_error
        .unwrap()
        .contains("interrupted"));
    let job = reopened
        .lease_next("new-process", LEASE, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.attempt, 2);
}

#[tokio::test]
async fn sqlite_outbox_rows_are_written_with_the_state_change() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteLedger::open(&dir.path().join("ledger.db"), vec![slack_route()]).unwrap();
    let created = ledger
        .ingest(vec![incoming("ee01", T0, AlertStatus::Firing, true)], T0)
        .await
        .unwrap();
    // Released at shutdown and leased again: "started" is announced once.
    let job = ledger.lease_next("w", LEASE, T0).await.unwrap().unwrap();
    ledger.release(job.job_id, "w", T0).await.unwrap();
    let job = ledger.lease_next("w", LEASE, T0).await.unwrap().unwrap();
    assert_eq!(job.attempt, 1);
    ledger
        .complete_job(job.job_id, "w", "{}".into(), T0)
        .await
        .unwrap();
    ledger
        .ingest(vec![incoming("ee01", T0, AlertStatus::Resolved, true)], T0)
        .await
        .unwrap();
    let detail = ledger.get_episode(&created[0].id).await.unwrap().unwrap();
    let kinds: Vec<&str> = detail.deliveries.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(kinds, vec!["started", "verdict", "resolved"]);
}

#[tokio::test]
async fn sqlite_deliveries_in_flight_at_a_crash_go_out_again_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = SqliteLedger::open(&path, vec![slack_route()]).unwrap();
    let created = ledger
        .ingest(vec![incoming("ef01", T0, AlertStatus::Firing, true)], T0)
        .await
        .unwrap();
    ledger.lease_next("w", LEASE, T0).await.unwrap().unwrap();
    let claimed = ledger
        .claim_deliveries("old-process", LEASE, T0, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].kind, DeliveryKind::Started);
    drop(ledger);
    let reopened = SqliteLedger::open(&path, vec![slack_route()]).unwrap();
    let detail = reopened.get_episode(&created[0].id).await.unwrap().unwrap();
    assert_eq!(detail.deliveries[0].state, "pending");
    assert!(detail.deliveries[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("interrupted"));
    // Well before the old lease would have expired: the row is due at once, attempt 2.
    let again = reopened
        .claim_deliveries("new-process", LEASE, OffsetDateTime::now_utc(), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
}

#[tokio::test]
async fn sqlite_group_commit_serves_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(SqliteLedger::open(&dir.path().join("ledger.db"), Vec::new()).unwrap());
    let mut tasks = Vec::new();
    for i in 0..200 {
        let ledger = Arc::clone(&ledger);
        tasks.push(tokio::spawn(async move {
            ledger
                .ingest(
                    vec![incoming(
                        &format!("{i:016x}"),
                        T0,
                        AlertStatus::Firing,
                        true,
                    )],
                    T0,
                )
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap()[0].outcome, IngestOutcome::Created);
    }
    let stats = ledger.stats(T0).await.unwrap();
    assert_eq!(stats.queue_depth, 200);
}

/// The ledger writes rows for the destinations it is given, by name, for the kinds each wants;
/// it knows nothing else of them.
#[tokio::test]
async fn rows_follow_the_routes_given() {
    let dir = tempfile::tempdir().unwrap();
    let routes = vec![
        Route::new("pager-of-record", [DeliveryKind::Verdict]),
        Route::new(
            "status-board",
            [DeliveryKind::Started, DeliveryKind::Resolved],
        ),
    ];
    let ledger = SqliteLedger::open(&dir.path().join("ledger.db"), routes).unwrap();
    let id = ledger
        .ingest(
            vec![incoming("00000000000route", T0, AlertStatus::Firing, true)],
            T0,
        )
        .await
        .unwrap()[0]
        .id
        .clone();
    let job = ledger.lease_next("w", LEASE, T0).await.unwrap().unwrap();
    assert!(ledger
        .complete_job(job.job_id, "w", "{}".into(), T0)
        .await
        .unwrap());
    ledger
        .ingest(
            vec![incoming(
                "00000000000route",
                T0,
                AlertStatus::Resolved,
                true,
            )],
            T0,
        )
        .await
        .unwrap();
    let rows: Vec<(String, String)> = ledger
        .get_episode(&id)
        .await
        .unwrap()
        .unwrap()
        .deliveries
        .into_iter()
        .map(|d| (d.destination, d.kind))
        .collect();
    let expected = [
        ("status-board", "started"),
        ("pager-of-record", "verdict"),
        ("status-board", "resolved"),
    ]
    .map(|(d, k)| (d.to_string(), k.to_string()));
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn unwritable_location_is_unavailable_not_a_panic() {
    let result = SqliteLedger::open(
        std::path::Path::new("/proc/cabal-triage/ledger.db"),
        Vec::new(),
    );
    match result {
        Err(error @ LedgerError::Unavailable(_)) => {
            let text = error.to_string();
            assert!(text.contains("/proc/cabal-triage"), "{text}");
            assert!(text.contains("check disk space and permissions"), "{text}");
        }
        other => panic!("{:?}", other.err()),
    }
}

#[tokio::test]
async fn dynamodb_unreachable_says_what_dynamodb_said_not_sqlite_advice() {
    let mut dynalite = Some(super::dynamodb::test_dynalite::Dynalite::start());
    let ledger = dynalite.as_ref().unwrap().ledger("gone", Vec::new()).await;
    dynalite.take(); // killed: nothing answers on its port any more
    let error = ledger
        .ingest(
            vec![incoming("0000000000000gone", T0, AlertStatus::Firing, true)],
            T0,
        )
        .await
        .expect_err("nothing to write to");
    let text = error.to_string();
    assert!(matches!(error, LedgerError::Unavailable(_)), "{text}");
    assert!(text.contains("DynamoDB") && text.contains("gone"), "{text}");
    assert!(text.contains("aws.endpoint_url"), "{text}");
    assert!(!text.contains("disk space"), "SQLite's advice: {text}");
}

#[tokio::test]
async fn sqlite_size_cap_turns_growth_into_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = SqliteLedger::open(&dir.path().join("ledger.db"), Vec::new()).unwrap();
    let cap = ledger.limit_size(256 * 1024).await.unwrap();
    assert!(cap <= 256 * 1024, "{cap}");
    let mut refused = None;
    for n in 0..2000 {
        let mut big = incoming(&format!("{n:016x}"), T0, AlertStatus::Firing, true);
        big.alert
            .annotations
            .insert("filler".into(), "x".repeat(2000));
        match ledger.ingest(vec![big], T0).await {
            Ok(_) => {}
            Err(error) => {
                refused = Some(error);
                break;
            }
        }
    }
    assert!(
        matches!(refused, Some(LedgerError::Unavailable(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn sqlite_wal_is_checkpointed_off_the_commit_path_and_reused() {
    // The writer's automatic checkpoint is off; the checkpoint thread must copy the WAL back so
    // that later commits start it over instead of growing it without end.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let ledger = SqliteLedger::open(&path, Vec::new()).unwrap();
    let wal = dir.path().join("ledger.db-wal");
    let mut sizes = Vec::new();
    for round in 0..3 {
        let batch: Vec<IncomingAlert> = (0..300)
            .map(|n| {
                let mut big = incoming(
                    &format!("{round:04x}{n:012x}"),
                    T0,
                    AlertStatus::Firing,
                    true,
                );
                big.alert
                    .annotations
                    .insert("filler".into(), "x".repeat(3000));
                big
            })
            .collect();
        ledger.ingest(batch, T0).await.unwrap();
        sizes.push(std::fs::metadata(&wal).unwrap().len());
        tokio::time::sleep(super::sqlite::CHECKPOINT_INTERVAL * 3).await;
    }
    assert!(
        sizes[0] > 900_000,
        "the first round should fill the WAL: {sizes:?}"
    );
    assert!(
        sizes[2] < sizes[0] * 3 / 2,
        "the WAL grew round after round, so it is never checkpointed: {sizes:?}"
    );
}

#[tokio::test]
async fn dynamodb_passes_the_suite() {
    let dynalite = super::dynamodb::test_dynalite::Dynalite::start();
    let destinations = suite_routes();
    let ledger = dynalite.ledger("suite", destinations).await;
    suite(Arc::new(ledger)).await;
}

#[tokio::test]
async fn dynamodb_without_its_table_says_how_to_create_it() {
    let dynalite = super::dynamodb::test_dynalite::Dynalite::start();
    let (aws, credentials) = dynalite.aws();
    let result = DynamoLedger::connect(
        &aws,
        "absent",
        false,
        Vec::new(),
        Duration::from_secs(86_400),
        Some(credentials),
    )
    .await;
    match result {
        Err(LedgerError::Unavailable(message)) => {
            assert!(message.contains("ledger.create_table"), "{message}")
        }
        other => panic!("{:?}", other.err()),
    }
}

/// Two replicas on one table: HA duplicates create one episode, each job is leased once, each
/// delivery row is claimed once, and a dead replica's lease is taken over when it expires.
#[tokio::test]
async fn dynamodb_replicas_share_one_table_without_duplicates() {
    let dynalite = super::dynamodb::test_dynalite::Dynalite::start();
    let destinations = vec![pagerduty_route()];
    let a = Arc::new(dynalite.ledger("replicas", destinations.clone()).await);
    let b = Arc::new(dynalite.ledger("replicas", destinations).await);
    let batch: Vec<IncomingAlert> = (0..40)
        .map(|i| incoming(&format!("{i:016x}"), T0, AlertStatus::Firing, true))
        .collect();
    let mut posts = Vec::new();
    for replica in [&a, &b, &a, &b] {
        let replica = Arc::clone(replica);
        let batch = batch.clone();
        posts.push(tokio::spawn(async move {
            replica.ingest(batch, T0).await.unwrap()
        }));
    }
    let mut created = 0;
    for post in posts {
        created += post
            .await
            .unwrap()
            .iter()
            .filter(|r| r.outcome == IngestOutcome::Created)
            .count();
    }
    assert_eq!(created, 40, "one episode per alert, whoever got it first");

    let mut workers = Vec::new();
    for (index, replica) in [&a, &b, &a, &b, &a, &b].into_iter().enumerate() {
        let replica = Arc::clone(replica);
        workers.push(tokio::spawn(async move {
            let owner = format!("w{index}");
            let mut done = Vec::new();
            while let Some(job) = replica.lease_next(&owner, LEASE, T0).await.unwrap() {
                assert!(replica
                    .complete_job(job.job_id, &owner, "{}".into(), T0)
                    .await
                    .unwrap());
                done.push(job.episode_id);
            }
            done
        }));
    }
    let mut triaged = Vec::new();
    for worker in workers {
        triaged.extend(worker.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = triaged.iter().collect();
    assert_eq!((triaged.len(), distinct.len()), (40, 40), "every job once");

    let mut dispatchers = Vec::new();
    for (index, replica) in [&a, &b, &a, &b].into_iter().enumerate() {
        let replica = Arc::clone(replica);
        dispatchers.push(tokio::spawn(async move {
            let owner = format!("d{index}");
            let mut sent = Vec::new();
            loop {
                let claimed = replica
                    .claim_deliveries(&owner, LEASE, T0, 7)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return sent;
                }
                for row in claimed {
                    assert!(replica
                        .record_delivery(
                            row.id,
                            &owner,
                            DeliveryResult::Delivered { external_ref: None },
                            T0
                        )
                        .await
                        .unwrap());
                    sent.push(row.episode.id);
                }
            }
        }));
    }
    let mut sent = Vec::new();
    for dispatcher in dispatchers {
        sent.extend(dispatcher.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = sent.iter().collect();
    assert_eq!((sent.len(), distinct.len()), (40, 40), "every verdict once");

    // Replica a takes a job and dies; b takes it over once the lease expired, not before.
    let id = a
        .ingest(
            vec![incoming("dead0001", T0, AlertStatus::Firing, true)],
            T0,
        )
        .await
        .unwrap()[0]
        .id
        .clone();
    let job = a.lease_next("a-w0", LEASE, T0).await.unwrap().unwrap();
    assert_eq!(job.episode_id, id);
    drop(a);
    let early = T0 + LEASE - Duration::from_secs(1);
    assert!(b.lease_next("b-w0", LEASE, early).await.unwrap().is_none());
    let late = T0 + LEASE + Duration::from_secs(1);
    let taken = b.lease_next("b-w0", LEASE, late).await.unwrap().unwrap();
    assert_eq!((taken.episode_id.as_str(), taken.attempt), (id.as_str(), 2));
}
