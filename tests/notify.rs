//! Delivering the verdict through the real binary to local fake Slack and PagerDuty servers:
//! the lifecycle of one episode, retries (429 + Retry-After, 5xx, timeouts, `ok:false`), the
//! PagerDuty incident race and 404, a crash between a Slack post and the ledger update, and
//! hostile content.

#[path = "support/fake_ntfy.rs"]
mod fake_ntfy;
#[path = "support/fake_pagerduty.rs"]
mod fake_pagerduty;
#[path = "support/fake_pushover.rs"]
mod fake_pushover;
#[path = "support/fake_slack.rs"]
mod fake_slack;
#[path = "support/notify_service.rs"]
mod service;

use std::time::Duration;

use fake_pagerduty::FakePagerDuty;
use fake_slack::{FakeSlack, Scripted};
use serde_json::json;
use service::{incident_key, payload, wait_for, Service};

fn slack_env(slack: &FakeSlack) -> Vec<(&'static str, String)> {
    vec![
        ("CABAL_TRIAGE_SLACK_API_BASE_URL", slack.api_base_url()),
        ("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-test-token".into()),
        ("CABAL_TRIAGE_SLACK_CHANNEL", "C0TRIAGE".into()),
    ]
}

fn pagerduty_env(pd: &FakePagerDuty) -> Vec<(&'static str, String)> {
    vec![
        ("CABAL_TRIAGE_PAGERDUTY_API_BASE_URL", pd.base_url()),
        ("CABAL_TRIAGE_PAGERDUTY_API_TOKEN", "pd-test-token".into()),
        ("CABAL_TRIAGE_PAGERDUTY_FROM", "oncall@example.com".into()),
    ]
}

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

async fn first_episode(service: &Service, status: &str) -> String {
    let answer = service
        .post_alert(&payload(status, &[("test_sleep_ms", "200")], &[]))
        .await;
    answer["episodes"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_episode_one_message_updated_and_threaded_one_note() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    pd.add_incident("PINC1", &incident_key(), 0);
    let mut env = slack_env(&slack);
    env.extend(pagerduty_env(&pd));
    let service = Service::start(dir.path(), &env);

    let id = first_episode(&service, "firing").await;
    service.settled(&id, 3).await;
    for repeat in 1..=5 {
        let answer = service
            .post_alert(&payload("firing", &[("test_sleep_ms", "200")], &[]))
            .await;
        assert_eq!(answer["episodes"][0]["outcome"], "repeat");
        service.settled(&id, 3 + repeat).await;
    }
    service
        .post_alert(&payload("resolved", &[("test_sleep_ms", "200")], &[]))
        .await;
    let rows = service.settled(&id, 9).await;
    let mut expected = vec![
        ("slack", "started", "delivered"),
        ("slack", "verdict", "delivered"),
        ("pagerduty", "verdict", "delivered"),
    ];
    expected.extend([("slack", "repeat", "delivered"); 5]);
    expected.push(("slack", "resolved", "delivered"));
    let mut sorted = rows.clone();
    sorted.sort();
    let mut expected = owned(&expected);
    expected.sort();
    assert_eq!(sorted, expected);

    // Slack: exactly one top-level post, edited with the verdict and on resolve; six replies.
    let posts = slack.requests("chat.postMessage");
    let parents: Vec<_> = posts
        .iter()
        .filter(|r| r.body["thread_ts"].is_null())
        .collect();
    assert_eq!(parents.len(), 1, "{posts:?}");
    let parent = &slack.parents()[0];
    assert_eq!(parent.channel, "C0TRIAGE");
    assert_eq!(
        parent.metadata,
        json!({"event_type": "cabal_triage_episode", "event_payload": {"episode": id}})
    );
    assert_eq!(
        parents[0].body["blocks"][0]["text"]["text"],
        "CabalTriageTest: triage running"
    );
    let updates = slack.requests("chat.update");
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(
        updates[0].body["blocks"][0]["text"]["text"],
        "CabalTriageTest: investigate (low confidence)"
    );
    assert_eq!(
        updates[1].body["blocks"][0]["text"]["text"],
        "CabalTriageTest: RESOLVED: investigate (low confidence)"
    );
    for update in &updates {
        assert_eq!(update.body["ts"], parent.ts.as_str());
        assert!(update.body["blocks"]
            .as_array()
            .is_some_and(|b| !b.is_empty()));
    }
    let replies = slack.replies();
    assert_eq!(replies.len(), 6);
    assert!(replies
        .iter()
        .all(|r| r.thread_ts.as_deref() == Some(parent.ts.as_str())));
    for (index, reply) in replies[..5].iter().enumerate() {
        assert!(
            reply.text.contains(&format!("notification {}", index + 2)),
            "{}",
            reply.text
        );
    }
    assert_eq!(replies[5].text, "Resolved at 2026-11-28T20:30:00Z.");
    for request in slack.all_requests() {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer xoxb-test-token")
        );
    }
    assert_eq!(
        posts[0].content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );

    // PagerDuty: found by incident key over all dates, one note with From; no Events API.
    let notes = pd.notes("PINC1");
    assert_eq!(notes.len(), 1);
    assert!(notes[0].starts_with("cabal-triage: CabalTriageTest: investigate (low confidence)\n"));
    assert!(notes[0].ends_with("]") && notes[0].contains(&format!("[cabal-triage {id} report ")));
    let requests = pd.requests();
    assert!(requests.iter().all(|r| r.path.starts_with("/incidents")));
    let lookup = &requests[0];
    assert_eq!(lookup.query["incident_key"], incident_key());
    assert_eq!(lookup.query["date_range"], "all");
    let post = requests.iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(post.headers["from"], "oncall@example.com");
    assert_eq!(post.body["note"]["content"], notes[0].as_str());
    assert_eq!(post.headers["authorization"], "Token token=pd-test-token");
    assert_eq!(
        post.headers["accept"],
        "application/vnd.pagerduty+json;version=2"
    );

    let episode = service.episode(&id).await;
    assert_eq!(episode["external_refs"]["slack.ts"], parent.ts.as_str());
    assert_eq!(episode["external_refs"]["pagerduty.incident"], "PINC1");
    let metrics = service.metrics().await;
    assert!(
        metrics.contains(
            "cabal_triage_deliveries_total{destination=\"slack\",outcome=\"delivered\"} 8"
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_429_retry_after_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    slack.script(
        "chat.postMessage",
        Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    let service = Service::start(dir.path(), &slack_env(&slack));
    let id = first_episode(&service, "firing").await;
    let rows = service.settled(&id, 2).await;
    assert!(
        rows.iter().all(|(_, _, state)| state == "delivered"),
        "{rows:?}"
    );
    let posts = slack.requests("chat.postMessage");
    assert_eq!(posts.len(), 2);
    let waited = posts[1].at - posts[0].at;
    assert!(
        waited >= Duration::from_millis(1000),
        "retried after {waited:?}"
    );
    assert_eq!(slack.parents().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_5xx_and_ratelimited_ok_false_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    slack.script("chat.postMessage", Scripted::Status(500));
    slack.script("chat.postMessage", Scripted::Status(503));
    slack.script("chat.update", Scripted::OkFalse("ratelimited"));
    let service = Service::start(dir.path(), &slack_env(&slack));
    let id = first_episode(&service, "firing").await;
    let rows = service.settled(&id, 2).await;
    assert!(
        rows.iter().all(|(_, _, state)| state == "delivered"),
        "{rows:?}"
    );
    assert_eq!(slack.requests("chat.postMessage").len(), 3);
    assert_eq!(slack.requests("chat.update").len(), 2);
    assert_eq!(slack.parents().len(), 1);
    let episode = service.episode(&id).await;
    assert_eq!(episode["deliveries"][0]["attempts"], 3);
    let metrics = service.metrics().await;
    assert!(
        metrics
            .contains("cabal_triage_deliveries_total{destination=\"slack\",outcome=\"retry\"} 3"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_timeout_after_the_post_does_not_duplicate_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    // Slack takes the post but answers after the client's 500 ms timeout.
    slack.script(
        "chat.postMessage",
        Scripted::SlowAfterWork(Duration::from_secs(2)),
    );
    let service = Service::start(dir.path(), &slack_env(&slack));
    let id = first_episode(&service, "firing").await;
    let rows = service.settled(&id, 2).await;
    assert!(
        rows.iter().all(|(_, _, state)| state == "delivered"),
        "{rows:?}"
    );
    assert_eq!(slack.parents().len(), 1, "{:?}", slack.messages());
    assert_eq!(slack.requests("chat.postMessage").len(), 1);
    assert!(!slack.requests("conversations.history").is_empty());
    let episode = service.episode(&id).await;
    assert!(episode["deliveries"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("timed out"));
    assert_eq!(
        episode["external_refs"]["slack.ts"],
        slack.parents()[0].ts.as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_ok_false_permanent_codes_fail_with_a_readable_reason() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    slack.script("chat.postMessage", Scripted::OkFalse("channel_not_found"));
    slack.script("chat.postMessage", Scripted::OkFalse("not_in_channel"));
    let service = Service::start(dir.path(), &slack_env(&slack));
    let id = first_episode(&service, "firing").await;
    service.settled(&id, 2).await;
    let episode = service.episode(&id).await;
    let rows = episode["deliveries"].as_array().unwrap();
    assert_eq!(rows[0]["state"], "failed");
    assert_eq!(rows[0]["attempts"], 1, "a permanent error is not retried");
    assert!(rows[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("channel_not_found"));
    assert!(rows[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("channel ID"));
    assert_eq!(rows[1]["state"], "failed");
    assert!(rows[1]["last_error"].as_str().unwrap().contains("/invite"));
    assert_eq!(slack.requests("chat.postMessage").len(), 2);
    let metrics = service.metrics().await;
    assert!(
        metrics
            .contains("cabal_triage_deliveries_total{destination=\"slack\",outcome=\"failed\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_note_waits_for_the_incident_to_appear() {
    let dir = tempfile::tempdir().unwrap();
    let pd = FakePagerDuty::start().await;
    pd.add_incident("PLATE", &incident_key(), 3);
    let service = Service::start(dir.path(), &pagerduty_env(&pd));
    let id = first_episode(&service, "firing").await;
    let rows = service.settled(&id, 1).await;
    assert_eq!(rows, owned(&[("pagerduty", "verdict", "delivered")]));
    let lookups = pd
        .requests()
        .iter()
        .filter(|r| r.path == "/incidents")
        .count();
    assert_eq!(lookups, 4);
    assert_eq!(pd.notes("PLATE").len(), 1);
    let episode = service.episode(&id).await;
    assert_eq!(episode["deliveries"][0]["attempts"], 4);
    assert!(episode["deliveries"][0]["external_ref"]
        .as_str()
        .unwrap()
        .starts_with("PLATE/"));
}

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_404_fails_with_advice_and_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let pd = FakePagerDuty::start().await;
    pd.script("list", fake_pagerduty::Scripted::Status(404));
    let service = Service::start(dir.path(), &pagerduty_env(&pd));
    let id = first_episode(&service, "firing").await;
    service.settled(&id, 1).await;
    let episode = service.episode(&id).await;
    let row = &episode["deliveries"][0];
    assert_eq!(row["state"], "failed");
    assert_eq!(row["attempts"], 1);
    let error = row["last_error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 404") && error.contains("pagerduty.api_base_url"),
        "{error}"
    );
    assert_eq!(pd.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_429_is_retried_and_the_note_is_not_added_twice() {
    let dir = tempfile::tempdir().unwrap();
    let pd = FakePagerDuty::start().await;
    pd.add_incident("PINC2", &incident_key(), 0);
    // The incident lookup is rate limited once (ratelimit-reset: 1 s), then succeeds.
    pd.script(
        "list",
        fake_pagerduty::Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    let service = Service::start(dir.path(), &pagerduty_env(&pd));
    let id = first_episode(&service, "firing").await;
    let rows = service.settled(&id, 1).await;
    assert_eq!(rows, owned(&[("pagerduty", "verdict", "delivered")]));
    assert_eq!(pd.notes("PINC2").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn pagerduty_note_whose_answer_was_lost_is_not_added_again() {
    let dir = tempfile::tempdir().unwrap();
    let pd = FakePagerDuty::start().await;
    pd.add_incident("PINC3", &incident_key(), 0);
    // PagerDuty stores the note but answers after the client's 500 ms timeout.
    pd.script(
        "notes_post",
        fake_pagerduty::Scripted::SlowAfterWork(Duration::from_secs(2)),
    );
    let service = Service::start(dir.path(), &pagerduty_env(&pd));
    let id = first_episode(&service, "firing").await;
    let rows = service.settled(&id, 1).await;
    assert_eq!(rows, owned(&[("pagerduty", "verdict", "delivered")]));
    assert_eq!(
        pd.notes("PINC3").len(),
        1,
        "the retry found the note by its marker"
    );
    let posts = pd.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1);
    let episode = service.episode(&id).await;
    assert!(episode["deliveries"][0]["external_ref"]
        .as_str()
        .unwrap()
        .contains("note already present"));
}

/// Starts the service with the `slack-after-post` failpoint, sends one alert, and kills the
/// service once Slack has the episode's message and before the ledger knows its `ts`.
async fn killed_after_the_post(slack: &FakeSlack) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut env = slack_env(slack);
    env.push(("CABAL_TRIAGE_TEST_FAILPOINT", "slack-after-post".into()));
    let mut service = Service::start(dir.path(), &env);
    let id = first_episode(&service, "firing").await;
    wait_for("the failpoint", || {
        service
            .log_text()
            .contains("failpoint slack-after-post reached")
    })
    .await;
    service.kill();
    assert_eq!(slack.requests("chat.postMessage").len(), 1);
    assert_eq!(slack.parents().len(), 1);
    (dir, id)
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_between_slack_post_and_ledger_update_then_restarted_posts_once() {
    let slack = FakeSlack::start().await;
    let (dir, id) = killed_after_the_post(&slack).await;

    let service = Service::start(dir.path(), &slack_env(&slack));
    let rows = service.settled(&id, 2).await;
    assert_eq!(
        rows,
        owned(&[
            ("slack", "started", "delivered"),
            ("slack", "verdict", "delivered")
        ])
    );
    assert_eq!(slack.parents().len(), 1, "{:?}", slack.messages());
    assert_eq!(slack.requests("chat.postMessage").len(), 1);
    assert_eq!(slack.requests("conversations.history").len(), 1);
    let ts = slack.parents()[0].ts.clone();
    let episode = service.episode(&id).await;
    assert_eq!(episode["external_refs"]["slack.ts"], ts.as_str());
    assert_eq!(episode["deliveries"][0]["attempts"], 2);
    // The verdict edited the one message.
    let updates = slack.requests("chat.update");
    assert!(updates.iter().all(|u| u.body["ts"] == ts.as_str()));
    assert_eq!(
        slack.parents()[0].blocks[0]["text"]["text"],
        "CabalTriageTest: investigate (low confidence)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_post_in_a_busy_channel_finds_its_message_pages_back() {
    // As above, but 450 other messages arrive before the restart: the bot's message is on the
    // third page of conversations.history (200 per page), and is still found, not posted again.
    let slack = FakeSlack::start().await;
    let (dir, id) = killed_after_the_post(&slack).await;
    slack.add_others("C0TRIAGE", 450, Duration::ZERO);

    let service = Service::start(dir.path(), &slack_env(&slack));
    let rows = service.settled(&id, 2).await;
    assert_eq!(
        rows,
        owned(&[
            ("slack", "started", "delivered"),
            ("slack", "verdict", "delivered")
        ])
    );
    assert_eq!(slack.requests("chat.postMessage").len(), 1, "posted once");
    let lookups = slack.requests("conversations.history");
    assert_eq!(lookups.len(), 3, "{lookups:?}");
    assert_eq!(lookups[0].body["limit"], "200");
    assert_eq!(lookups[2].body["cursor"], "fake-cursor-400");
    let ours: Vec<_> = slack
        .parents()
        .into_iter()
        .filter(|m| !m.metadata.is_null())
        .collect();
    assert_eq!(ours.len(), 1);
    let episode = service.episode(&id).await;
    assert_eq!(episode["external_refs"]["slack.ts"], ours[0].ts.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_the_post_then_a_flood_looks_only_around_the_lost_attempt() {
    // The row waits behind a backlog while the channel floods: 2,500 messages (more than the
    // lookup's 10 pages of 200) come after the lost attempt, stamped 5 minutes later. The
    // lookup asks only for the lost attempt's lease, give or take a minute (`oldest`,
    // `latest`), so one page finds the message and nothing is posted again.
    let slack = FakeSlack::start().await;
    let (dir, id) = killed_after_the_post(&slack).await;
    slack.add_others("C0TRIAGE", 2_500, Duration::from_secs(300));

    let service = Service::start(dir.path(), &slack_env(&slack));
    service.settled(&id, 2).await;
    assert_eq!(slack.requests("chat.postMessage").len(), 1, "posted once");
    let lookups = slack.requests("conversations.history");
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    let window = |name: &str| -> f64 { lookups[0].body[name].as_str().unwrap().parse().unwrap() };
    let ts: f64 = slack.parents()[0].ts.parse().unwrap();
    assert!(
        window("oldest") < ts && ts < window("latest"),
        "{lookups:?}"
    );
    assert!(window("latest") - window("oldest") < 200.0, "{lookups:?}");
    let episode = service.episode(&id).await;
    assert_eq!(
        episode["external_refs"]["slack.ts"],
        slack.parents()[0].ts.as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_after_a_thread_reply_then_restarted_replies_once() {
    // The resolution's reply is posted, then the process dies before recording it. The row
    // comes back in doubt; the restarted service finds the reply in the thread by the row's
    // marker (`conversations.replies`) and does not post it again.
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let mut env = slack_env(&slack);
    env.push(("CABAL_TRIAGE_TEST_FAILPOINT", "slack-after-reply".into()));
    let mut service = Service::start(dir.path(), &env);
    let id = first_episode(&service, "firing").await;
    service.settled(&id, 2).await;
    service
        .post_alert(&payload("resolved", &[("test_sleep_ms", "200")], &[]))
        .await;
    wait_for("the failpoint", || {
        service
            .log_text()
            .contains("failpoint slack-after-reply reached")
    })
    .await;
    service.kill();
    assert_eq!(slack.replies().len(), 1);

    let service = Service::start(dir.path(), &slack_env(&slack));
    let rows = service.settled(&id, 3).await;
    assert_eq!(
        rows,
        owned(&[
            ("slack", "started", "delivered"),
            ("slack", "verdict", "delivered"),
            ("slack", "resolved", "delivered")
        ])
    );
    let replies = slack.replies();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0].metadata["event_type"], "cabal_triage_reply");
    assert_eq!(replies[0].metadata["event_payload"]["episode"], id.as_str());
    let parent = slack.parents()[0].ts.clone();
    let lookups = slack.requests("conversations.replies");
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert_eq!(lookups[0].body["ts"], parent.as_str());
    assert!(slack.requests("conversations.history").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_that_took_most_of_the_lease_hands_the_row_back_unsent() {
    // The first claim returns with a quarter of its 4 s lease left (failpoint: a slow ledger).
    // Another replica could take the row over mid-attempt and post again, so nothing is sent
    // on that claim: the row goes back and the next claim posts it, once.
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let mut env = slack_env(&slack);
    env.push(("CABAL_TRIAGE_TEST_FAILPOINT", "outbox-slow-claim".into()));
    env.push(("CABAL_TRIAGE__DELIVERY__LEASE_SECS", "4".into()));
    env.push(("CABAL_TRIAGE__DELIVERY__HTTP_TIMEOUT_MS", "1000".into()));
    let service = Service::start(dir.path(), &env);
    let id = first_episode(&service, "firing").await;
    let rows = service.settled(&id, 2).await;
    assert_eq!(
        rows,
        owned(&[
            ("slack", "started", "delivered"),
            ("slack", "verdict", "delivered")
        ])
    );
    assert!(service
        .log_text()
        .contains("failpoint outbox-slow-claim reached"));
    assert_eq!(slack.parents().len(), 1, "{:?}", slack.messages());
    assert_eq!(slack.requests("chat.postMessage").len(), 1);
    let episode = service.episode(&id).await;
    let started = &episode["deliveries"][0];
    // The handed-back claim is not counted, and left nothing in doubt: no lookup.
    assert_eq!(started["attempts"], 1, "{started}");
    assert!(slack.requests("conversations.history").is_empty());
    let error = started["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not sent") && error.contains("of the 4 s delivery lease"),
        "{started}"
    );
    assert!(service.log_text().contains("delivery not attempted"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_content_is_sent_inert_and_within_limits() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let service = Service::start(dir.path(), &slack_env(&slack));
    let hostile = "<!channel> click <http://evil|here>";
    let long_line = "x".repeat(100 * 1024);
    let answer = service
        .post_alert(&payload(
            "firing",
            &[],
            &[
                ("summary", hostile),
                ("test_sample_1", hostile),
                ("test_sample_2", &long_line),
                ("runbook_url", "https://x.example/|<!channel>"),
            ],
        ))
        .await;
    let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    service.settled(&id, 2).await;
    let update = slack
        .requests("chat.update")
        .pop()
        .expect("the verdict edit");
    let body = &update.body;
    let blocks = body["blocks"].as_array().unwrap();
    let marker = "… [truncated]";
    let kept = "x".repeat(400 - marker.chars().count());
    assert_eq!(
        blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .split_once("\n*Alert:* ")
            .unwrap()
            .1,
        "&lt;!channel&gt; click &lt;http://evil|here&gt;"
    );
    let samples = blocks
        .iter()
        .find(|b| {
            b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("*Samples*"))
        })
        .expect("samples block");
    assert_eq!(
        samples,
        &json!({"type": "section", "text": {"type": "mrkdwn", "verbatim": true, "text":
            format!("*Samples*\n• smtp-out: `&lt;!channel&gt; click &lt;http://evil|here&gt;`\n• smtp-out: `{kept}{marker}`")}})
    );
    let context = blocks.last().unwrap();
    assert_eq!(
        context,
        &json!({"type": "context", "elements": [{"type": "mrkdwn", "verbatim": true, "text":
            format!("<https://triage.example/api/v1/episodes/{id}|Episode> · <http://127.0.0.1:9090/graph|Source> · episode `{id}`")}]})
    );
    // Nothing Slack would act on, no link_names / parse, and well within the limits.
    let sent = body.to_string();
    assert!(!sent.contains("<!channel>") && !sent.contains("<http://evil"));
    assert!(body.get("link_names").is_none() && body.get("parse").is_none());
    assert!(blocks.len() <= 50);
    assert!(sent.len() < 13_000, "{} bytes", sent.len());
    assert!(body["text"].as_str().unwrap().len() < 3000);
}

#[tokio::test(flavor = "multi_thread")]
async fn incoming_webhook_mode_posts_once_per_finished_triage() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let env = vec![
        ("CABAL_TRIAGE__SLACK__MODE", "webhook".to_string()),
        ("CABAL_TRIAGE_SLACK_WEBHOOK_URL", slack.webhook_url()),
    ];
    let service = Service::start(dir.path(), &env);
    let id = first_episode(&service, "firing").await;
    let rows = service.settled(&id, 1).await;
    assert_eq!(rows, owned(&[("slack-webhook", "verdict", "delivered")]));
    service.post_alert(&payload("resolved", &[], &[])).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let posts = slack.requests("incoming-webhook");
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].body["blocks"][0]["text"]["text"],
        "CabalTriageTest: investigate (low confidence)"
    );
    assert!(
        !service.log_text().contains("XyZhookTOKEN123"),
        "the webhook URL is a secret"
    );
}

/// Rows this process writes wake the outbox: with a poll of a minute, the episode's message,
/// its verdict edit and a repeat's reply still go out within seconds (on the poll alone the
/// first would wait up to a minute).
#[tokio::test(flavor = "multi_thread")]
async fn rows_written_here_are_sent_without_waiting_for_the_poll() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let mut env = slack_env(&slack);
    env.push(("CABAL_TRIAGE__DELIVERY__POLL_INTERVAL_MS", "60000".into()));
    let service = Service::start(dir.path(), &env);
    // Let the outbox's first claim (at start) pass, so that only a wake can find the rows.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let id = first_episode(&service, "firing").await;
    service.settled(&id, 2).await;
    service
        .post_alert(&payload("firing", &[("test_sleep_ms", "200")], &[]))
        .await;
    let rows = service.settled(&id, 3).await;
    assert!(
        rows.iter().all(|(_, _, state)| state == "delivered"),
        "{rows:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}: the rows waited for the poll",
        started.elapsed()
    );
    assert_eq!(slack.requests("chat.update").len(), 1);
    assert_eq!(slack.replies().len(), 1);
}

/// A triage that ends failed is told to PagerDuty too: one note saying what failed and what is
/// known, not added twice when its answer is lost; Slack's message says it as before.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_triage_adds_one_pagerduty_note() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    pd.add_incident("PINC1", &incident_key(), 0);
    // The first note's answer is lost: the retry must find it and not add a second.
    pd.script(
        "notes_post",
        fake_pagerduty::Scripted::SlowAfterWork(Duration::from_secs(2)),
    );
    let mut env = slack_env(&slack);
    env.extend(pagerduty_env(&pd));
    env.push(("CABAL_TRIAGE__WORKER__MAX_ATTEMPTS", "1".into()));
    let service = Service::start(dir.path(), &env);
    let answer = service
        .post_alert(&payload(
            "firing",
            &[("test_fail_attempts", "9")],
            &[("summary", "deferred mail is piling up")],
        ))
        .await;
    let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    let mut rows = service.settled(&id, 3).await;
    rows.sort();
    assert_eq!(
        rows,
        owned(&[
            ("pagerduty", "triage_failed", "delivered"),
            ("slack", "started", "delivered"),
            ("slack", "triage_failed", "delivered"),
        ])
    );
    let notes = pd.notes("PINC1");
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = &notes[0];
    assert!(
        note.starts_with("cabal-triage: CabalTriageTest: triage failed\n"),
        "{note}"
    );
    assert!(
        note.contains("Triage failed: attempt 1 of 1: test failure on attempt 1"),
        "{note}"
    );
    assert!(note.contains("Alert: deferred mail is piling up"), "{note}");
    assert!(
        note.contains(&format!("[cabal-triage {id} failure ")),
        "{note}"
    );
}

/// An alert without a runbook posts one message (summary, description, labels, "no automatic
/// diagnosis"), updated on resolution; repeats add nothing; PagerDuty hears nothing. With
/// `notify.unknown_alerts = "ignore"`, nothing is posted.
#[tokio::test(flavor = "multi_thread")]
async fn an_alert_without_a_runbook_gets_one_message_updated_on_resolve() {
    let unknown = |status: &str| {
        let mut body = payload(
            status,
            &[("alertname", "DiskAlmostFull"), ("instance", "imap-1")],
            &[
                ("summary", "disk 91% full"),
                ("description", "the /var volume of imap-1 is 91% full"),
            ],
        );
        body["groupLabels"]["alertname"] = json!("DiskAlmostFull");
        body
    };
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let pd = FakePagerDuty::start().await;
    pd.add_incident("PINC1", &incident_key(), 0);
    let mut env = slack_env(&slack);
    env.extend(pagerduty_env(&pd));
    let service = Service::start(dir.path(), &env);
    let answer = service.post_alert(&unknown("firing")).await;
    assert_eq!(answer["episodes"][0]["state"], "no_runbook");
    let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    service.settled(&id, 1).await;
    service.post_alert(&unknown("firing")).await;
    service.post_alert(&unknown("resolved")).await;
    let rows = service.settled(&id, 2).await;
    assert_eq!(
        rows,
        owned(&[
            ("slack", "started", "delivered"),
            ("slack", "resolved", "delivered")
        ])
    );
    let parents = slack.parents();
    assert_eq!(parents.len(), 1);
    let posted = &slack.requests("chat.postMessage")[0].body;
    let blocks = posted["blocks"].to_string();
    assert_eq!(
        posted["blocks"][0]["text"]["text"],
        "DiskAlmostFull: no runbook"
    );
    for expected in [
        "No automatic diagnosis for this alert.",
        "disk 91% full",
        "the /var volume of imap-1 is 91% full",
        "instance=imap-1",
    ] {
        assert!(blocks.contains(expected), "{expected} missing: {blocks}");
    }
    let updates = slack.requests("chat.update");
    assert_eq!(updates.len(), 1);
    assert_eq!(
        updates[0].body["blocks"][0]["text"]["text"],
        "DiskAlmostFull: RESOLVED: no runbook"
    );
    assert_eq!(slack.replies().len(), 1, "the resolution's reply only");
    assert!(pd.requests().is_empty());

    let dir = tempfile::tempdir().unwrap();
    let quiet_slack = FakeSlack::start().await;
    let mut env = slack_env(&quiet_slack);
    env.push(("CABAL_TRIAGE_UNKNOWN_ALERTS", "ignore".into()));
    let service = Service::start(dir.path(), &env);
    let answer = service.post_alert(&unknown("firing")).await;
    let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(service.deliveries(&id).await.is_empty());
    assert!(quiet_slack.all_requests().is_empty());
}

fn ntfy_env(ntfy: &fake_ntfy::FakeNtfy) -> Vec<(&'static str, String)> {
    vec![
        ("CABAL_TRIAGE_NTFY_BASE_URL", ntfy.base_url()),
        ("CABAL_TRIAGE_NTFY_TOPIC", "cabal-alerts".into()),
        ("CABAL_TRIAGE_NTFY_TOKEN", "tk_testtoken".into()),
    ]
}

fn pushover_env(pushover: &fake_pushover::FakePushover) -> Vec<(&'static str, String)> {
    vec![
        ("CABAL_TRIAGE_PUSHOVER_API_BASE_URL", pushover.base_url()),
        ("CABAL_TRIAGE_PUSHOVER_APP_TOKEN", "apptoken123".into()),
        ("CABAL_TRIAGE_PUSHOVER_USER_KEY", "userkey456".into()),
    ]
}

const RUNBOOK: (&str, &str) = ("runbook_url", "https://runbooks.example/cabal/deferred");

/// ntfy: one notification for the verdict and one for the resolution, each exactly once
/// through a 429 with Retry-After, a 5xx and a publish whose answer was lost (found again by
/// polling the topic for the row's tag); priority by severity, the token as a bearer, `Click`
/// to the episode, the runbook as a `view` action, ntfy's ids stored.
#[tokio::test(flavor = "multi_thread")]
async fn ntfy_gets_the_verdict_and_the_resolution_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let ntfy = fake_ntfy::FakeNtfy::start().await;
    ntfy.script(
        "publish",
        fake_ntfy::Scripted::RateLimited {
            retry_after_secs: 1,
        },
    );
    ntfy.script("publish", fake_ntfy::Scripted::Status(502));
    ntfy.script(
        "publish",
        fake_ntfy::Scripted::SlowAfterWork(Duration::from_secs(2)),
    );
    let service = Service::start(dir.path(), &ntfy_env(&ntfy));
    let answer = service
        .post_alert(&payload("firing", &[("test_sleep_ms", "100")], &[RUNBOOK]))
        .await;
    let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    service.settled(&id, 1).await;
    let messages = ntfy.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let verdict = &messages[0];
    assert_eq!(verdict.topic, "cabal-alerts");
    assert_eq!(
        verdict.title,
        "CabalTriageTest: investigate (low confidence)"
    );
    assert_eq!(verdict.priority, 5);
    assert!(
        verdict.message.contains("test triage, attempt 1"),
        "{}",
        verdict.message
    );
    assert!(verdict.tags.contains(&"rotating_light".to_string()));
    let marker = verdict
        .tags
        .iter()
        .find(|t| t.starts_with(&format!("ct-{id}-")))
        .expect("the row's tag")
        .clone();
    assert_eq!(
        verdict.click.as_deref(),
        Some(format!("https://triage.example/api/v1/episodes/{id}").as_str())
    );
    assert_eq!(verdict.actions[0]["action"], "view");
    assert_eq!(verdict.actions[0]["url"], RUNBOOK.1);
    let requests = ntfy.requests();
    assert!(requests
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer tk_testtoken")));
    let publishes: Vec<_> = requests.iter().filter(|r| r.path == "/").collect();
    assert_eq!(
        publishes.len(),
        3,
        "429, 502, the lost answer (then found, not published): {requests:?}"
    );
    assert!(publishes
        .iter()
        .all(|p| p.method == "POST" && p.body["topic"] == "cabal-alerts"));
    let polls: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/json"))
        .collect();
    assert!(
        !polls.is_empty(),
        "the lost answer was looked for: {requests:?}"
    );
    assert!(polls
        .iter()
        .all(|p| p.query["poll"] == "1" && p.query["since"].parse::<i64>().is_ok()));
    let episode = service.episode(&id).await;
    let row = episode["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "ntfy")
        .unwrap()
        .clone();
    assert_eq!(row["external_ref"], verdict.id.as_str(), "{row}");

    service
        .post_alert(&payload(
            "resolved",
            &[("test_sleep_ms", "100")],
            &[RUNBOOK],
        ))
        .await;
    let rows = service.settled(&id, 2).await;
    assert_eq!(
        rows,
        owned(&[
            ("ntfy", "verdict", "delivered"),
            ("ntfy", "resolved", "delivered")
        ])
    );
    let messages = ntfy.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].priority, 2);
    assert!(messages[1].title.contains("RESOLVED"));
    assert!(messages[1].tags.contains(&"white_check_mark".to_string()));
    assert!(!messages[1].tags.contains(&marker), "each row its own tag");
}

/// Killed after ntfy accepted the publish and before the ledger knew: the restarted service
/// polls the topic, finds the message by its tag, and does not publish again.
#[tokio::test(flavor = "multi_thread")]
async fn killed_between_ntfy_publish_and_ledger_update_then_restarted_publishes_once() {
    let dir = tempfile::tempdir().unwrap();
    let ntfy = fake_ntfy::FakeNtfy::start().await;
    let mut env = ntfy_env(&ntfy);
    env.push(("CABAL_TRIAGE_TEST_FAILPOINT", "ntfy-after-publish".into()));
    let mut service = Service::start(dir.path(), &env);
    let id = first_episode(&service, "firing").await;
    wait_for("the failpoint", || {
        service
            .log_text()
            .contains("failpoint ntfy-after-publish reached")
    })
    .await;
    service.kill();
    assert_eq!(ntfy.messages().len(), 1);

    let service = Service::start(dir.path(), &ntfy_env(&ntfy));
    let rows = service.settled(&id, 1).await;
    assert_eq!(rows, owned(&[("ntfy", "verdict", "delivered")]));
    assert_eq!(ntfy.messages().len(), 1, "{:?}", ntfy.messages());
    assert_eq!(
        ntfy.requests().iter().filter(|r| r.path == "/").count(),
        1,
        "published once"
    );
    assert!(ntfy.requests().iter().any(|r| r.path.ends_with("/json")));
}

/// Pushover: a critical verdict is paged once, within Pushover's limits, priority 1, the runbook
/// as `url`, after a 500 and a 429 (Pushover answered: certainly not sent, so sent again); a warning is
/// not paged. A message whose answer was lost is not sent again (Pushover cannot be asked) and
/// the row says why.
#[tokio::test(flavor = "multi_thread")]
async fn pushover_pages_critical_verdicts_once_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let pushover = fake_pushover::FakePushover::start().await;
    pushover.script(fake_pushover::Scripted::Status(500));
    pushover.script(fake_pushover::Scripted::RateLimited);
    let service = Service::start(dir.path(), &pushover_env(&pushover));
    let long_summary = "x".repeat(5000);
    let answer = service
        .post_alert(&payload(
            "firing",
            &[("test_sleep_ms", "100")],
            &[RUNBOOK, ("summary", long_summary.as_str())],
        ))
        .await;
    let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    let rows = service.settled(&id, 1).await;
    assert_eq!(rows, owned(&[("pushover", "verdict", "delivered")]));
    let accepted = pushover.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        pushover.requests().len(),
        3,
        "the 500, the 429, then the message"
    );
    let page = &accepted[0];
    assert_eq!(page["priority"], "1");
    assert_eq!(page["url"], RUNBOOK.1);
    assert_eq!(
        page["title"],
        "CabalTriageTest: investigate (low confidence)"
    );
    assert!(page["message"].chars().count() <= 1024);
    let episode = service.episode(&id).await;
    assert!(episode["deliveries"][0]["external_ref"]
        .as_str()
        .is_some_and(|r| r.starts_with("fake-request-")));

    // A warning is not paged.
    let mut warning = payload("firing", &[("test_sleep_ms", "100")], &[]);
    warning["alerts"][0]["labels"]["severity"] = json!("warning");
    warning["alerts"][0]["fingerprint"] = json!("00000000000warn1");
    let answer = service.post_alert(&warning).await;
    let warning_id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        service.settled(&warning_id, 1).await,
        owned(&[("pushover", "verdict", "skipped")])
    );

    // The answer is lost after Pushover took the message: not sent again.
    pushover.script(fake_pushover::Scripted::SlowAfterWork(Duration::from_secs(
        2,
    )));
    let mut lost = payload("firing", &[("test_sleep_ms", "100")], &[]);
    lost["alerts"][0]["fingerprint"] = json!("00000000000lost1");
    let answer = service.post_alert(&lost).await;
    let lost_id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        service.settled(&lost_id, 1).await,
        owned(&[("pushover", "verdict", "skipped")])
    );
    assert_eq!(pushover.accepted().len(), 2, "paged once, not twice");
    let episode = service.episode(&lost_id).await;
    assert!(episode["deliveries"][0]["last_error"]
        .as_str()
        .is_some_and(|e| e.contains("may have reached Pushover")));
}

/// SIGHUP puts rotated destination tokens in use without a restart: the Slack bot token and the
/// ntfy token are read from their `*_file`s; after the files change and the service is hung up,
/// the resolution of the same episode goes out with the new tokens, and the log line names what
/// was rotated.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_puts_rotated_destination_tokens_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let slack = FakeSlack::start().await;
    let ntfy = fake_ntfy::FakeNtfy::start().await;
    ntfy.accept_token("tk_beforerotation0123");
    let slack_file = dir.path().join("slack-bot-token");
    let ntfy_file = dir.path().join("ntfy-token");
    std::fs::write(&slack_file, "xoxb-before-rotation-0123\n").unwrap();
    std::fs::write(&ntfy_file, "tk_beforerotation0123\n").unwrap();
    for file in [&slack_file, &ntfy_file] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let env = vec![
        ("CABAL_TRIAGE_SLACK_API_BASE_URL", slack.api_base_url()),
        ("CABAL_TRIAGE_SLACK_CHANNEL", "C0TRIAGE".into()),
        (
            "CABAL_TRIAGE__SLACK__BOT_TOKEN_FILE",
            slack_file.display().to_string(),
        ),
        ("CABAL_TRIAGE_NTFY_BASE_URL", ntfy.base_url()),
        ("CABAL_TRIAGE_NTFY_TOPIC", "cabal-alerts".into()),
        (
            "CABAL_TRIAGE__NTFY__TOKEN_FILE",
            ntfy_file.display().to_string(),
        ),
    ];
    let service = Service::start(dir.path(), &env);
    let answer = service
        .post_alert(&payload("firing", &[("test_sleep_ms", "100")], &[]))
        .await;
    let id = answer["episodes"][0]["id"].as_str().unwrap().to_string();
    wait_for("the verdict in Slack and ntfy", || {
        !slack.requests("chat.update").is_empty() && ntfy.messages().len() == 1
    })
    .await;
    let slack_before = slack.all_requests().len();
    let ntfy_before = ntfy.requests().len();
    assert!(slack
        .all_requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer xoxb-before-rotation-0123")));
    assert!(ntfy
        .requests()
        .iter()
        .all(|r| r.authorization.as_deref() == Some("Bearer tk_beforerotation0123")));

    std::fs::write(&slack_file, "xoxb-after-rotation-4567\n").unwrap();
    std::fs::write(&ntfy_file, "tk_afterrotation4567\n").unwrap();
    ntfy.accept_token("tk_afterrotation4567");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &service.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    wait_for("the rotation's log line", || {
        service
            .log_text()
            .contains("rotated=slack.bot_token,ntfy.token")
    })
    .await;

    service.post_alert(&payload("resolved", &[], &[])).await;
    wait_for("the resolution in Slack and ntfy", || {
        slack.all_requests().len() > slack_before && ntfy.messages().len() == 2
    })
    .await;
    let slack_after = &slack.all_requests()[slack_before..];
    assert!(
        slack_after
            .iter()
            .all(|r| r.authorization.as_deref() == Some("Bearer xoxb-after-rotation-4567")),
        "{slack_after:?}"
    );
    let ntfy_after = &ntfy.requests()[ntfy_before..];
    assert!(
        !ntfy_after.is_empty()
            && ntfy_after
                .iter()
                .all(|r| r.authorization.as_deref() == Some("Bearer tk_afterrotation4567")),
        "{ntfy_after:?}"
    );
    assert_eq!(service.episode(&id).await["status"], "resolved");
    let log = service.log_text();
    assert!(!log.contains("after-rotation"), "a secret reached the log");
}
