//! Slack's buttons over Socket Mode, end to end in one process: the client opens its session
//! through the fake Slack Web API (`apps.connections.open`) on the fake Socket Mode server,
//! acknowledges every envelope within Slack's 3 s, turns away a user outside
//! `slack.allowed_users` with an ephemeral message, silences the episode's alert in the real
//! Alertmanager (and expires the silence from the reply's button), re-runs the triage through
//! the ledger, records each action with the episode, and reconnects on `disconnect`.

#[allow(dead_code)]
#[path = "support/alertmanager.rs"]
mod alertmanager;
#[allow(dead_code)]
#[path = "support/fake_slack.rs"]
mod fake_slack;
#[allow(dead_code)]
#[path = "support/fake_socket_mode.rs"]
mod fake_socket_mode;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cabal_triage::alert::{AlertStatus, EpisodeKey, WebhookAlert};
use cabal_triage::config::{AlertmanagerConfig, Secret};
use cabal_triage::ledger::{IncomingAlert, Ledger, SqliteLedger};
use cabal_triage::notify::silence::SilenceClient;
use cabal_triage::notify::slack::actions::{self, SlackActions};
use cabal_triage::notify::slack::socket::SocketMode;
use cabal_triage::notify::slack::SlackApi;
use fake_slack::FakeSlack;
use fake_socket_mode::FakeSocketMode;
use serde_json::{json, Value};

async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn press(user: &str, action: &str, value: &str) -> Value {
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": format!("name-of-{user}")},
        "channel": {"id": "C0TRIAGE"},
        "container": {"type": "message", "message_ts": "1765130000.000100"},
        "message": {"ts": "1765130000.000100"},
        "actions": [{"action_id": action, "value": value, "type": "button"}]
    })
}

/// A triaged, firing episode in a fresh SQLite ledger; its id.
async fn triaged_episode(ledger: &SqliteLedger, labels: &BTreeMap<String, String>) -> String {
    let now = time::OffsetDateTime::now_utc();
    let alert = WebhookAlert {
        status: AlertStatus::Firing,
        labels: labels.clone(),
        annotations: BTreeMap::new(),
        starts_at: now,
        ends_at: None,
        generator_url: String::new(),
        fingerprint: "0123456789abcdef".into(),
    };
    let incoming = IncomingAlert {
        key: EpisodeKey::new(
            "{}:{alertname=\"SendmailDeferredSpike\", severity=\"warning\"}",
            &alert.fingerprint,
            now,
        ),
        alert,
        has_runbook: true,
        max_attempts: 2,
        announce: false,
        receiver: "cabal-triage".into(),
        external_url: String::new(),
    };
    let id = ledger.ingest(vec![incoming], now).await.unwrap()[0]
        .id
        .clone();
    let job = ledger
        .lease_next("w", Duration::from_secs(30), now)
        .await
        .unwrap()
        .unwrap();
    let report = json!({"verdict": {"action": "investigate", "confidence": "low", "summary": "s"}});
    assert!(ledger
        .complete_job(job.job_id, "w", report.to_string(), now)
        .await
        .unwrap());
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_over_socket_mode_silence_expire_rerun_and_refuse_strangers() {
    let Some(binary) = alertmanager::binary_or_skip("socket_mode") else {
        return;
    };
    let am_config = "route:\n  receiver: none\nreceivers:\n  - name: none\n";
    let am = alertmanager::Alertmanager::start(&binary, "am-buttons", am_config, None).await;
    let slack = FakeSlack::start().await;
    let socket_server = FakeSocketMode::start(3600).await;
    slack.set_socket_url(&socket_server.url);
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(SqliteLedger::open(&dir.path().join("ledger.db"), Vec::new()).unwrap());
    let labels = BTreeMap::from([
        ("alertname".to_string(), "SendmailDeferredSpike".to_string()),
        ("severity".to_string(), "warning".to_string()),
        // Not a group label (the group is alertname and severity): not a matcher, so the
        // silence still holds when ECS replaces the task and the instance changes.
        ("instance".to_string(), "10.0.1.7:9100".to_string()),
    ]);
    let episode = triaged_episode(&ledger, &labels).await;

    let http = reqwest::Client::new();
    let handler = SlackActions {
        api: SlackApi::new(
            http.clone(),
            &slack.api_base_url(),
            Secret::new("xoxb-test-token"),
        ),
        ledger: Arc::clone(&ledger) as Arc<dyn Ledger>,
        silences: SilenceClient::from_config(
            http.clone(),
            &AlertmanagerConfig {
                url: Some(am.base.clone()),
                token: None,
                token_file: None,
            },
        ),
        allowed_users: vec!["UALLOWED".into(), "SONCALL".into()],
        public_url: Some("https://triage.example".into()),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let client = SocketMode::new(
        http.clone(),
        &slack.api_base_url(),
        Secret::new("xapp-test-token"),
    );
    tokio::spawn(client.run(Arc::new(handler), stop.clone()));
    wait_for("the first session", || async {
        (socket_server.connections() == 1).then_some(())
    })
    .await;
    let opened = slack.requests("apps.connections.open");
    assert_eq!(opened.len(), 1);
    assert_eq!(
        opened[0].authorization.as_deref(),
        Some("Bearer xapp-test-token")
    );

    let acked = |id: String| {
        let server = socket_server.clone();
        async move {
            let took = wait_for("the ack", || async { server.ack_of(&id) }).await;
            assert!(took < Duration::from_secs(3), "acknowledged after {took:?}");
            took
        }
    };
    let silences = |am_base: String| async move {
        let all: Value = reqwest::get(format!("{am_base}/api/v2/silences"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.as_array().cloned().unwrap_or_default()
    };

    // A stranger: acknowledged, told "not allowed", nothing silenced.
    let id = socket_server.send_interactive(press("USTRANGER", actions::SILENCE_2H, &episode));
    let took = acked(id).await;
    eprintln!("ack of a press: {took:?}");
    let ephemeral = wait_for("the ephemeral refusal", || async {
        slack.requests("chat.postEphemeral").into_iter().next()
    })
    .await;
    assert_eq!(ephemeral.body["user"], "USTRANGER");
    assert!(ephemeral.body["text"]
        .as_str()
        .unwrap()
        .contains("not allowed"));
    assert!(silences(am.base.clone()).await.is_empty());

    // Silence 2 h: the silence exists with the alert's labels, the reply names it.
    let id = socket_server.send_interactive(press("UALLOWED", actions::SILENCE_2H, &episode));
    acked(id).await;
    let reply = wait_for("the silence's reply", || async {
        slack
            .replies()
            .into_iter()
            .find(|m| m.text.starts_with("Silenced for 2 h"))
    })
    .await;
    assert_eq!(reply.thread_ts.as_deref(), Some("1765130000.000100"));
    let created = silences(am.base.clone()).await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert_eq!(created[0]["status"]["state"], "active");
    assert_eq!(created[0]["createdBy"], "name-of-UALLOWED");
    let matchers: Vec<String> = created[0]["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}={} {} {}",
                m["name"], m["value"], m["isEqual"], m["isRegex"]
            )
        })
        .collect();
    assert_eq!(
        matchers,
        [
            r#""alertname"="SendmailDeferredSpike" true false"#,
            r#""severity"="warning" true false"#
        ],
        "the group's labels, each an equality matcher"
    );
    assert!(
        reply.text.contains("the alert group") && reply.text.contains("severity"),
        "{}",
        reply.text
    );
    let silence_id = created[0]["id"].as_str().unwrap().to_string();
    assert!(reply.text.contains(&silence_id));
    let expire_value = reply.blocks[1]["elements"][0]["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(expire_value, format!("{episode} {silence_id}"));

    // Expire silence, from the reply's button.
    // Pressed in the reply: Slack names the reply as the container, in the verdict's thread.
    let mut expire_press = press("UALLOWED", actions::EXPIRE_SILENCE, &expire_value);
    expire_press["container"]["message_ts"] = json!(reply.ts);
    expire_press["message"] = json!({"ts": reply.ts, "thread_ts": "1765130000.000100"});
    let id = socket_server.send_interactive(expire_press);
    acked(id).await;
    wait_for("the silence expired", || async {
        let now = silences(am.base.clone()).await;
        (now[0]["status"]["state"] == "expired").then_some(())
    })
    .await;
    // The reply that carried the button no longer does: it says the silence expired.
    let edited = wait_for("the button's reply edited", || async {
        slack
            .replies()
            .into_iter()
            .find(|m| m.ts == reply.ts && m.text.starts_with("Silence "))
    })
    .await;
    assert!(
        edited
            .text
            .starts_with(&format!("Silence {silence_id} expired by")),
        "{}",
        edited.text
    );
    assert!(
        !edited.blocks.to_string().contains("expire_silence"),
        "{}",
        edited.blocks
    );

    // Re-run triage: the episode is queued for a new triage.
    let id = socket_server.send_interactive(press("UALLOWED", actions::RERUN_TRIAGE, &episode));
    acked(id).await;
    wait_for("the re-run claimed", || async {
        let detail = ledger.get_episode(&episode).await.unwrap().unwrap();
        (detail.summary.state == cabal_triage::ledger::EpisodeState::Queued).then_some(())
    })
    .await;
    wait_for("the re-run's reply", || async {
        slack
            .replies()
            .into_iter()
            .find(|m| m.text.starts_with("Triage re-run by"))
    })
    .await;

    // Every action is in the ledger with who did it.
    let detail = ledger.get_episode(&episode).await.unwrap().unwrap();
    let actions: Vec<String> = detail
        .external_refs
        .iter()
        .filter(|(key, _)| key.starts_with("action."))
        .map(|(key, value)| format!("{key} = {value}"))
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(
        actions
            .iter()
            .all(|a| a.contains("UALLOWED (name-of-UALLOWED)")),
        "{actions:?}"
    );
    assert!(actions
        .iter()
        .any(|a| a.contains(".silence_2h = ") && a.contains(&silence_id)));
    assert!(actions.iter().any(|a| a.contains(".expire_silence = ")));
    assert!(actions.iter().any(|a| a.contains(".rerun_triage = ")));

    // A member of an allowed user group may press too (asked of Slack).
    slack.add_user_group("SONCALL", &["UONCALL"]);
    let id = socket_server.send_interactive(press("UONCALL", actions::RERUN_TRIAGE, &episode));
    acked(id).await;
    wait_for("the group member's press handled", || async {
        slack.replies().into_iter().find(|m| {
            m.text
                .starts_with("Not re-run: a triage is already running")
        })
    })
    .await;
    assert_eq!(
        slack.requests("chat.postEphemeral").len(),
        1,
        "the group member was not refused"
    );

    // disconnect: a new session is opened, and presses keep working on it.
    socket_server.send_disconnect();
    wait_for("the second session", || async {
        (socket_server.connections() == 2).then_some(())
    })
    .await;
    assert_eq!(slack.requests("apps.connections.open").len(), 2);
    let id = socket_server.send_interactive(press("USTRANGER", actions::RERUN_TRIAGE, &episode));
    acked(id).await;
    wait_for("the second refusal", || async {
        (slack.requests("chat.postEphemeral").len() == 2).then_some(())
    })
    .await;

    // The same press delivered twice (Slack resends what it thinks was not acknowledged):
    // acknowledged twice, handled once.
    let mut again = press("USTRANGER", actions::RERUN_TRIAGE, &episode);
    again["trigger_id"] = json!("13345224609.738474920.8088930838d88f008e0");
    again["actions"][0]["action_ts"] = json!("1765130100.123456");
    for _ in 0..2 {
        let id = socket_server.send_interactive(again.clone());
        acked(id).await;
    }
    wait_for("the third refusal", || async {
        (slack.requests("chat.postEphemeral").len() == 3).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        slack.requests("chat.postEphemeral").len(),
        3,
        "a press delivered again was handled twice"
    );
    assert!(
        socket_server.unexpected().is_empty(),
        "{:?}",
        socket_server.unexpected()
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_is_renewed_before_slack_rotates_it_and_a_refused_token_backs_off() {
    let slack = FakeSlack::start().await;
    // Slack announces 31 s; the client renews 30 s before, so after about 5 s (its minimum).
    let socket_server = FakeSocketMode::start(31).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let http = reqwest::Client::new();

    struct Nothing;
    #[async_trait::async_trait]
    impl cabal_triage::notify::slack::socket::PressHandler for Nothing {
        async fn handle(&self, _press: cabal_triage::notify::slack::socket::ButtonPress) {}
    }
    // No URL configured yet: apps.connections.open says invalid_auth, the client waits.
    let client = SocketMode::new(http.clone(), &slack.api_base_url(), Secret::new("xapp-bad"));
    assert!(client
        .open()
        .await
        .unwrap_err()
        .to_string()
        .contains("check slack.app_token"));
    tokio::spawn(client.run(Arc::new(Nothing), stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(socket_server.connections(), 0);
    slack.set_socket_url(&socket_server.url);
    wait_for("a session after the refusals", || async {
        (socket_server.connections() == 1).then_some(())
    })
    .await;
    let started = Instant::now();
    wait_for("the renewed session", || async {
        (socket_server.connections() == 2).then_some(())
    })
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(10),
        "renewed after {took:?}"
    );
    stop.cancel();
}
