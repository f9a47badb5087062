//! The DynamoDB ledger on dynalite: the suite, and what only it has (several replicas on one
//! table, the table's absence, DynamoDB's own errors).

use super::*;

#[tokio::test]
async fn dynamodb_unreachable_says_what_dynamodb_said_not_sqlite_advice() {
    let mut dynalite = Some(crate::ledger::dynamodb::test_dynalite::Dynalite::start());
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
async fn dynamodb_passes_the_suite() {
    let dynalite = crate::ledger::dynamodb::test_dynalite::Dynalite::start();
    let destinations = suite_routes();
    let ledger = dynalite.ledger("suite", destinations).await;
    suite(Arc::new(ledger)).await;
}

#[tokio::test]
async fn dynamodb_without_its_table_says_how_to_create_it() {
    let dynalite = crate::ledger::dynamodb::test_dynalite::Dynalite::start();
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
    let dynalite = crate::ledger::dynamodb::test_dynalite::Dynalite::start();
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
