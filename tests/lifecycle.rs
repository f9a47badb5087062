//! The worker through the real binary: retries, failures, panics, crash safety and graceful
//! shutdown. Uses the test-only runbook (feature `test-runbook`), steered by alert labels.

mod support;

use std::time::{Duration, Instant};

use support::payload::{notification, test_alert, GROUP_KEY};
use support::service::{Service, ServiceOptions};

fn ids_of(answer: &serde_json::Value) -> Vec<String> {
    answer["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn retries_then_succeeds_fails_after_max_attempts_and_survives_panics() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start_in(dir.path(), ServiceOptions::default()).await;
    let body = notification(
        GROUP_KEY,
        vec![
            test_alert(1, &[("test_fail_attempts", "1")]),
            test_alert(2, &[("test_fail_attempts", "99")]),
            test_alert(3, &[("test_panic", "true")]),
            test_alert(4, &[]),
        ],
    );
    let (status, answer) = service.post_alerts(&body).await;
    assert_eq!(status, 202, "{answer}");
    let ids = ids_of(&answer);
    // The pauses are 0.5-1 s then 1-2 s: the failing ones need at most about 3 s to use their
    // 3 attempts.
    let episodes = service
        .wait_for_states(&ids, &["triaged", "failed"], Duration::from_secs(30))
        .await;
    assert_eq!(episodes[0]["state"], "triaged");
    assert_eq!(episodes[0]["job"]["attempts"], 2);
    assert_eq!(
        episodes[0]["report"]["verdict"]["summary"],
        "test triage, attempt 2"
    );
    assert_eq!(episodes[1]["state"], "failed");
    assert_eq!(episodes[1]["job"]["attempts"], 3);
    let error = episodes[1]["job"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("attempt 3 of 3") && error.contains("test failure"),
        "{error}"
    );
    assert_eq!(episodes[2]["state"], "failed");
    assert!(episodes[2]["job"]["last_error"]
        .as_str()
        .unwrap()
        .contains("panicked"));
    assert_eq!(episodes[3]["state"], "triaged");
    assert_eq!(episodes[3]["job"]["attempts"], 1);
    // The service is still healthy after a panic, and the metrics saw it all.
    let metrics = service
        .client
        .get(format!("{}/metrics", service.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("cabal_triage_episodes{state=\"failed\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cabal_triage_episodes{state=\"triaged\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cabal_triage_webhook_requests_total{code=\"202\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cabal_triage_job_duration_seconds_count{outcome=\"retry\"} 5"),
        "{metrics}"
    );
    // Each stored report's steps are counted and timed per probe (the test runbook's one step).
    assert!(
        metrics.contains("cabal_triage_probe_outcomes_total{probe=\"sleep\",outcome=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "cabal_triage_probe_duration_seconds_count{probe=\"sleep\",outcome=\"ok\"} 2"
        ),
        "{metrics}"
    );
    // The gauges say when they were read: just now.
    let read_at: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("cabal_triage_ledger_stats_timestamp_seconds "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ledger stats timestamp:\n{metrics}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - read_at).abs() < 60.0, "read at {read_at}, now {now}");
}

#[tokio::test]
async fn triage_budget_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServiceOptions::default()
        .with("CABAL_TRIAGE__WORKER__TRIAGE_BUDGET_SECS", "1")
        .with("CABAL_TRIAGE__WORKER__MAX_ATTEMPTS", "1");
    let service = Service::start_in(dir.path(), options).await;
    let (_, answer) = service
        .post_alerts(&notification(
            GROUP_KEY,
            vec![test_alert(1, &[("test_sleep_ms", "5000")])],
        ))
        .await;
    let ids = ids_of(&answer);
    let episodes = service
        .wait_for_states(&ids, &["failed"], Duration::from_secs(10))
        .await;
    let error = episodes[0]["job"]["last_error"].as_str().unwrap();
    assert!(error.contains("budget of 1 s"), "{error}");
}

#[tokio::test]
async fn kill_9_while_jobs_are_leased_then_restart_finishes_every_episode_once() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServiceOptions::default().with("CABAL_TRIAGE__WORKER__CONCURRENCY", "4");
    let service = Service::start_in(dir.path(), options.clone()).await;
    let alerts: Vec<_> = (0..50)
        .map(|n| test_alert(n, &[("test_sleep_ms", "400")]))
        .collect();
    let (status, answer) = service.post_alerts(&notification(GROUP_KEY, alerts)).await;
    assert_eq!(status, 202);
    let ids = ids_of(&answer);
    assert_eq!(ids.len(), 50);
    // Wait until work is under way: some running, some done, most still queued.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, running) = service
            .get_json("/api/v1/episodes?state=running&limit=1000")
            .await;
        if !running["episodes"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no job started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    service.kill_hard();

    let service = Service::start_in(dir.path(), options).await;
    let episodes = service
        .wait_for_states(&ids, &["triaged"], Duration::from_secs(60))
        .await;
    let mut interrupted = 0;
    for episode in &episodes {
        let attempts = episode["job"]["attempts"].as_u64().unwrap();
        assert!((1..=2).contains(&attempts), "{episode}");
        assert_eq!(episode["report"]["episode"], episode["id"]);
        if attempts == 2 {
            interrupted += 1;
            assert!(
                episode["job"]["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("interrupted"),
                "{episode}"
            );
        }
    }
    assert!(
        (1..=4).contains(&interrupted),
        "only the jobs running at the kill ran twice: {interrupted}"
    );
    let (_, all) = service.get_json("/api/v1/episodes?limit=1000").await;
    assert_eq!(
        all["episodes"].as_array().unwrap().len(),
        50,
        "no episode lost or duplicated"
    );
}

#[tokio::test]
async fn sigterm_lets_running_jobs_finish_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServiceOptions::default()
        .with("CABAL_TRIAGE__WORKER__CONCURRENCY", "2")
        .with("CABAL_TRIAGE__WORKER__SHUTDOWN_GRACE_SECS", "10");
    let service = Service::start_in(dir.path(), options.clone()).await;
    let alerts: Vec<_> = (0..4)
        .map(|n| test_alert(n, &[("test_sleep_ms", "1000")]))
        .collect();
    let (_, answer) = service.post_alerts(&notification(GROUP_KEY, alerts)).await;
    let ids = ids_of(&answer);
    // Let the first two start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, took) = service.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(5),
        "finished running jobs then stopped: {took:?}"
    );

    let service = Service::start_in(dir.path(), options).await;
    let episodes = service
        .wait_for_states(&ids, &["triaged"], Duration::from_secs(20))
        .await;
    let finished_before_stop = episodes
        .iter()
        .filter(|e| e["job"]["attempts"] == 1)
        .count();
    assert_eq!(finished_before_stop, 4, "no attempt wasted: {episodes:?}");
}

#[tokio::test]
async fn sigterm_after_the_grace_period_releases_jobs_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let options = ServiceOptions::default()
        .with("CABAL_TRIAGE__WORKER__CONCURRENCY", "2")
        .with("CABAL_TRIAGE__WORKER__SHUTDOWN_GRACE_SECS", "1");
    let service = Service::start_in(dir.path(), options.clone()).await;
    let alerts: Vec<_> = (0..2)
        .map(|n| test_alert(n, &[("test_sleep_ms", "20000")]))
        .collect();
    let (_, answer) = service.post_alerts(&notification(GROUP_KEY, alerts)).await;
    let ids = ids_of(&answer);
    service
        .wait_for_states(&ids, &["running"], Duration::from_secs(5))
        .await;
    let (status, took) = service.terminate(Duration::from_secs(10));
    assert!(status.success());
    assert!(
        took < Duration::from_secs(4),
        "stopped after the grace period: {took:?}"
    );

    // Released, not failed: the attempt is given back and the next start takes them at once.
    let options = options.with("CABAL_TRIAGE__WORKER__SHUTDOWN_GRACE_SECS", "0");
    let service = Service::start_in(dir.path(), options).await;
    for id in &ids {
        let episode = service.episode(id).await;
        assert!(
            ["queued", "running"].contains(&episode["state"].as_str().unwrap()),
            "{episode}"
        );
        assert!(
            episode["job"]["attempts"].as_u64().unwrap() <= 1,
            "{episode}"
        );
        assert!(
            episode["job"]["last_error"].is_null(),
            "released, not interrupted: {episode}"
        );
    }
}

/// SIGHUP re-reads the webhook secrets (a rotated `auth.webhook_tokens_file`) while the service
/// keeps running its triages: the new secret is accepted at once, the dropped one refused, work
/// in progress finishes in the same process.
#[tokio::test]
async fn sighup_rereads_the_webhook_secrets_without_dropping_work() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("webhook-tokens");
    let before = "file-webhook-secret-0123456789";
    let rotated = "rotated-webhook-secret-9876543210";
    std::fs::write(&tokens, format!("{before}\n")).unwrap();
    let options = ServiceOptions::default()
        .with("CABAL_TRIAGE__WORKER__CONCURRENCY", "2")
        .with(
            "CABAL_TRIAGE__AUTH__WEBHOOK_TOKENS_FILE",
            tokens.to_str().unwrap(),
        );
    let service = Service::start_in(dir.path(), options).await;
    let alerts: Vec<_> = (0..2)
        .map(|n| test_alert(n, &[("test_sleep_ms", "1500")]))
        .collect();
    let (status, answer) = service.post_alerts(&notification(GROUP_KEY, alerts)).await;
    assert_eq!(status, 202, "{answer}");
    let ids = ids_of(&answer);
    let post_with = |secret: &str| {
        let body = notification("{}:{alertname=\"Rotated\"}", vec![test_alert(9, &[])]);
        let header = format!("Bearer {secret}");
        let service = &service;
        async move {
            service
                .post_raw(body.into_bytes(), "application/json", Some(&header))
                .await
                .0
        }
    };
    assert_eq!(
        post_with(rotated).await,
        401,
        "not accepted before the rotation"
    );

    std::fs::write(&tokens, format!("{rotated}\n")).unwrap();
    hang_up(&service);
    let accepted = wait_until_status(|| post_with(rotated), 202).await;
    assert!(accepted, "the rotated secret was not accepted after SIGHUP");
    // The environment's secret is still configured, so it still works.
    let (status, _) = service
        .post_alerts(&notification(GROUP_KEY, vec![test_alert(0, &[])]))
        .await;
    assert_eq!(status, 202);

    assert_eq!(
        post_with(before).await,
        401,
        "the file's old secret was dropped"
    );

    // A file that no longer holds a secret is refused; the secrets in use stay.
    std::fs::write(&tokens, "").unwrap();
    hang_up(&service);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(post_with(rotated).await, 202);

    // The triages running meanwhile finished in this process, on their first attempt.
    let episodes = service
        .wait_for_states(&ids, &["triaged"], Duration::from_secs(20))
        .await;
    assert!(
        episodes.iter().all(|e| e["job"]["attempts"] == 1),
        "{episodes:?}"
    );
    let log = service.drain_stderr().join("\n");
    assert!(
        log.contains("SIGHUP: webhook, read and destination secrets re-read"),
        "{log}"
    );
}

fn hang_up(service: &Service) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &service.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Polls `post` until it answers `want` (the signal is handled asynchronously), for up to 5 s.
async fn wait_until_status<F, Fut>(post: F, want: u16) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if post().await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
