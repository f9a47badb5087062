//! The SQLite ledger: the suite, and what only it has (one process per file, leases reclaimed
//! at open, group commit, the size cap, the checkpoint off the commit path).

use super::*;

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
        tokio::time::sleep(crate::ledger::sqlite::CHECKPOINT_INTERVAL * 3).await;
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

/// The files the ledger creates are its owner's alone, whatever the umask: the directory 0700,
/// the database, its -wal and -shm and the lock file 0600.
#[tokio::test]
async fn sqlite_creates_private_files_and_directories() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new").join("sub").join("ledger.db");
    let ledger = SqliteLedger::open(&path, Vec::new()).unwrap();
    ledger
        .ingest(vec![incoming("ee01", T0, AlertStatus::Firing, true)], T0)
        .await
        .unwrap();
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    assert_eq!(mode(&dir.path().join("new").join("sub")), 0o700);
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        assert!(file.exists(), "{}", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // A directory that exists keeps the mode its operator gave it.
    let shared = tempfile::tempdir().unwrap();
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o750)).unwrap();
    drop(ledger);
    let _other = SqliteLedger::open(&shared.path().join("ledger.db"), Vec::new()).unwrap();
    assert_eq!(mode(shared.path()), 0o750);
    assert_eq!(mode(&shared.path().join("ledger.db")), 0o600);
}
