//! The suite, fresh-verdict part: a triaged, firing episode whose verdict has aged is claimed
//! for a new triage once (however many claim it at once), its old verdict kept for comparison,
//! and the new report causes `retriaged` rows; a verdict still fresh, a triage not finished and a
//! resolved episode are never claimed.

use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn count(detail: &EpisodeDetail, destination: &str, kind: &str) -> usize {
    detail
        .deliveries
        .iter()
        .filter(|d| d.destination == destination && d.kind == kind)
        .count()
}

pub(super) async fn fresh_verdicts(ledger: &dyn Ledger) {
    let t = T0 + Duration::from_secs(900);
    let (id, job) = new_episode_with_its_job(ledger, "rt01", t).await;
    assert!(
        !ledger
            .claim_retriage(&id, t + HOUR, "repeat", t)
            .await
            .unwrap(),
        "a triage still running is not claimed"
    );
    let first = r#"{"verdict":{"action":"investigate","confidence":"low","summary":"first"}}"#;
    assert!(ledger
        .complete_job(job.job_id, "w", first.into(), t)
        .await
        .unwrap());
    // The verdict was reached at t: not older than t.
    assert!(!ledger.claim_retriage(&id, t, "repeat", t).await.unwrap());

    let later = t + 2 * HOUR;
    let claims = futures::future::join_all(
        (0..4).map(|_| ledger.claim_retriage(&id, later - HOUR, "repeat", later)),
    )
    .await;
    let won = claims
        .into_iter()
        .map(Result::unwrap)
        .filter(|c| *c)
        .count();
    assert_eq!(won, 1, "concurrent claims of one episode: exactly one wins");
    assert!(
        !ledger
            .claim_retriage(&id, later - HOUR, "repeat", later)
            .await
            .unwrap(),
        "a claimed re-triage is not claimed again"
    );
    let detail = ledger.get_episode(&id).await.unwrap().unwrap();
    assert_eq!(detail.summary.state, EpisodeState::Queued);
    let previous: serde_json::Value =
        serde_json::from_str(&detail.external_refs[PREVIOUS_VERDICT_REF]).unwrap();
    assert_eq!(previous["summary"], "first");
    assert_eq!(detail.external_refs[RETRIAGE_REASON_REF], "repeat");
    assert!(detail.external_refs.contains_key(RETRIAGED_AT_REF));
    assert_eq!(
        detail.report.as_ref().unwrap()["verdict"]["summary"],
        "first",
        "the old verdict stays shown until the new one exists"
    );

    // The new triage: a fresh budget of attempts, no second "started", and `retriaged` rows.
    let job = loop {
        let job = ledger
            .lease_next("w", LEASE, later)
            .await
            .unwrap()
            .expect("the re-triage's job");
        if job.episode_id == id {
            break job;
        }
        ledger
            .complete_job(job.job_id, "w", "{}".into(), later)
            .await
            .unwrap();
    };
    assert_eq!(job.attempt, 1);
    let second = r#"{"verdict":{"action":"replace-nat","confidence":"high","summary":"second"}}"#;
    assert!(ledger
        .complete_job(job.job_id, "w", second.into(), later)
        .await
        .unwrap());
    let detail = ledger.get_episode(&id).await.unwrap().unwrap();
    assert_eq!(detail.summary.state, EpisodeState::Triaged);
    assert_eq!(
        detail.report.as_ref().unwrap()["verdict"]["summary"],
        "second"
    );
    assert_eq!(count(&detail, "slack", "started"), 1);
    assert_eq!(count(&detail, "slack", "verdict"), 1);
    assert_eq!(count(&detail, "slack", "retriaged"), 1);
    assert_eq!(count(&detail, "pagerduty", "verdict"), 1);
    assert_eq!(
        count(&detail, "pagerduty", "retriaged"),
        0,
        "only destinations that want the kind get a row"
    );
    // Within the interval after the new verdict: nothing.
    assert!(!ledger
        .claim_retriage(&id, later, "repeat", later + HOUR / 2)
        .await
        .unwrap());

    // A resolved episode is never triaged again, however old its verdict.
    ledger
        .ingest(
            vec![incoming("rt01", t, AlertStatus::Resolved, true)],
            later,
        )
        .await
        .unwrap();
    let much_later = later + 10 * HOUR;
    assert!(!ledger
        .claim_retriage(&id, much_later, "repeat", much_later)
        .await
        .unwrap());
    assert!(!ledger
        .claim_retriage("no-such-episode", much_later, "repeat", much_later)
        .await
        .unwrap());

    // Operators' actions are kept with the episode, in time order.
    assert!(ledger
        .record_operator_action(&id, "silence_2h", "U1 (jane): silenced", later)
        .await
        .unwrap());
    assert!(ledger
        .record_operator_action(&id, "rerun_triage", "U1 (jane): re-run", later + HOUR)
        .await
        .unwrap());
    assert!(!ledger
        .record_operator_action("no-such-episode", "rerun_triage", "x", later)
        .await
        .unwrap());
    let detail = ledger.get_episode(&id).await.unwrap().unwrap();
    let actions: Vec<(&String, &String)> = detail
        .external_refs
        .iter()
        .filter(|(key, _)| key.starts_with("action."))
        .collect();
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(actions[0].0.ends_with(".silence_2h"));
    assert_eq!(actions[1].1, "U1 (jane): re-run");
}
