//! The suite, job part: leases, retries, failure when the attempts are used up, and an expired
//! lease taken over.

use super::*;

pub(super) async fn leases_retries_and_failure(ledger: &dyn Ledger) {
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

pub(super) async fn expired_lease_is_taken_over(ledger: &dyn Ledger) {
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

/// A report larger than a ledger keeps is stored once, trimmed, with its verdict whole and a
/// note of what was cut (the same bound on every backend).
pub(super) async fn oversized_report_is_stored_trimmed(ledger: &dyn Ledger) {
    let t = T0 + Duration::from_secs(40);
    let created = ledger
        .ingest(vec![incoming("bb09", t, AlertStatus::Firing, true)], t)
        .await
        .unwrap();
    // Earlier parts of the suite may leave runnable jobs: done with, until this one comes.
    let job = loop {
        let job = ledger
            .lease_next("w1", LEASE, t)
            .await
            .unwrap()
            .expect("a job");
        if job.episode_id == created[0].id {
            break job;
        }
        assert!(ledger
            .complete_job(job.job_id, "w1", "{}".into(), t)
            .await
            .unwrap());
    };
    let events: Vec<serde_json::Value> = (0..6000)
        .map(|i| serde_json::json!({"timestamp": i, "message": format!("{i} {}", "x".repeat(160)), "log_stream": "s"}))
        .collect();
    let report = serde_json::json!({
        "verdict": {"action": "nat-replace", "summary": "stopped"},
        "evidence": {"tiers": {"smtp-out": {"samples": ["a", "b"]}}},
        "evidence_snapshot": {"tiers": {"smtp-out": {"log_events": events}}},
    })
    .to_string();
    assert!(report.len() > 1_000_000, "{}", report.len());
    assert!(ledger
        .complete_job(job.job_id, "w1", report, t)
        .await
        .unwrap());
    let detail = ledger.get_episode(&created[0].id).await.unwrap().unwrap();
    assert_eq!(detail.summary.state, EpisodeState::Triaged);
    let stored = detail.report.unwrap();
    assert!(
        stored.to_string().len() <= crate::report::fit::MAX_STORED_REPORT_BYTES,
        "{}",
        stored.to_string().len()
    );
    assert_eq!(stored["verdict"]["action"], "nat-replace");
    let note = stored["trimmed"].as_str().unwrap();
    assert!(note.contains("smtp-out log events 6000 -> "), "{note}");
    let kept = stored["evidence_snapshot"]["tiers"]["smtp-out"]["log_events"]
        .as_array()
        .unwrap()
        .len();
    assert!(kept > 100 && kept < 6000, "{kept}");
}
