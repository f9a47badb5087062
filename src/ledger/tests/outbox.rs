//! The suite, outbox part: rows written with their state change, in order per destination,
//! claimed under leases, outcomes and references recorded, windows of doubt.

use super::*;

pub(super) async fn outbox_order_leases_and_refs(ledger: &dyn Ledger) {
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

/// The references an attempt produced are stored with its outcome; and even when the row is no
/// longer the recorder's, since they name what exists.
pub(super) async fn outcomes_with_refs(ledger: &dyn Ledger) {
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
pub(super) async fn doubt_windows(ledger: &dyn Ledger) {
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

/// An alert without a runbook gets its message when the caller asks (`announce`, from
/// `notify.unknown_alerts = "post"`): a `started` row for the destinations that post one, with
/// the episode; then a `resolved` row on resolution and no repeat rows. Without `announce`,
/// nothing.
pub(super) async fn unknown_alerts_announced(ledger: &dyn Ledger) {
    let t = T0 + Duration::from_secs(900);
    let mut announced = incoming("cc01", t, AlertStatus::Firing, false);
    announced.announce = true;
    let quiet = incoming("cc02", t, AlertStatus::Firing, false);
    let results = ledger.ingest(vec![announced, quiet], t).await.unwrap();
    assert!(results.iter().all(|r| r.state == EpisodeState::NoRunbook));
    let (id, quiet_id) = (results[0].id.clone(), results[1].id.clone());
    assert!(ledger
        .get_episode(&quiet_id)
        .await
        .unwrap()
        .unwrap()
        .deliveries
        .is_empty());
    let claimed = ledger.claim_deliveries("d9", LEASE, t, 100).await.unwrap();
    assert!(of_episode(claimed.clone(), &quiet_id).is_empty());
    let first = of_episode(claimed, &id);
    assert_eq!(kinds(&first), vec![("slack", DeliveryKind::Started, 1)]);
    assert_eq!(first[0].episode.state, EpisodeState::NoRunbook);
    assert!(ledger
        .record_delivery(
            first[0].id,
            "d9",
            DeliveryResult::Delivered { external_ref: None },
            t
        )
        .await
        .unwrap());
    ledger
        .ingest(vec![incoming("cc01", t, AlertStatus::Firing, false)], t)
        .await
        .unwrap();
    ledger
        .ingest(vec![incoming("cc01", t, AlertStatus::Resolved, false)], t)
        .await
        .unwrap();
    let later = of_episode(
        ledger.claim_deliveries("d9", LEASE, t, 100).await.unwrap(),
        &id,
    );
    assert_eq!(kinds(&later), vec![("slack", DeliveryKind::Resolved, 1)]);
}
