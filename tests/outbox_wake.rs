//! The measurement behind `bench/outbox-wake.sh` (ignored in normal runs): how long after a
//! triage ends its verdict reaches Slack. The real binary runs against the fake Slack with the
//! default outbox poll (500 ms), once with `delivery.wake_on_write = false` (the poll alone, the
//! baseline) and once with it on; for each of `BENCH_EPISODES` episodes (a test triage of
//! `BENCH_TRIAGE_MS`), the lag is the time from the 202 to the verdict's `chat.update` at the fake
//! Slack, less the triage's own time (the report's `finished_at - started_at`). Prints one JSON
//! line per mode (`BENCH {...}`); the script prints the ratio.

#[allow(dead_code)] // the notify tests use the rest
#[path = "support/fake_slack.rs"]
mod fake_slack;
#[allow(dead_code)]
#[path = "support/notify_service.rs"]
mod service;

use std::time::{Duration, Instant};

use fake_slack::FakeSlack;
use serde_json::json;
use service::{payload, wait_for, Service};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Per episode: the lag after the triage's own time (from the 202), and the time from the
/// triage's end (the report's `finished_at`) to the verdict at Slack; with `wake` on or off.
async fn lags(wake: bool, episodes: u64, triage_ms: u64) -> (Vec<f64>, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = Service::start(
        dir.path(),
        &[
            ("CABAL_TRIAGE_SLACK_API_BASE_URL", slack.api_base_url()),
            ("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-test-token".into()),
            ("CABAL_TRIAGE_SLACK_CHANNEL", "C0TRIAGE".into()),
            ("CABAL_TRIAGE__DELIVERY__POLL_INTERVAL_MS", "500".into()),
            ("CABAL_TRIAGE__WORKER__POLL_INTERVAL_MS", "1000".into()),
            ("CABAL_TRIAGE__DELIVERY__WAKE_ON_WRITE", wake.to_string()),
            ("CABAL_TRIAGE_LOG_LEVEL", "warn".into()),
        ],
    );
    let (mut lags, mut after_end) = (Vec::new(), Vec::new());
    for n in 0..episodes {
        let mut body = payload("firing", &[("test_sleep_ms", &triage_ms.to_string())], &[]);
        body["alerts"][0]["fingerprint"] = json!(format!("{:016x}", 0xbe00 + n));
        let updates_before = slack.requests("chat.update").len();
        let accepted = Instant::now();
        let accepted_wall = OffsetDateTime::now_utc();
        let answer = service.post_alert(&body).await;
        let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
        wait_for("the verdict's chat.update", || {
            slack.requests("chat.update").len() > updates_before
        })
        .await;
        let updated = slack.requests("chat.update")[updates_before].at;
        let report = service.episode(&id).await["report"].clone();
        let at =
            |field: &str| OffsetDateTime::parse(report[field].as_str().unwrap(), &Rfc3339).unwrap();
        let triage = (at("finished_at") - at("started_at")).as_seconds_f64() * 1000.0;
        let seen = updated.duration_since(accepted).as_secs_f64() * 1000.0;
        lags.push(seen - triage);
        let updated_wall = accepted_wall + updated.duration_since(accepted);
        after_end.push((updated_wall - at("finished_at")).as_seconds_f64() * 1000.0);
        // Episodes apart by a random gap, so that the poll's phase differs from one to the next
        // (a fixed gap would land the baseline's verdicts at the same point of the poll).
        let gap = 300 + rand::random::<u64>() % 500;
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    (lags, after_end)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run by bench/outbox-wake.sh"]
async fn verdict_lag_poll_only_and_woken() {
    let episodes = env_number("BENCH_EPISODES", 8);
    let triage_ms = env_number("BENCH_TRIAGE_MS", 550);
    for wake in [false, true] {
        let (lags, after_end) = lags(wake, episodes, triage_ms).await;
        println!(
            "BENCH {}",
            json!({"wake_on_write": wake, "triage_ms": triage_ms, "lags_ms": lags, "after_end_ms": after_end})
        );
    }
}
