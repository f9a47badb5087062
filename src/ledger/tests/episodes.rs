//! The suite, episode part: one episode per alert however often it comes, resolution, the list
//! and the purge.

use super::*;

pub(super) async fn dedup_and_resolve(ledger: &dyn Ledger) {
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

pub(super) async fn listing_and_purge(ledger: &dyn Ledger) {
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

/// The alert's history: episodes of one alertname first seen since an instant, the asking
/// episode left out, counted by their stored verdicts' actions (a report without one, or not
/// JSON, counts without an action; an episode not triaged yet too).
pub(super) async fn alert_history(ledger: &dyn Ledger) {
    let base = T0 + Duration::from_secs(400 * 86_400);
    let named = |fingerprint: &str, t: OffsetDateTime| {
        let mut alert = incoming(fingerprint, t, AlertStatus::Firing, true);
        alert
            .alert
            .labels
            .insert("alertname".into(), "HistoryContract".into());
        alert
    };
    let report = |action: &str| format!(r#"{{"verdict": {{"action": "{action}"}}}}"#);
    // Ten days ago (outside a 7-day look), then four within it, then the one asking.
    let mut ids = Vec::new();
    for (k, days_ago, stored) in [
        (0, 10, Some(report("greylisting-transient"))),
        (1, 6, Some(report("greylisting-transient"))),
        (2, 3, Some(report("greylisting-transient"))),
        (3, 2, Some("not json".to_string())),
        (4, 1, None),
    ] {
        let t = base - Duration::from_secs(days_ago * 86_400);
        let id = ledger
            .ingest(vec![named(&format!("h{k:03}"), t)], t)
            .await
            .unwrap()[0]
            .id
            .clone();
        while let Some(job) = ledger.lease_next("h", LEASE, t).await.unwrap() {
            let body = if job.episode_id == id {
                stored.clone()
            } else {
                Some("{}".to_string())
            };
            match body {
                Some(body) => {
                    ledger.complete_job(job.job_id, "h", body, t).await.unwrap();
                }
                None => {
                    ledger.release(job.job_id, "h", t).await.unwrap();
                    break;
                }
            }
        }
        ids.push(id);
    }
    let asking = ledger
        .ingest(vec![named("h999", base)], base)
        .await
        .unwrap()[0]
        .id
        .clone();
    let since = base - Duration::from_secs(7 * 86_400);
    let history = ledger
        .alert_history("HistoryContract", &asking, since)
        .await
        .unwrap();
    assert_eq!(history.since, Some(since));
    assert_eq!(history.episodes, 4, "{history:?}");
    assert_eq!(
        history.by_action,
        BTreeMap::from([("greylisting-transient".to_string(), 2)]),
        "{history:?}"
    );
    // Another alertname, or a look from later, sees none of them.
    let other = ledger
        .alert_history("NoSuchAlert", &asking, since)
        .await
        .unwrap();
    assert_eq!(other.episodes, 0);
    let later = ledger
        .alert_history("HistoryContract", &asking, base + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(later.episodes, 0, "{later:?}");
    // Leave no job behind for the suite's later checks.
    while let Some(job) = ledger.lease_next("h", LEASE, base).await.unwrap() {
        ledger
            .complete_job(job.job_id, "h", "{}".into(), base)
            .await
            .unwrap();
    }
}
