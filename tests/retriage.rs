//! Fresh verdicts through the real binary: a repeat of a firing episode triages it again only
//! when its verdict is older than `runbooks.retriage_after_secs` (2 s here); the new verdict
//! edits the Slack message and one thread reply says what changed; two replicas on one
//! DynamoDB table receiving the same repeat triage once; a resolved episode never again. And
//! the "Re-run triage" button through the binary: Socket Mode opened from its configuration.

#[allow(dead_code)]
#[path = "support/fake_ntfy.rs"]
mod fake_ntfy;
#[allow(dead_code)]
#[path = "support/fake_slack.rs"]
mod fake_slack;
#[allow(dead_code)]
#[path = "support/fake_socket_mode.rs"]
mod fake_socket_mode;
mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use fake_slack::FakeSlack;
use serde_json::Value;
use support::dynalite::Dynalite;
use support::payload::{alert, notification, test_alert};
use support::service::{Service, ServiceOptions};

const GROUP: &str = "{}:{alertname=\"CabalTriageTest\"}";
const RETRIAGE_AFTER: Duration = Duration::from_secs(2);

fn options(slack: &FakeSlack) -> ServiceOptions {
    ServiceOptions::default()
        .with("CABAL_TRIAGE_SLACK_API_BASE_URL", &slack.api_base_url())
        .with("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-test-token")
        .with("CABAL_TRIAGE_SLACK_CHANNEL", "C0TRIAGE")
        .with("CABAL_TRIAGE__DELIVERY__POLL_INTERVAL_MS", "100")
        .with(
            "CABAL_TRIAGE__RUNBOOKS__RETRIAGE_AFTER_SECS",
            &RETRIAGE_AFTER.as_secs().to_string(),
        )
}

/// Polls `check` every 100 ms until it returns Some, for at most `within`.
async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn retriage_replies(slack: &FakeSlack) -> Vec<String> {
    slack
        .replies()
        .into_iter()
        .map(|m| m.text)
        .filter(|text| text.starts_with("Triaged again"))
        .collect()
}

/// When the stored report's triage started (it changes with each triage).
fn triage_started(episode: &Value) -> String {
    episode["report"]["started_at"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until the episode is triaged and every delivery row of it went out.
async fn settled(service: &Service, id: &str) -> Value {
    wait_for(
        "the episode triaged and delivered",
        Duration::from_secs(30),
        || async {
            let episode = service.episode(id).await;
            let delivered = episode["deliveries"].as_array().is_some_and(|rows| {
                rows.iter()
                    .all(|r| r["state"] != "pending" && r["state"] != "sending")
            });
            (episode["state"] == "triaged" && delivered).then_some(episode)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_after_the_interval_triages_again_once_and_says_what_changed() {
    let slack = FakeSlack::start().await;
    let ntfy = fake_ntfy::FakeNtfy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start_in(
        dir.path(),
        options(&slack)
            .with("CABAL_TRIAGE_NTFY_BASE_URL", &ntfy.base_url())
            .with("CABAL_TRIAGE_NTFY_TOPIC", "cabal-alerts")
            .with("CABAL_TRIAGE_NTFY_TOKEN", "tk_testtoken")
            // Socket Mode on (its session is refused by the fake): the verdict has buttons.
            .with("CABAL_TRIAGE_SLACK_APP_TOKEN", "xapp-test-token-1234"),
    )
    .await;
    let firing = notification(GROUP, vec![test_alert(1, &[])]);
    let (status, body) = service.post_alerts(&firing).await;
    assert_eq!(status, 202, "{body}");
    let id = body["episodes"][0]["id"].as_str().unwrap().to_string();
    let first = settled(&service, &id).await;
    let verdict_at = Instant::now();

    // A repeat within the interval: a reply that the verdict stands, no new triage.
    let (status, _) = service.post_alerts(&firing).await;
    assert_eq!(status, 202);
    let episode = settled(&service, &id).await;
    assert_eq!(triage_started(&episode), triage_started(&first));
    assert!(episode["external_refs"]
        .get("triage.retriaged_at")
        .is_none());
    assert!(retriage_replies(&slack).is_empty());

    // A repeat once the verdict is older than the interval: one new triage, one reply.
    tokio::time::sleep(
        RETRIAGE_AFTER.saturating_sub(verdict_at.elapsed()) + Duration::from_millis(300),
    )
    .await;
    let updates_before = slack.requests("chat.update").len();
    let (status, _) = service.post_alerts(&firing).await;
    assert_eq!(status, 202);
    let episode = wait_for("the fresh verdict", Duration::from_secs(30), || async {
        let episode = settled(&service, &id).await;
        (triage_started(&episode) != triage_started(&first)).then_some(episode)
    })
    .await;
    let replies = wait_for(
        "the reply on the fresh verdict",
        Duration::from_secs(30),
        || async {
            let replies = retriage_replies(&slack);
            (!replies.is_empty()).then_some(replies)
        },
    )
    .await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].contains("unchanged"), "{}", replies[0]);
    assert!(
        slack.requests("chat.update").len() > updates_before,
        "the message is edited with the fresh verdict"
    );
    assert_eq!(slack.parents().len(), 1, "still one message per episode");
    let buttons: Vec<String> = slack.parents()[0]
        .blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|block| block["type"] == "actions")
        .flat_map(|block| block["elements"].as_array().unwrap().clone())
        .map(|button| format!("{} {}", button["action_id"], button["value"]))
        .collect();
    assert_eq!(
        buttons,
        [
            format!("\"silence_2h\" \"{id}\""),
            format!("\"silence_8h\" \"{id}\""),
            format!("\"rerun_triage\" \"{id}\"")
        ],
        "the verdict's buttons (Socket Mode on)"
    );
    let refs = &episode["external_refs"];
    assert!(refs["triage.retriaged_at"].is_string(), "{refs}");
    assert!(refs["triage.previous_verdict"]
        .as_str()
        .unwrap()
        .contains("\"action\""));
    let retriaged_rows = episode["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "retriaged")
        .count();
    assert_eq!(retriaged_rows, 2, "Slack's and ntfy's");
    // The phone hears a fresh verdict only when it changed: this one did not.
    let ntfy_row = episode["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "retriaged" && r["destination"] == "ntfy")
        .unwrap()
        .clone();
    assert_eq!(ntfy_row["state"], "skipped", "{ntfy_row}");
    assert_eq!(ntfy.messages().len(), 1, "the first verdict only");

    // Resolved: however old the verdict, a late firing copy (an HA peer) triages nothing.
    let resolved = notification(
        GROUP,
        vec![alert(
            "CabalTriageTest",
            &format!("{:016x}", 1),
            "2026-11-28T20:00:00.123456789Z",
            "resolved",
            &[],
        )],
    );
    let (status, _) = service.post_alerts(&resolved).await;
    assert_eq!(status, 202);
    tokio::time::sleep(RETRIAGE_AFTER + Duration::from_millis(300)).await;
    let (status, _) = service.post_alerts(&firing).await;
    assert_eq!(status, 202);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let last = service.episode(&id).await;
    assert_eq!(last["status"], "resolved");
    assert_eq!(last["state"], "triaged");
    assert_eq!(triage_started(&last), triage_started(&episode));
    assert_eq!(retriage_replies(&slack).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_receiving_the_same_repeat_triage_again_once() {
    let dynalite = Dynalite::start();
    let slack = FakeSlack::start().await;
    let options = options(&slack).dynamodb(&dynalite.endpoint, "retriage");
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Service::start_in(dir_a.path(), options.clone()).await;
    let b = Service::start_in(dir_b.path(), options).await;
    let firing = notification(GROUP, vec![test_alert(7, &[])]);
    let (status, body) = a.post_alerts(&firing).await;
    assert_eq!(status, 202, "{body}");
    let id = body["episodes"][0]["id"].as_str().unwrap().to_string();
    let first = settled(&a, &id).await;
    tokio::time::sleep(RETRIAGE_AFTER + Duration::from_millis(300)).await;

    // The same repeat, three times to each replica, all at once (an HA pair and its retries).
    let posts = (0..6).map(|i| {
        let replica = if i % 2 == 0 { &a } else { &b };
        replica.post_alerts(&firing)
    });
    for (status, body) in futures::future::join_all(posts).await {
        assert_eq!(status, 202, "{body}");
    }
    let episode = wait_for("the fresh verdict", Duration::from_secs(30), || async {
        let episode = settled(&b, &id).await;
        (triage_started(&episode) != triage_started(&first)).then_some(episode)
    })
    .await;
    wait_for(
        "the reply on the fresh verdict",
        Duration::from_secs(30),
        || async { (!retriage_replies(&slack).is_empty()).then_some(()) },
    )
    .await;
    // Give a second (wrong) re-triage time to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let episode_now = settled(&a, &id).await;
    assert_eq!(
        triage_started(&episode_now),
        triage_started(&episode),
        "one re-triage"
    );
    let retriaged_rows = episode_now["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "retriaged")
        .count();
    assert_eq!(retriaged_rows, 1, "{}", episode_now["deliveries"]);
    assert_eq!(retriage_replies(&slack).len(), 1);
    assert_eq!(slack.parents().len(), 1);
}

/// The buttons through the real binary: `serve` with an app token and an allow-list (through the
/// environment, as on ECS) opens Socket Mode from its own configuration; a stranger's "Re-run
/// triage" is refused ephemerally and changes nothing; an allowed user's triages the episode
/// again, says so in the thread, and is recorded with the episode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_answers_a_rerun_press_over_socket_mode() {
    let slack = FakeSlack::start().await;
    let socket = fake_socket_mode::FakeSocketMode::start(3600).await;
    slack.set_socket_url(&socket.url);
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start_in(
        dir.path(),
        options(&slack)
            .with("CABAL_TRIAGE_SLACK_APP_TOKEN", "xapp-test-token-1234")
            .with("CABAL_TRIAGE__SLACK__ALLOWED_USERS", "UALLOWED,SONCALL"),
    )
    .await;
    wait_for(
        "the Socket Mode session",
        Duration::from_secs(30),
        || async { (socket.connections() == 1).then_some(()) },
    )
    .await;
    let (status, body) = service
        .post_alerts(&notification(GROUP, vec![test_alert(1, &[])]))
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["episodes"][0]["id"].as_str().unwrap().to_string();
    let first = settled(&service, &id).await;
    let message_ts = slack.parents()[0].ts.clone();
    let press = |user: &str| {
        serde_json::json!({
            "type": "block_actions",
            "trigger_id": format!("trigger-{user}"),
            "user": {"id": user, "username": format!("name-of-{user}")},
            "channel": {"id": "C0TRIAGE"},
            "container": {"type": "message", "message_ts": message_ts},
            "message": {"ts": message_ts},
            "actions": [{"action_id": "rerun_triage", "value": id, "type": "button",
                "action_ts": "1765130100.000001"}]
        })
    };

    let envelope = socket.send_interactive(press("USTRANGER"));
    wait_for("the stranger's ack", Duration::from_secs(5), || async {
        socket.ack_of(&envelope)
    })
    .await;
    let refusal = wait_for("the refusal", Duration::from_secs(10), || async {
        slack.requests("chat.postEphemeral").into_iter().next()
    })
    .await;
    assert_eq!(refusal.body["user"], "USTRANGER");
    assert_eq!(
        triage_started(&settled(&service, &id).await),
        triage_started(&first)
    );

    let envelope = socket.send_interactive(press("UALLOWED"));
    let took = wait_for("the ack", Duration::from_secs(5), || async {
        socket.ack_of(&envelope)
    })
    .await;
    assert!(took < Duration::from_secs(3), "acknowledged after {took:?}");
    let episode = wait_for("the re-run triage", Duration::from_secs(30), || async {
        let episode = settled(&service, &id).await;
        (triage_started(&episode) != triage_started(&first)).then_some(episode)
    })
    .await;
    wait_for("the re-run's reply", Duration::from_secs(10), || async {
        slack
            .replies()
            .into_iter()
            .find(|m| m.text.starts_with("Triage re-run by"))
    })
    .await;
    let recorded: Vec<String> = episode["external_refs"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(key, _)| key.starts_with("action.") && key.ends_with(".rerun_triage"))
        .map(|(_, value)| value.to_string())
        .collect();
    assert_eq!(recorded.len(), 1, "{}", episode["external_refs"]);
    assert!(recorded[0].contains("UALLOWED"), "{recorded:?}");
    assert_eq!(slack.requests("chat.postEphemeral").len(), 1);
}
