//! The DynamoDB ledger under real concurrency: two replicas of the real binary share one table on
//! dynalite (which, like DynamoDB, answers concurrent requests concurrently), and the same
//! notifications reach both at once, as an Alertmanager HA pair sends them. Every post must be
//! stored (202; a 503 makes Alertmanager retry, but these are not failures of anything) and
//! every alert must be one episode, its repeats counted. The replicas triage meanwhile (the test
//! runbook) and post to a fake Slack, so repeats race with the triage's own writes.

#[allow(dead_code)]
#[path = "support/fake_slack.rs"]
mod fake_slack;
mod support;

use std::time::{Duration, Instant};

use fake_slack::FakeSlack;
use serde_json::Value;
use support::dynalite::Dynalite;
use support::payload::{notification, test_alert};
use support::service::{Service, ServiceOptions, TOKEN};

/// Two replicas on one table of a fresh dynalite, with Slack in bot mode.
async fn replicas(table: &str) -> (Dynalite, FakeSlack, Service, Service) {
    let dynalite = Dynalite::start();
    let slack = FakeSlack::start().await;
    let options = ServiceOptions::default()
        .dynamodb(&dynalite.endpoint, table)
        .with("RUST_LOG", "warn")
        .with("CABAL_TRIAGE_SLACK_API_BASE_URL", &slack.api_base_url())
        .with("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-test-token")
        .with("CABAL_TRIAGE_SLACK_CHANNEL", "C0TRIAGE")
        .with("CABAL_TRIAGE__WORKER__CONCURRENCY", "8")
        .with("CABAL_TRIAGE__DELIVERY__POLL_INTERVAL_MS", "100");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Service::start_in(dir_a.path(), options.clone()).await;
    let b = Service::start_in(dir_b.path(), options).await;
    (dynalite, slack, a, b)
}

/// Posts every body at once, the i-th to replica a when i is even, else b; the answers in order.
/// A post may wait a minute and a half: on a loaded 2-core machine the burst takes a while, and
/// these tests are about what the answer is.
async fn post_all(a: &Service, b: &Service, bodies: &[String]) -> Vec<(u16, Value)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap();
    let posts = bodies.iter().enumerate().map(|(i, body)| {
        let replica = if i % 2 == 0 { a } else { b };
        let request = client
            .post(format!("{}/api/v1/alerts", replica.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.clone());
        async move {
            let answer = request.send().await.expect("POST /api/v1/alerts");
            let status = answer.status().as_u16();
            let text = answer.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
    });
    futures::future::join_all(posts).await
}

fn refused(answers: &[(u16, Value)]) -> Vec<String> {
    answers
        .iter()
        .filter(|(status, _)| *status != 202)
        .map(|(status, body)| format!("{status} {body}"))
        .collect()
}

/// Every episode the ledger holds (the list, newest first, up to 1000).
async fn episodes(service: &Service) -> Vec<Value> {
    let (status, body) = service.get_json("/api/v1/episodes?limit=1000").await;
    assert_eq!(status, 200, "{body}");
    body["episodes"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_alert_posted_20_times_at_once_over_two_replicas_is_one_episode() {
    let (_dynalite, _slack, a, b) = replicas("one-alert").await;
    let body = notification(
        "{}:{alertname=\"CabalTriageTest\"}",
        vec![test_alert(1, &[])],
    );
    let started = Instant::now();
    let answers = post_all(&a, &b, &vec![body; 20]).await;
    let took = started.elapsed();
    let refused = refused(&answers);
    eprintln!(
        "20 concurrent posts of one alert over two replicas: {} × 202 in {took:?}; refused: {refused:?}",
        20 - refused.len()
    );
    assert!(refused.is_empty(), "every post must be stored: {refused:?}");
    let ids: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|(_, body)| body["episodes"][0]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one episode id: {ids:?}");
    let created = answers
        .iter()
        .filter(|(_, body)| body["episodes"][0]["outcome"] == "created")
        .count();
    assert_eq!(created, 1, "one post created it, the others are repeats");
    let listed = episodes(&a).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["repeats"], 19, "every repeat counted: {listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_payloads_of_50_posted_4_times_at_once_over_two_replicas_are_500_episodes() {
    let (_dynalite, _slack, a, b) = replicas("storm").await;
    let bodies: Vec<String> = (0..10)
        .map(|payload| {
            let alerts = (0..50)
                .map(|n| test_alert(payload * 1000 + n, &[("batch", &payload.to_string())]))
                .collect();
            notification(
                &format!("{{}}:{{alertname=\"CabalTriageTest\", batch=\"{payload}\"}}"),
                alerts,
            )
        })
        .collect();
    // Each payload 4 times, the copies of one payload next to each other: two go to each
    // replica, all 40 at once.
    let copies: Vec<String> = bodies
        .iter()
        .flat_map(|body| std::iter::repeat_n(body.clone(), 4))
        .collect();
    let started = Instant::now();
    let answers = post_all(&a, &b, &copies).await;
    let took = started.elapsed();
    let refused = refused(&answers);
    eprintln!(
        "10 payloads of 50 alerts, each posted 4 times at once over two replicas: {} of 40 × 202 in {took:?}; refused: {:?}",
        40 - refused.len(),
        refused.iter().map(|r| r.chars().take(300).collect::<String>()).collect::<Vec<_>>()
    );
    assert!(refused.is_empty(), "every post must be stored: {refused:?}");
    let listed = episodes(&b).await;
    assert_eq!(listed.len(), 500);
    // Every repeat is counted; one whose count the SDK sent again after a timeout may count
    // twice (the ledger's comment on its retries), so at least, not exactly.
    let repeats: u64 = listed.iter().map(|e| e["repeats"].as_u64().unwrap()).sum();
    assert!(
        repeats >= 1500,
        "three repeats of each of the 500 alerts: {repeats}"
    );
    // And the triage goes on: every episode leaves the queue.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let listed = episodes(&a).await;
        let open = listed
            .iter()
            .filter(|e| matches!(e["state"].as_str(), Some("queued" | "running")))
            .count();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} episodes still open");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
