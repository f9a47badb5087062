//! End to end against the real sender: Debian's Prometheus Alertmanager, configured like
//! Cabalmail's (grouped by alertname and severity, bearer token, `send_resolved`, PagerDuty in the
//! same route), pushes alerts to the real `cabal-triage` binary, whose annotations land in the
//! local fake Slack and PagerDuty. Everything listens on 127.0.0.1.
//!
//! The scenarios use the `CabalTriageTest` alert (feature `test-runbook`), defined once in
//! [`TEST_ALERT`]; a scenario over another runbook defines its own [`AlertSpec`] and environment.
//! The greylist storm ([`GREYLIST_STORM`], the real `SendmailDeferredSpike` runbook) adds moto
//! seeded with the storm, the fake ECS control plane, ECS Exec endpoint and agent, all behind one
//! loopback AWS endpoint (`support/aws_front.rs`), and a fake DNS server for the blocklists.
//! `assert_one_annotation` applies unchanged. One more scenario runs Cabalmail's own
//! configuration (deploy/alertmanager/cabalmail/) with a fake alert_sink beside cabal-triage.

#[path = "support/alertmanager.rs"]
mod alertmanager;
#[path = "support/fake_agent.rs"]
mod fake_agent;
#[path = "support/fake_ecs.rs"]
mod fake_ecs;
#[allow(dead_code)]
#[path = "support/fake_pagerduty.rs"]
mod fake_pagerduty;
#[allow(dead_code)]
#[path = "support/fake_slack.rs"]
mod fake_slack;
#[allow(dead_code)]
#[path = "support/notify_service.rs"]
mod service;
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alertmanager::{Alertmanager, ClusterMember, Receivers, Timing};
use fake_pagerduty::FakePagerDuty;
use fake_slack::FakeSlack;
use serde_json::{json, Value};
use service::{Service, TOKEN};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One alert as Prometheus would push it: the only place a scenario names its alert.
struct AlertSpec {
    alertname: &'static str,
    severity: &'static str,
    labels: &'static [(&'static str, &'static str)],
    annotations: &'static [(&'static str, &'static str)],
}

/// The test runbook's alert: triaged without AWS, slow enough (200 ms) to overlap re-sends.
const TEST_ALERT: AlertSpec = AlertSpec {
    alertname: "CabalTriageTest",
    severity: "critical",
    labels: &[("test_sleep_ms", "200"), ("job", "cabal-triage-e2e")],
    annotations: &[
        ("summary", "end-to-end test alert"),
        ("runbook_url", "https://example.invalid/runbooks/test"),
    ],
};

impl AlertSpec {
    /// `POST /api/v2/alerts` body; `ends_at` set (in the past) resolves the alert.
    fn alerts(&self, starts_at: &str, ends_at: Option<&str>) -> Value {
        let mut labels = json!({"alertname": self.alertname, "severity": self.severity});
        for (name, value) in self.labels {
            labels[*name] = json!(value);
        }
        let mut annotations = json!({});
        for (name, value) in self.annotations {
            annotations[*name] = json!(value);
        }
        let mut alert = json!({
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts_at,
            "generatorURL": "http://127.0.0.1:9/graph",
        });
        if let Some(ends_at) = ends_at {
            alert["endsAt"] = json!(ends_at);
        }
        json!([alert])
    }

    /// The group key Alertmanager builds for this alert on the root route grouped by
    /// alertname and severity.
    fn group_key(&self) -> String {
        format!(
            "{{}}:{{alertname=\"{}\", severity=\"{}\"}}",
            self.alertname, self.severity
        )
    }
}

const ROUTING_KEY: &str = "R0UT1NGKEY0123456789abcdef0123456";

fn fast_timing() -> Timing {
    Timing {
        group_wait: Duration::from_millis(500),
        group_interval: Duration::from_secs(1),
        repeat_interval: Duration::from_secs(2),
    }
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc().format(&Rfc3339).unwrap()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// cabal-triage with Slack and PagerDuty pointed at the fakes, on `listen`, plus `extra` env.
fn start_service(
    dir: &Path,
    slack: &FakeSlack,
    pd: &FakePagerDuty,
    listen: &str,
    extra: &[(&str, String)],
) -> Service {
    let mut env = vec![
        ("CABAL_TRIAGE_LISTEN", listen.to_string()),
        ("CABAL_TRIAGE_SLACK_API_BASE_URL", slack.api_base_url()),
        ("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-e2e-token".into()),
        ("CABAL_TRIAGE_SLACK_CHANNEL", "C0E2E".into()),
        ("CABAL_TRIAGE_PAGERDUTY_API_BASE_URL", pd.base_url()),
        ("CABAL_TRIAGE_PAGERDUTY_API_TOKEN", "pd-e2e-token".into()),
        ("CABAL_TRIAGE_PAGERDUTY_FROM", "oncall@example.com".into()),
    ];
    env.extend(extra.iter().cloned());
    Service::start(dir, &env)
}

fn receivers(service_addr: &str, pd: &FakePagerDuty) -> Receivers {
    Receivers {
        webhook_url: format!("http://{service_addr}/api/v1/alerts"),
        bearer_token: TOKEN.into(),
        pagerduty_events_url: pd.events_url(),
        pagerduty_routing_key: ROUTING_KEY.into(),
    }
}

async fn episodes_named(service_addr: &str, alertname: &str) -> Vec<Value> {
    let listed: Value = reqwest::Client::new()
        .get(format!("http://{service_addr}/api/v1/episodes?limit=1000"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["episodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["alertname"] == alertname)
        .cloned()
        .collect()
}

/// Polls `probe` every 100 ms until it yields a value, failing with `what` after `within`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The one episode of `alert`, once the service holds exactly one and its deliveries settled.
async fn the_episode(service: &Service, alert: &AlertSpec, deliveries: usize) -> Value {
    let addr = &service.addr.to_string();
    let id = eventually("the episode", Duration::from_secs(30), || async move {
        let episodes = episodes_named(addr, alert.alertname).await;
        episodes
            .first()
            .map(|e| e["id"].as_str().unwrap().to_string())
    })
    .await;
    service.settled(&id, deliveries).await;
    let episodes = episodes_named(addr, alert.alertname).await;
    assert_eq!(episodes.len(), 1, "one episode per alert: {episodes:?}");
    service.episode(&id).await
}

/// What every scenario checks at the end: one triage, one Slack message (edited, never
/// re-posted), one PagerDuty note on the incident Alertmanager opened with its own dedup key.
fn assert_one_annotation(
    episode: &Value,
    alert: &AlertSpec,
    slack: &FakeSlack,
    pd: &FakePagerDuty,
    service: &Service,
) {
    let log = service.log_text();
    assert_eq!(
        episode["job"]["attempts"], 1,
        "triaged once: {episode}\n{log}"
    );
    assert_eq!(episode["group_key"], alert.group_key().as_str());

    let parents = slack.parents();
    assert_eq!(parents.len(), 1, "one top-level Slack message: {parents:?}");
    let parent = &parents[0];
    assert_eq!(episode["external_refs"]["slack.ts"], parent.ts.as_str());
    let verdict_updates: Vec<_> = slack
        .requests("chat.update")
        .into_iter()
        .filter(|u| {
            u.body["blocks"][0]["text"]["text"]
                .as_str()
                .is_some_and(|t| !t.contains("RESOLVED"))
        })
        .collect();
    assert_eq!(verdict_updates.len(), 1, "one verdict edit");
    assert_eq!(verdict_updates[0].body["ts"], parent.ts.as_str());
    assert!(slack
        .replies()
        .iter()
        .all(|r| r.thread_ts.as_deref() == Some(parent.ts.as_str())));

    // PagerDuty: the incident Alertmanager's Events API trigger opened is the one annotated.
    let dedup_key = sha256_hex(&alert.group_key());
    let triggers: Vec<Value> = pd
        .events()
        .into_iter()
        .filter(|e| e["event_action"] == "trigger")
        .collect();
    assert!(!triggers.is_empty(), "Alertmanager paged");
    assert!(
        triggers
            .iter()
            .all(|e| e["dedup_key"] == dedup_key.as_str()),
        "Alertmanager's dedup key is SHA-256 of the group key: {triggers:?}"
    );
    assert_eq!(episode["pagerduty_dedup_key"], dedup_key.as_str());
    let incidents = pd.incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let (incident, key) = &incidents[0];
    assert_eq!(key, &dedup_key);
    assert_eq!(
        episode["external_refs"]["pagerduty.incident"],
        incident.as_str()
    );
    let notes = pd.notes(incident);
    assert_eq!(notes.len(), 1, "one note: {notes:?}");
    assert!(notes[0].contains(alert.alertname), "{}", notes[0]);
}

/// Starts the fakes and the service on a fixed loopback port (so a restart keeps the URL
/// Alertmanager posts to).
struct Stack {
    dir: tempfile::TempDir,
    slack: FakeSlack,
    pd: FakePagerDuty,
    listen: String,
}

impl Stack {
    async fn new() -> Stack {
        Stack {
            dir: tempfile::tempdir().unwrap(),
            slack: FakeSlack::start().await,
            pd: FakePagerDuty::start().await,
            listen: format!("127.0.0.1:{}", alertmanager::free_port()),
        }
    }

    fn service(&self, extra: &[(&str, String)]) -> Service {
        start_service(self.dir.path(), &self.slack, &self.pd, &self.listen, extra)
    }

    fn config(&self, timing: Timing) -> String {
        alertmanager::config_yaml(&receivers(&self.listen, &self.pd), timing)
    }
}

fn alertmanager_binary(test: &str) -> Option<PathBuf> {
    alertmanager::binary_or_skip(test)
}

#[tokio::test(flavor = "multi_thread")]
async fn alert_is_triaged_and_posted_once_across_repeat_intervals() {
    let Some(binary) = alertmanager_binary("alert_is_triaged_and_posted_once") else {
        return;
    };
    let stack = Stack::new().await;
    let service = stack.service(&[]);
    let am = Alertmanager::start(&binary, "am", &stack.config(fast_timing()), None).await;
    am.push(&TEST_ALERT.alerts(&now_rfc3339(), None)).await;

    // Keep the alert alive and let Alertmanager re-send it over several repeat intervals.
    let addr = &service.addr.to_string();
    let repeats = eventually("three repeats", Duration::from_secs(40), || async move {
        let episodes = episodes_named(addr, TEST_ALERT.alertname).await;
        let repeats = episodes.first()?["repeats"].as_u64()?;
        (repeats >= 3).then_some(repeats)
    })
    .await;
    assert!(am.webhook_notifications().await >= 4.0);
    let episode = the_episode(&service, &TEST_ALERT, 3).await;
    assert!(episode["repeats"].as_u64().unwrap() >= repeats);
    assert_eq!(episode["status"], "firing");
    assert_eq!(episode["alert"]["labels"]["severity"], TEST_ALERT.severity);
    assert_eq!(
        episode["alert"]["annotations"]["runbook_url"],
        "https://example.invalid/runbooks/test"
    );
    assert_one_annotation(&episode, &TEST_ALERT, &stack.slack, &stack.pd, &service);
    for request in stack.slack.all_requests() {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer xoxb-e2e-token")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn resolve_updates_the_same_slack_message() {
    let Some(binary) = alertmanager_binary("resolve_updates_the_same_slack_message") else {
        return;
    };
    let stack = Stack::new().await;
    let service = stack.service(&[]);
    let am = Alertmanager::start(&binary, "am", &stack.config(fast_timing()), None).await;
    let starts_at = now_rfc3339();
    am.push(&TEST_ALERT.alerts(&starts_at, None)).await;
    let firing = the_episode(&service, &TEST_ALERT, 3).await;
    let id = firing["id"].as_str().unwrap().to_string();

    am.push(&TEST_ALERT.alerts(&starts_at, Some(&now_rfc3339())))
        .await;
    let (service_ref, id_ref) = (&service, &id);
    let resolved = eventually(
        "the resolved episode",
        Duration::from_secs(30),
        || async move {
            let episode = service_ref.episode(id_ref).await;
            (episode["status"] == "resolved").then_some(episode)
        },
    )
    .await;
    let settled = service.settled(&id, 4).await;
    assert!(
        settled
            .iter()
            .any(|(d, kind, state)| d == "slack" && kind == "resolved" && state == "delivered"),
        "{settled:?}"
    );
    let episode = service.episode(&id).await;
    assert_one_annotation(&episode, &TEST_ALERT, &stack.slack, &stack.pd, &service);
    assert_eq!(resolved["id"], firing["id"], "the same episode resolves");
    let parent = &stack.slack.parents()[0];
    let resolved_edits: Vec<_> = stack
        .slack
        .requests("chat.update")
        .into_iter()
        .filter(|u| {
            u.body["blocks"][0]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("RESOLVED"))
        })
        .collect();
    assert_eq!(resolved_edits.len(), 1, "{resolved_edits:?}");
    assert_eq!(resolved_edits[0].body["ts"], parent.ts.as_str());
    assert_eq!(resolved_edits[0].body["channel"], parent.channel.as_str());
    // Alertmanager resolved the PagerDuty alert under the same dedup key.
    let dedup_key = sha256_hex(&TEST_ALERT.group_key());
    assert!(stack
        .pd
        .events()
        .iter()
        .any(|e| e["event_action"] == "resolve" && e["dedup_key"] == dedup_key.as_str()));
}

/// How many webhook requests the service answered 503.
async fn refused_503(service: &Service) -> u64 {
    let metrics = service.metrics().await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("cabal_triage_webhook_requests_total{code=\"503\"} "))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Posts a notification straight to the service and returns the HTTP status.
async fn post_status(addr: &str, body: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/alerts"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A notification of `count` alerts with no runbook, each with `filler` bytes of annotation.
fn filler_notification(first: usize, count: usize, filler: usize) -> Value {
    let alerts: Vec<Value> = (first..first + count)
        .map(|n| {
            json!({
                "status": "firing",
                "labels": {"alertname": "E2eFiller", "n": n.to_string()},
                "annotations": {"filler": "x".repeat(filler)},
                "startsAt": "2026-11-28T20:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": format!("{n:016x}"),
            })
        })
        .collect();
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"E2eFiller\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "cabal-triage", "groupLabels": {"alertname": "E2eFiller"},
        "commonLabels": {"alertname": "E2eFiller"}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9", "alerts": alerts,
    })
}

/// Fills the capped ledger until even a notification smaller than Alertmanager's is refused.
async fn fill_ledger(addr: &str) {
    let mut next = 0;
    for (count, filler) in [(50, 4000), (1, 1000), (1, 0)] {
        let mut refusals = 0;
        for _ in 0..500 {
            let status = post_status(addr, &filler_notification(next, count, filler)).await;
            next += count;
            match status {
                503 => refusals += 1,
                202 => refusals = 0,
                other => panic!("filling the ledger: unexpected {other}"),
            }
            if refusals == 3 {
                break;
            }
        }
        assert_eq!(
            refusals, 3,
            "the capped ledger did not fill ({count} x {filler})"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_503_is_accepted_once_the_ledger_can_write_again() {
    let Some(binary) = alertmanager_binary("retry_after_503") else {
        return;
    };
    let stack = Stack::new().await;
    let big_bodies = (
        "CABAL_TRIAGE__SERVER__BODY_LIMIT_BYTES",
        "16777216".to_string(),
    );
    // The fillers have no runbook: they are not announced (notify.unknown_alerts), so that
    // Slack shows only what the test is about.
    let capped = stack.service(&[
        ("CABAL_TRIAGE__LEDGER__MAX_SIZE_MIB", "1".into()),
        ("CABAL_TRIAGE_UNKNOWN_ALERTS", "ignore".into()),
        big_bodies.clone(),
    ]);
    fill_ledger(&stack.listen).await;
    let refused_before = refused_503(&capped).await;

    let timing = Timing {
        group_wait: Duration::from_millis(200),
        group_interval: Duration::from_secs(1),
        repeat_interval: Duration::from_secs(60),
    };
    let am = Alertmanager::start(&binary, "am", &stack.config(timing), None).await;
    am.push(&TEST_ALERT.alerts(&now_rfc3339(), None)).await;
    let am_ref = &am;
    eventually(
        "Alertmanager to see 503s",
        Duration::from_secs(30),
        || async move { (am_ref.webhook_failures().await >= 2.0).then_some(()) },
    )
    .await;
    assert!(
        refused_503(&capped).await >= refused_before + 2,
        "the failures Alertmanager saw are cabal-triage's 503s"
    );
    assert!(episodes_named(&stack.listen, TEST_ALERT.alertname)
        .await
        .is_empty());
    assert!(
        stack.slack.parents().is_empty(),
        "nothing posted while refused"
    );
    drop(capped);

    // The operator raises the cap; Alertmanager's next attempt goes through, once.
    let service = stack.service(&[big_bodies]);
    let episode = the_episode(&service, &TEST_ALERT, 3).await;
    assert_one_annotation(&episode, &TEST_ALERT, &stack.slack, &stack.pd, &service);
    assert!(am.webhook_notifications().await >= 1.0);
}

/// A forwarder on 127.0.0.1 that holds each webhook request for `delay` before passing it (body
/// and authorization) to `target` and relaying the answer: a slow network path, so a send takes
/// longer than the cluster's peer timeout, the case where HA peers both deliver.
async fn slow_forwarder(target: String, delay: Duration) -> String {
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
        let (client, target) = (client.clone(), target.clone());
        async move {
            tokio::time::sleep(delay).await;
            let mut request = client
                .post(&target)
                .header("content-type", "application/json")
                .body(body);
            if let Some(authorization) = headers.get("authorization") {
                request = request.header("authorization", authorization.as_bytes());
            }
            match request.send().await {
                Ok(response) => StatusCode::from_u16(response.status().as_u16()).unwrap(),
                Err(_) => StatusCode::BAD_GATEWAY,
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/api/v1/alerts")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clustered_alertmanagers_sending_the_same_group_give_one_annotation() {
    let Some(binary) = alertmanager_binary("two_clustered_alertmanagers") else {
        return;
    };
    let stack = Stack::new().await;
    let service = stack.service(&[]);
    let timing = Timing {
        group_wait: Duration::from_millis(500),
        group_interval: Duration::from_secs(5),
        repeat_interval: Duration::from_secs(60),
    };
    // Each instance reaches cabal-triage through a path slower than the peer timeout: the later
    // peer finds no notification of the earlier one in the gossiped log yet, and sends too.
    let peer_timeout = Duration::from_millis(300);
    let direct = format!("http://{}/api/v1/alerts", stack.listen);
    let mut configs = Vec::new();
    for _ in 0..2 {
        let mut receivers = receivers(&stack.listen, &stack.pd);
        receivers.webhook_url = slow_forwarder(direct.clone(), Duration::from_secs(2)).await;
        configs.push(alertmanager::config_yaml(&receivers, timing));
    }
    let (port_a, port_b) = (alertmanager::free_port(), alertmanager::free_port());
    let member = |listen_port, peer| ClusterMember {
        listen_port,
        peers: vec![peer],
        peer_timeout,
    };
    let (member_a, member_b) = (member(port_a, port_b), member(port_b, port_a));
    let (am_a, am_b) = tokio::join!(
        Alertmanager::start(&binary, "am-a", &configs[0], Some(&member_a)),
        Alertmanager::start(&binary, "am-b", &configs[1], Some(&member_b)),
    );
    let (a_ref, b_ref) = (&am_a, &am_b);
    eventually(
        "the gossip cluster",
        Duration::from_secs(30),
        || async move {
            (a_ref.cluster_peers().await == 2 && b_ref.cluster_peers().await == 2).then_some(())
        },
    )
    .await;

    // Prometheus sends every alert to every Alertmanager of the pair.
    let alerts = TEST_ALERT.alerts(&now_rfc3339(), None);
    tokio::join!(am_a.push(&alerts), am_b.push(&alerts));
    let sent = eventually(
        "both instances to notify",
        Duration::from_secs(30),
        || async move {
            let (a, b) = (
                a_ref.webhook_notifications().await,
                b_ref.webhook_notifications().await,
            );
            (a >= 1.0 && b >= 1.0).then_some((a, b))
        },
    )
    .await;
    let addr = &stack.listen;
    eventually(
        "the second notification",
        Duration::from_secs(30),
        || async move {
            let episodes = episodes_named(addr, TEST_ALERT.alertname).await;
            (episodes.first()?["repeats"].as_u64()? >= 1).then_some(())
        },
    )
    .await;
    let episode = the_episode(&service, &TEST_ALERT, 3).await;
    assert!(
        episode["repeats"].as_u64().unwrap() >= 1,
        "the second instance's notification is a recorded repeat: {sent:?} {episode}"
    );
    assert_one_annotation(&episode, &TEST_ALERT, &stack.slack, &stack.pd, &service);
}

/// Gmail rate-limiting smtp-out (`421-4.7.28`, 150 deferrals in the window: the `full` scenario
/// of `support/seed_moto.py`), as Prometheus's `SendmailDeferredSpike` would fire it.
const GREYLIST_STORM: AlertSpec = AlertSpec {
    alertname: "SendmailDeferredSpike",
    severity: "warning",
    labels: &[("job", "sendmail-exporter")],
    annotations: &[("summary", "smtp-out deferrals spiking")],
};

/// The AWS side of a greylist storm: moto seeded with it, ECS tasks with ECS Exec, `mailq`
/// answering from files, and a DNS server that lists nothing.
struct StormEnvironment {
    _moto: support::moto::Moto,
    _exec: fake_ecs::FakeEcs,
    _front: support::aws_front::AwsFront,
    _dns: support::fake_dns::FakeDns,
    env: Vec<(&'static str, String)>,
}

async fn storm_environment(dir: &Path) -> StormEnvironment {
    use std::collections::{BTreeMap, HashMap};
    use support::fake_aws::{FakeEcs as ControlPlane, FakeTask};

    let moto = tokio::task::spawn_blocking(support::moto::Moto::start)
        .await
        .unwrap();
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    let seeded = moto.seed("full", now_ms);
    assert_eq!(seeded["smtp-out"]["deferred"], 170);
    for (tier, text) in [
        ("smtp-out", "\t\tTotal requests: 42\n"),
        ("smtp-in", "Mail queue is empty\n"),
        ("imap", "Mail queue is empty\n"),
    ] {
        std::fs::write(dir.join(format!("mailq-{tier}")), text).unwrap();
    }
    let task = |id: &str, container: &str| FakeTask {
        id: id.into(),
        desired_status: "RUNNING",
        exec_enabled: true,
        container: container.into(),
        agent: Some("RUNNING"),
    };
    let control = ControlPlane {
        region_account: "us-east-1:123456789012",
        cluster: "cabal-mail".into(),
        page_size: 100,
        services: BTreeMap::from([
            ("cabal-imap".into(), vec![task("1a1a", "imap")]),
            ("cabal-smtp-in".into(), vec![task("2a2a", "smtp-in")]),
            (
                "cabal-smtp-out".into(),
                vec![task("3a3a", "smtp-out"), task("3b3b", "smtp-out")],
            ),
        ]),
    };
    let exec = fake_ecs::FakeEcs::start(fake_ecs::EcsBehaviour::default()).await;
    let front = support::aws_front::AwsFront::start(
        &moto.endpoint,
        &exec.endpoint,
        control,
        Duration::ZERO,
    )
    .await;
    let dns = support::fake_dns::FakeDns::start(HashMap::new()).await;
    let env = vec![
        ("CABAL_TRIAGE_AWS_ENDPOINT_URL", front.endpoint.clone()),
        ("CABAL_TRIAGE_AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        (
            "CABAL_TRIAGE__EXEC__MAILQ_COMMAND",
            format!("cat {}/mailq-$FAKE_ECS_CONTAINER", dir.display()),
        ),
        ("CABAL_TRIAGE_DNSBL_NAMESERVERS", dns.addr.to_string()),
        // The follow-up checks resolve names this machine has (no lookup leaves it).
        (
            "CABAL_TRIAGE__RUNBOOKS__EGRESS_CHECK_HOST",
            "localhost".to_string(),
        ),
        (
            "CABAL_TRIAGE__RUNBOOKS__RELAY_CHECK_HOST",
            "localhost".to_string(),
        ),
    ];
    StormEnvironment {
        _moto: moto,
        _exec: exec,
        _front: front,
        _dns: dns,
        env,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn greylist_storm_is_triaged_and_annotated_once_across_repeat_intervals() {
    let Some(binary) = alertmanager_binary("greylist_storm_is_triaged_and_annotated_once") else {
        return;
    };
    let stack = Stack::new().await;
    let environment = storm_environment(stack.dir.path()).await;
    let extra: Vec<(&str, String)> = environment.env.clone();
    let service = stack.service(&extra);
    let am = Alertmanager::start(&binary, "am", &stack.config(fast_timing()), None).await;
    am.push(&GREYLIST_STORM.alerts(&now_rfc3339(), None)).await;

    let addr = &service.addr.to_string();
    eventually("three repeats", Duration::from_secs(60), || async move {
        let episodes = episodes_named(addr, GREYLIST_STORM.alertname).await;
        let repeats = episodes.first()?["repeats"].as_u64()?;
        (repeats >= 3).then_some(repeats)
    })
    .await;
    let episode = the_episode(&service, &GREYLIST_STORM, 3).await;
    assert_eq!(episode["state"], "triaged", "{episode}");
    let verdict = &episode["report"]["verdict"];
    assert_eq!(verdict["offending_tier"], "smtp-out", "{verdict}");
    assert_eq!(verdict["dsn_class"], "4.7", "{verdict}");
    assert_eq!(verdict["nat_state"], "running", "{verdict}");
    assert_eq!(verdict["action"], "blocklist-check", "{verdict}");
    assert_eq!(
        episode["report"]["evidence"]["tiers"]["smtp-out"]["queue_requests"],
        42
    );
    assert_one_annotation(&episode, &GREYLIST_STORM, &stack.slack, &stack.pd, &service);
    // The annotation carries the verdict, escaped for Slack, with no address in clear.
    let parent_text = stack.slack.requests("chat.update")[0].body.to_string();
    assert!(parent_text.contains("blocklist-check"), "{parent_text}");
    assert!(!parent_text.contains("user1@gmail.com"), "{parent_text}");
}

/// An alert for the Cabalmail configuration test: `alertname`, `severity`, started now.
fn cabalmail_alert(alertname: &str, severity: &str) -> Value {
    json!([{
        "labels": {"alertname": alertname, "severity": severity, "job": "cabalmail-e2e"},
        "annotations": {"summary": format!("{alertname} in the Cabalmail configuration test")},
        "startsAt": now_rfc3339(),
        "generatorURL": "http://127.0.0.1:9/graph",
    }])
}

/// deploy/alertmanager/cabalmail/alertmanager.yml.tmpl, rendered the way Cabalmail's entrypoint
/// does (render.sh), run by the real Alertmanager with only two edits: the cabal-triage URL
/// points at the local service and group_wait is 1 s instead of 30 s. The alert_sink Lambda is
/// a fake recording what it receives. Every alert reaches alert_sink with Cabalmail's secret;
/// the runbook alerts reach cabal-triage too, with its token; the others do not.
#[tokio::test(flavor = "multi_thread")]
async fn cabalmail_alertmanager_config_keeps_paging_alert_sink_and_copies_runbook_alerts() {
    let Some(binary) = alertmanager_binary("cabalmail_alertmanager_config") else {
        return;
    };
    let stack = Stack::new().await;
    // The real runbooks run on the copies: their AWS calls go to a closed local port.
    let service = stack.service(&[
        ("CABAL_TRIAGE_AWS_ENDPOINT_URL", "http://127.0.0.1:9".into()),
        ("CABAL_TRIAGE_AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "AKIDE2E".into()),
        ("AWS_SECRET_ACCESS_KEY", "e2e-secret".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]);
    let sink = FakeSlack::start().await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rendered = tempfile::tempdir().unwrap();
    let out = rendered.path().join("alertmanager.yml");
    let status = std::process::Command::new(root.join("deploy/alertmanager/cabalmail/render.sh"))
        .arg(root.join("deploy/alertmanager/cabalmail/alertmanager.yml.tmpl"))
        .arg(&out)
        .env("ALERT_SINK_URL", sink.webhook_url())
        .env("ALERT_SECRET", "alert-sink-secret")
        .env("CABAL_TRIAGE_WEBHOOK_TOKEN", TOKEN)
        .status()
        .expect("run render.sh");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let config = text
        .replace(
            "http://triage.cabal-monitoring.cabal.internal:9095",
            &format!("http://{}", stack.listen),
        )
        .replace("group_wait: 30s", "group_wait: 1s");
    assert!(config.contains(&stack.listen) && config.contains("group_wait: 1s"));
    let am = Alertmanager::start(&binary, "am-cabalmail", &config, None).await;

    let sent = [
        ("SendmailDeferredSpike", "critical", true),
        ("SendmailBouncedSpike", "warning", true),
        ("NodeHighCPU", "critical", false),
        ("NodeDiskSpaceLow", "warning", false),
    ];
    for (alertname, severity, _) in sent {
        am.push(&cabalmail_alert(alertname, severity)).await;
    }

    let sink = &sink;
    let paged = eventually(
        "alert_sink has every alert",
        Duration::from_secs(30),
        || async move {
            let requests = sink.requests("incoming-webhook");
            let names: std::collections::BTreeSet<String> = requests
                .iter()
                .flat_map(|r| r.body["alerts"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a["labels"]["alertname"].as_str().map(str::to_string))
                .collect();
            (names.len() == sent.len()).then_some(requests)
        },
    )
    .await;
    for request in &paged {
        assert_eq!(
            request.authorization.as_deref(),
            Some("Bearer alert-sink-secret")
        );
        let receiver = request.body["receiver"].as_str().unwrap();
        let severity = request.body["commonLabels"]["severity"].as_str().unwrap();
        assert_eq!(
            receiver,
            format!("alert-sink-{severity}"),
            "{}",
            request.body
        );
    }

    let addr = service.addr.to_string();
    for (alertname, _, copied) in sent {
        if copied {
            let addr = &addr;
            eventually(alertname, Duration::from_secs(30), || async move {
                (!episodes_named(addr, alertname).await.is_empty()).then_some(())
            })
            .await;
        }
    }
    // Alertmanager sent its notifications for this group round; the others were never routed.
    assert!(am.webhook_notifications().await >= sent.len() as f64);
    assert_eq!(am.webhook_failures().await, 0.0, "{}", am.log_text());
    for (alertname, _, copied) in sent {
        if !copied {
            assert!(
                episodes_named(&addr, alertname).await.is_empty(),
                "{alertname} reached cabal-triage"
            );
        }
    }
}

/// Something inside the VPC guessing IMAP logins (`imap_auth` in `support/seed_moto.py`: a
/// non-Lambda interface tries ten names while a Lambda logs in), as Prometheus's
/// `IMAPAuthFailureSpike` fires it.
const IMAP_GUESSING: AlertSpec = AlertSpec {
    alertname: "IMAPAuthFailureSpike",
    severity: "warning",
    labels: &[("job", "dovecot-exporter")],
    annotations: &[("summary", "imap-login auth failures spiking")],
};

/// cabal-imap looping after an image push (`restart_loop` in `support/seed_moto.py`; its
/// stopped tasks from the fake ECS control plane, described as crashes), as Prometheus's
/// `ContainerRestartLoop` fires it.
const IMAP_RESTART_LOOP: AlertSpec = AlertSpec {
    alertname: "ContainerRestartLoop",
    severity: "critical",
    labels: &[("service_name", "cabal-imap"), ("job", "ecs-exporter")],
    annotations: &[(
        "summary",
        "cabal-imap below its desired count for 30 minutes",
    )],
};

/// The AWS side of the two AWS-only runbooks: moto seeded with `scenario`, the fake ECS control
/// plane for ListTasks and DescribeTasks, behind one loopback endpoint (no ECS Exec).
struct RunbookEnvironment {
    _moto: support::moto::Moto,
    _front: support::aws_front::AwsFront,
    env: Vec<(&'static str, String)>,
}

async fn runbook_environment(
    scenario: &str,
    service: &str,
    tasks: Vec<support::fake_aws::FakeTask>,
) -> RunbookEnvironment {
    let moto = tokio::task::spawn_blocking(support::moto::Moto::start)
        .await
        .unwrap();
    let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
    moto.seed(scenario, now_ms);
    let control = support::fake_aws::FakeEcs {
        region_account: "us-east-1:123456789012",
        cluster: "cabal-mail".into(),
        page_size: 100,
        services: std::collections::BTreeMap::from([(service.to_string(), tasks)]),
    };
    let front = support::aws_front::AwsFront::start(
        &moto.endpoint,
        "http://127.0.0.1:9",
        control,
        Duration::ZERO,
    )
    .await;
    let env = vec![
        ("CABAL_TRIAGE_AWS_ENDPOINT_URL", front.endpoint.clone()),
        ("CABAL_TRIAGE_AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    RunbookEnvironment {
        _moto: moto,
        _front: front,
        env,
    }
}

/// Pushes `alert` (started five minutes ago) through a real Alertmanager to the service until it
/// has been re-sent twice; returns the one episode, its deliveries settled.
async fn deliver_through_alertmanager(
    test: &str,
    stack: &Stack,
    environment: &RunbookEnvironment,
    alert: &AlertSpec,
) -> Option<(Service, Value)> {
    let binary = alertmanager_binary(test)?;
    let service = stack.service(&environment.env);
    let am = Alertmanager::start(&binary, "am", &stack.config(fast_timing()), None).await;
    let starts_at = (OffsetDateTime::now_utc() - time::Duration::minutes(5))
        .format(&Rfc3339)
        .unwrap();
    am.push(&alert.alerts(&starts_at, None)).await;
    let addr = &service.addr.to_string();
    eventually("two repeats", Duration::from_secs(60), || async move {
        let episodes = episodes_named(addr, alert.alertname).await;
        (episodes.first()?["repeats"].as_u64()? >= 2).then_some(())
    })
    .await;
    let episode = the_episode(&service, alert, 3).await;
    assert_eq!(episode["state"], "triaged", "{episode}");
    Some((service, episode))
}

/// The verdict's words in the Slack message (the verdict edit) and the PagerDuty note.
fn assert_verdict_delivered(stack: &Stack, words: &[&str]) {
    let parent_text = stack.slack.requests("chat.update")[0].body.to_string();
    let incidents = stack.pd.incidents();
    let note = stack.pd.notes(&incidents[0].0).join("\n");
    for word in words {
        assert!(parent_text.contains(word), "{word} not in {parent_text}");
        assert!(note.contains(word), "{word} not in {note}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn imap_auth_spike_from_an_in_vpc_source_reaches_slack_and_pagerduty_once() {
    let stack = Stack::new().await;
    let imap_task = support::fake_aws::FakeTask {
        id: "9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5".into(),
        desired_status: "RUNNING",
        exec_enabled: true,
        container: "imap".into(),
        agent: Some("RUNNING"),
    };
    let environment = runbook_environment("imap_auth", "cabal-imap", vec![imap_task]).await;
    let Some((service, episode)) = deliver_through_alertmanager(
        "imap_auth_spike_from_an_in_vpc_source",
        &stack,
        &environment,
        &IMAP_GUESSING,
    )
    .await
    else {
        return;
    };
    let report = &episode["report"];
    assert_eq!(report["runbook"], "imap-auth-failure-spike");
    let verdict = &report["verdict"];
    assert_eq!(verdict["offending_tier"], "imap", "{verdict}");
    assert_eq!(verdict["cause"], "in-vpc-source", "{verdict}");
    assert_eq!(verdict["action"], "compromise-investigation", "{verdict}");
    assert_eq!(verdict["severity_hint"], "critical", "{verdict}");
    assert!(
        verdict["summary"].as_str().unwrap().contains("10.64.40.17"),
        "{verdict}"
    );
    assert_one_annotation(&episode, &IMAP_GUESSING, &stack.slack, &stack.pd, &service);
    assert_verdict_delivered(&stack, &["in-vpc-source", "compromise-investigation"]);
    // The source's evidence line reached Slack; the guessed names stay out of Slack and
    // PagerDuty, and the parameter's value out of everything, the episode's stored report too.
    let slack_text = stack.slack.requests("chat.update")[0].body.to_string();
    assert!(
        slack_text.contains("10.64.40.17: interface") && slack_text.contains("users 10"),
        "{slack_text}"
    );
    let delivered = format!("{:?}{:?}", stack.slack.all_requests(), stack.pd.requests());
    for name in ["webmaster", "postmaster", "dana"] {
        assert!(!delivered.contains(name), "{name} in {delivered}");
    }
    assert!(!format!("{delivered}{episode}").contains("moto-master-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restart_loop_after_an_image_push_reaches_slack_and_pagerduty_once() {
    let stack = Stack::new().await;
    let stopped = |id: &str| support::fake_aws::FakeTask {
        id: id.into(),
        desired_status: "STOPPED",
        exec_enabled: true,
        container: "imap".into(),
        agent: None,
    };
    let environment = runbook_environment(
        "restart_loop",
        "cabal-imap",
        vec![stopped("5a5a"), stopped("5b5b")],
    )
    .await;
    let Some((service, episode)) = deliver_through_alertmanager(
        "restart_loop_after_an_image_push",
        &stack,
        &environment,
        &IMAP_RESTART_LOOP,
    )
    .await
    else {
        return;
    };
    let report = &episode["report"];
    assert_eq!(report["runbook"], "container-restart-loop");
    let verdict = &report["verdict"];
    assert_eq!(verdict["service"], "cabal-imap", "{verdict}");
    assert_eq!(verdict["cause"], "image-regression", "{verdict}");
    assert_eq!(verdict["action"], "rollback", "{verdict}");
    assert_one_annotation(
        &episode,
        &IMAP_RESTART_LOOP,
        &stack.slack,
        &stack.pd,
        &service,
    );
    assert_verdict_delivered(&stack, &["image-regression", "rollback", "sha-1111aaaa"]);
}
