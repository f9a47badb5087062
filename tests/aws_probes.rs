//! The AWS probes against moto in server mode (CloudWatch Logs, EC2, IAM) and a fake ECS
//! endpoint (moto's ECS has neither `enableExecuteCommand` nor managed agents), all on
//! 127.0.0.1 with fake static credentials: exact counts and states, then the faults (moto
//! stopped mid-scan, access denied, a missing log group, a deadline shorter than the scan,
//! throttling, no credentials, nothing listening).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use cabal_triage::aws::probes::{AwsLogScan, AwsNatProbe, AwsTaskDiscovery};
use cabal_triage::aws::AwsClients;
use cabal_triage::config::Config;
use cabal_triage::probe::snapshot::{Snapshot, Window};
use cabal_triage::probe::{log_window, LogScan, LogScanProbe, NatProbe, TaskDiscoveryProbe};
use cabal_triage::report::{NatState, StepOutcome};
use cabal_triage::timing::Deadline;
use serde_json::json;
use support::fake_aws::{aws_error, FakeAws, FakeEcs, FakeTask};
use support::moto::Moto;
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn now_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn fake_credentials() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new("testing", "testing", None, None, "tests"))
}

fn config_for(endpoint: &str) -> Config {
    let mut config = Config::default();
    config.aws.region = Some("us-east-1".into());
    config.aws.endpoint_url = Some(endpoint.to_string());
    config.probes.log_page_limit = 50;
    config
}

async fn clients(config: &Config, credentials: SharedCredentialsProvider) -> AwsClients {
    AwsClients::load(
        &config.aws,
        Duration::from_secs(config.probes.aws_connect_timeout_secs),
        Some(credentials),
    )
    .await
}

fn last_30_min(at: OffsetDateTime) -> Window {
    log_window(
        at,
        Some(at - Duration::from_secs(60)),
        &Config::default().probes,
    )
}

async fn scan(config: &Config, window: Window, deadline: Duration) -> LogScan {
    let clients = clients(config, fake_credentials()).await;
    AwsLogScan::new(&clients, config)
        .scan(window, Deadline::after(deadline))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_scan_reads_every_page_of_every_tier_within_the_window() {
    let moto = Moto::start();
    let at = now();
    let seeded = moto.seed("full", now_ms(at));
    let config = config_for(&moto.endpoint);
    let window = last_30_min(at);
    let result = scan(&config, window, Duration::from_secs(30)).await;

    assert_eq!(
        result
            .tiers
            .iter()
            .map(|t| t.tier.as_str())
            .collect::<Vec<_>>(),
        ["imap", "smtp-in", "smtp-out"]
    );
    for tier in ["imap", "smtp-in", "smtp-out"] {
        let t = result.tier(tier).unwrap();
        let expected = &seeded[tier];
        assert_eq!(t.error, None, "{tier}");
        assert!(!t.truncated, "{tier}");
        assert_eq!(t.log_group, format!("/ecs/cabal-{tier}"));
        assert_eq!(
            t.events.len() as u64,
            expected["matching"].as_u64().unwrap(),
            "{tier}"
        );
        let deferred = t
            .events
            .iter()
            .filter(|e| e.message.contains("stat=Deferred"))
            .count() as u64;
        let bounced = t
            .events
            .iter()
            .filter(|e| e.message.contains("dsn=5"))
            .count() as u64;
        assert_eq!(deferred, expected["deferred"].as_u64().unwrap(), "{tier}");
        assert_eq!(bounced, expected["bounced"].as_u64().unwrap(), "{tier}");
        assert!(t
            .events
            .iter()
            .all(|e| e.timestamp >= window.from_ms() && e.timestamp <= window.to_ms()));
        assert!(t
            .events
            .iter()
            .all(|e| e.log_stream.starts_with(&format!("{tier}/{tier}/"))));
        assert_eq!(t.step().outcome, StepOutcome::Ok);
        assert_eq!(t.step().name, format!("log scan {tier}"));
        // The newest line of the group, any line (the last ones seeded are not delivery lines),
        // from DescribeLogStreams beside the scan: its event time, or the later ingestion time.
        let newest = t.newest_event_ms.expect("newest event read");
        let seeded_newest = expected["newest_ms"].as_i64().unwrap();
        let scanned_newest = t.events.iter().map(|e| e.timestamp).max().unwrap();
        assert!(
            newest >= seeded_newest,
            "{tier}: {newest} < {seeded_newest}"
        );
        assert!(newest >= scanned_newest, "{tier}");
        assert!(
            newest <= now_ms(OffsetDateTime::now_utc()),
            "{tier}: {newest} is in the future"
        );
        assert_eq!(t.newest_error, None, "{tier}");
    }
    let out = result.tier("smtp-out").unwrap();
    // 340 events in the window at 50 per page: moto ignores the `?` pattern, so every
    // page is read and the delivery lines are picked on this side.
    assert_eq!(out.pages, 7);
    let streams: std::collections::BTreeSet<_> =
        out.events.iter().map(|e| e.log_stream.as_str()).collect();
    assert_eq!(streams.len(), 3);
    // The 30 deferrals 35-50 minutes ago are outside the window.
    assert!(!out.events.iter().any(|e| e.message.contains("user1000@")));
    assert_eq!(
        out.events
            .iter()
            .filter(|e| e.message.contains("dsn=4.7.28"))
            .count(),
        150
    );

    let mut snapshot = Snapshot::new(at);
    result.record(&mut snapshot);
    let text = serde_json::to_string(&snapshot).unwrap();
    let again: Snapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(again, snapshot);
    assert_eq!(again.tiers["imap"].log_events.as_ref().unwrap().len(), 7);
    assert_eq!(
        again.tiers["imap"].newest_log_event_ms,
        result.tier("imap").unwrap().newest_event_ms
    );
    assert_eq!(again.tiers["imap"].log_error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_truncate_a_tier_and_say_so() {
    let moto = Moto::start();
    let at = now();
    moto.seed("full", now_ms(at));
    let mut config = config_for(&moto.endpoint);
    config.probes.log_max_events_per_tier = 100;
    let result = scan(&config, last_30_min(at), Duration::from_secs(30)).await;
    let out = result.tier("smtp-out").unwrap();
    assert_eq!(out.events.len(), 100);
    assert!(out.truncated);
    assert_eq!(out.error, None);
    assert!(!result.tier("smtp-in").unwrap().truncated);
    assert_eq!(result.tier("smtp-in").unwrap().events.len(), 12);

    config.probes.log_max_events_per_tier = 20_000;
    config.probes.log_max_bytes_per_tier = 4_096;
    let result = scan(&config, last_30_min(at), Duration::from_secs(30)).await;
    let out = result.tier("smtp-out").unwrap();
    assert!(out.truncated);
    assert!(
        out.bytes <= 4_096 && out.bytes > 3_000,
        "{} bytes",
        out.bytes
    );
    assert_eq!(
        out.bytes,
        out.events.iter().map(|e| e.message.len()).sum::<usize>()
    );
    let mut snapshot = Snapshot::new(at);
    result.record(&mut snapshot);
    assert!(snapshot.tiers["smtp-out"].log_truncated);
    assert!(!snapshot.tiers["imap"].log_truncated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_probe_finds_numbered_instances_and_gateways() {
    let moto = Moto::start();
    let seeded = moto.seed("full", now_ms(now()));
    let config = config_for(&moto.endpoint);
    let clients = clients(&config, fake_credentials()).await;
    let result = AwsNatProbe::new(&clients, &config)
        .describe(Deadline::after(Duration::from_secs(20)))
        .await;
    assert_eq!(result.error, None);
    let nat = &result.nat;
    let names: Vec<_> = nat
        .instances
        .iter()
        .map(|i| i.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["cabal-nat-0", "cabal-nat-1", "cabal-nat-2"]);
    let states: Vec<_> = nat.instances.iter().map(|i| i.state.as_str()).collect();
    assert_eq!(states, ["running", "stopped", "terminated"]);
    let expected = &seeded["nat"]["instances"];
    for i in &nat.instances {
        let e = &expected[i.name.as_deref().unwrap()];
        assert_eq!(i.id, e["id"].as_str().unwrap());
        assert_eq!(i.availability_zone.as_deref(), e["az"].as_str());
        assert_eq!(i.public_ip.as_deref(), e["public_ip"].as_str());
        assert!(i.launch_time.as_deref().unwrap().contains('T'));
    }
    assert_eq!(
        nat.instances[0].public_ip.as_deref(),
        expected["cabal-nat-0"]["eip"].as_str()
    );
    assert_eq!(nat.gateways.len(), 1);
    let gw = &nat.gateways[0];
    assert_eq!(gw.id, seeded["nat"]["gateway"]["id"].as_str().unwrap());
    assert_eq!(gw.name.as_deref(), Some("cabal-nat-3"));
    assert_eq!(gw.state, "available");
    assert_eq!(
        gw.public_ip.as_deref(),
        seeded["nat"]["gateway"]["public_ip"].as_str()
    );
    assert_eq!(
        gw.subnet_id.as_deref(),
        seeded["nat"]["gateway"]["subnet"].as_str()
    );
    for excluded in seeded["nat"]["excluded"].as_array().unwrap() {
        let id = excluded.as_str().unwrap();
        assert!(!nat
            .instances
            .iter()
            .chain(&nat.gateways)
            .any(|e| e.id == id));
    }
    assert_eq!(result.state(), NatState::Running);
    assert_eq!(result.step().outcome, StepOutcome::Ok);

    // Per zone: the private route tables, their subnets' zones and default routes (the public
    // table stays out), the gateway's zone from its subnet, the instances' source/dest check.
    assert_eq!(nat.instances[0].source_dest_check, Some(false));
    assert!(!nat.instances[0].network_interfaces.is_empty());
    assert_eq!(gw.availability_zone.as_deref(), Some("us-east-1b"));
    let tables = nat.route_tables.as_ref().expect("route tables read");
    let expected = &seeded["nat"]["route_tables"];
    let names: Vec<_> = tables.iter().map(|t| t.name.as_deref().unwrap()).collect();
    assert_eq!(names, ["cabal-private-rt-0", "cabal-private-rt-1"]);
    for t in tables {
        let e = &expected[t.name.as_deref().unwrap()];
        assert_eq!(t.id, e["id"].as_str().unwrap());
        assert_eq!(t.availability_zones, [e["az"].as_str().unwrap()]);
        let route = t.default_route.as_ref().unwrap();
        assert_eq!(route.target, e["target"].as_str().unwrap());
        assert_eq!(route.state, "active");
    }
    let zones = cabal_triage::probe::zone_egress(nat);
    // cabal-nat-0 (running) owns the interface of zone a's route.
    assert_eq!(
        zones["us-east-1a"].nat_id.as_deref(),
        Some(nat.instances[0].id.as_str())
    );
    assert_eq!(zones["us-east-1a"].works, Some(true));
    assert_eq!(zones["us-east-1b"].nat_id.as_deref(), Some(gw.id.as_str()));
    assert_eq!(zones["us-east-1b"].works, Some(true));

    // The NATs' Elastic IPs, the stopped NAT's too, each with its NAT (untagged addresses, like
    // the gateways', stay out).
    let addresses = nat.addresses.as_ref().expect("addresses read");
    let expected = &seeded["nat"]["addresses"];
    let names: Vec<_> = addresses
        .iter()
        .map(|a| a.name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["cabal-nat-eip-0", "cabal-nat-eip-1"]);
    for a in addresses {
        let e = &expected[a.name.as_deref().unwrap()];
        assert_eq!(a.public_ip, e["public_ip"].as_str().unwrap());
        assert_eq!(a.instance_id.as_deref(), e["instance"].as_str());
        assert!(a.allocation_id.as_deref().unwrap().starts_with("eipalloc-"));
    }
    let ips: Vec<String> = cabal_triage::runbook::gather::nat_public_ips(nat)
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    assert!(ips.contains(
        &expected["cabal-nat-eip-1"]["public_ip"]
            .as_str()
            .unwrap()
            .to_string()
    ));

    let mut config = config;
    config.nat.tag_pattern = "cabal-egress-*".into();
    let result = AwsNatProbe::new(&clients, &config)
        .describe(Deadline::after(Duration::from_secs(20)))
        .await;
    assert_eq!(result.error, None);
    assert!(result.nat.instances.is_empty() && result.nat.gateways.is_empty());
    assert_eq!(result.state(), NatState::Missing);
    assert_eq!(result.step().outcome, StepOutcome::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_log_group_fails_its_tier_only() {
    let moto = Moto::start();
    let at = now();
    moto.seed("full", now_ms(at));
    let mut config = config_for(&moto.endpoint);
    config.cabalmail.tiers.get_mut("imap").unwrap().log_group = "/ecs/cabal-imap-typo".into();
    let result = scan(&config, last_30_min(at), Duration::from_secs(30)).await;
    let imap = result.tier("imap").unwrap();
    assert!(imap.events.is_empty());
    assert_eq!(
        imap.error.as_ref().unwrap().message,
        "logs:FilterLogEvents on /ecs/cabal-imap-typo: log group /ecs/cabal-imap-typo does not exist in this account and region; check cabalmail.tiers.<tier>.log_group and aws.region"
    );
    assert_eq!(imap.step().outcome, StepOutcome::Failed);
    assert_eq!(result.tier("smtp-out").unwrap().events.len(), 180);
    assert_eq!(result.tier("smtp-in").unwrap().error, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_names_the_action_and_rejected_keys_say_so() {
    let moto = Moto::start();
    let keys = moto.seed("restricted", 0);
    moto.enforce_iam();
    let config = config_for(&moto.endpoint);
    let restricted = SharedCredentialsProvider::new(Credentials::new(
        keys["access_key_id"].as_str().unwrap(),
        keys["secret_access_key"].as_str().unwrap(),
        None,
        None,
        "tests",
    ));
    let clients = clients(&config, restricted).await;
    let at = now();
    let logs = AwsLogScan::new(&clients, &config)
        .scan(last_30_min(at), Deadline::after(Duration::from_secs(20)))
        .await;
    for t in &logs.tiers {
        let message = &t.error.as_ref().unwrap().message;
        assert!(
            message.starts_with(&format!(
                "logs:FilterLogEvents on /ecs/cabal-{}: access denied (User: arn:aws:iam::123456789012:user/cabal-triage-ec2-only is not authorized to perform: logs:FilterLogEvents",
                t.tier
            )),
            "{message}"
        );
        assert!(message.ends_with(
            "grant logs:FilterLogEvents to the service's role (deploy/iam/cabal-triage-policy.json)"
        ));
        assert_eq!(t.step().outcome, StepOutcome::Failed);
        // The newest-event read is denied too, named apart; unknown, never a silence.
        assert_eq!(t.newest_event_ms, None);
        let newest = &t.newest_error.as_ref().unwrap().message;
        assert!(
            newest.starts_with(&format!(
                "logs:DescribeLogStreams on /ecs/cabal-{}: access denied",
                t.tier
            )),
            "{newest}"
        );
        assert!(newest.ends_with(
            "grant logs:DescribeLogStreams to the service's role (deploy/iam/cabal-triage-policy.json)"
        ));
    }
    // The same user may call DescribeInstances but not DescribeNatGateways: the NAT probe
    // keeps the instance it found and names the denied action.
    let nat = AwsNatProbe::new(&clients, &config)
        .describe(Deadline::after(Duration::from_secs(20)))
        .await;
    assert_eq!(nat.nat.instances.len(), 1);
    assert_eq!(
        nat.nat.instances[0].id,
        keys["nat_instance"].as_str().unwrap()
    );
    assert_eq!(nat.nat.instances[0].state, "running");
    assert!(nat.nat.gateways.is_empty());
    let message = &nat.error.as_ref().unwrap().message;
    assert!(
        message.starts_with("ec2:DescribeNatGateways: access denied (User: arn:aws:iam::123456789012:user/cabal-triage-ec2-only is not authorized to perform: ec2:DescribeNatGateways"),
        "{message}"
    );
    assert!(message.contains(
        "grant ec2:DescribeNatGateways to the service's role (deploy/iam/cabal-triage-policy.json)"
    ));
    // The route tables are denied too: named, and read as "not read" (zones by placement).
    assert!(
        message.contains(
            "grant ec2:DescribeRouteTables to the service's role (deploy/iam/cabal-triage-policy.json)"
        ) && message.ends_with(
            "grant ec2:DescribeAddresses to the service's role (deploy/iam/cabal-triage-policy.json)"
        ),
        "{message}"
    );
    assert_eq!(nat.nat.route_tables, None);
    assert_eq!(nat.nat.addresses, None);
    assert_eq!(nat.step().outcome, StepOutcome::Failed);
    assert_eq!(nat.state(), NatState::Running);

    // Keys IAM does not know.
    let unknown = clients_with(&config, fake_credentials()).await;
    let nat = AwsNatProbe::new(&unknown, &config)
        .describe(Deadline::after(Duration::from_secs(20)))
        .await;
    let message = nat.error.clone().unwrap().message;
    assert!(
        message.contains("ec2:DescribeInstances: AWS rejected the credentials (AuthFailure"),
        "{message}"
    );
    assert!(message.contains("ec2:DescribeNatGateways: AWS rejected the credentials"));
    assert_eq!(nat.nat.error.as_deref(), Some(message.as_str()));
    // Nothing found because the lookup failed: unknown, never "missing".
    assert_eq!(nat.state(), NatState::Unknown);
}

async fn clients_with(config: &Config, credentials: SharedCredentialsProvider) -> AwsClients {
    clients(config, credentials).await
}

/// Only smtp-out, with 3,000 matching events read 10 per page (300 pages).
fn big_scan_config(endpoint: &str) -> Config {
    let mut config = config_for(endpoint);
    config.cabalmail.tiers.retain(|name, _| name == "smtp-out");
    config.probes.log_page_limit = 10;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_stopped_mid_scan_keeps_the_pages_already_read() {
    let mut moto = Moto::start();
    let at = now();
    moto.seed("big", now_ms(at));
    let config = big_scan_config(&moto.endpoint);
    let before = moto.requests_answered();
    let window = last_30_min(at);
    let scan_task = tokio::spawn({
        let config = config.clone();
        async move { scan(&config, window, Duration::from_secs(60)).await }
    });
    let waiting = std::time::Instant::now();
    // Three pages of FilterLogEvents, plus the one DescribeLogStreams (the tier's newest log
    // line) that runs beside the scan.
    while moto.requests_answered() < before + 4 {
        assert!(
            waiting.elapsed() < Duration::from_secs(60),
            "moto answered no scan request"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    moto.stop();
    let result = scan_task.await.unwrap();
    let out = result.tier("smtp-out").unwrap();
    assert!(out.pages >= 2 && out.pages < 300, "{} pages", out.pages);
    assert_eq!(out.events.len(), out.pages as usize * 10);
    let error = out.error.as_ref().unwrap();
    assert!(!error.timed_out);
    assert!(
        error.message.starts_with(&format!(
            "logs:FilterLogEvents on /ecs/cabal-smtp-out: cannot reach the AWS endpoint {}",
            moto.endpoint
        )),
        "{}",
        error.message
    );
    assert_eq!(out.step().outcome, StepOutcome::Failed);
    let mut snapshot = Snapshot::new(at);
    result.record(&mut snapshot);
    assert_eq!(
        snapshot.tiers["smtp-out"]
            .log_events
            .as_ref()
            .unwrap()
            .len(),
        out.events.len()
    );
    assert_eq!(
        snapshot.tiers["smtp-out"].log_error.as_deref(),
        Some(error.message.as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_shorter_than_the_scan_returns_what_was_read() {
    let moto = Moto::start();
    let at = now();
    moto.seed("big", now_ms(at));
    let config = big_scan_config(&moto.endpoint);
    let window = last_30_min(at);
    let full = scan(&config, window, Duration::from_secs(120)).await;
    let full_out = full.tier("smtp-out").unwrap();
    assert_eq!(full_out.error, None);
    assert_eq!(full_out.events.len(), 3000);
    assert_eq!(full_out.pages, 300);

    let budget = full_out.elapsed / 3;
    let short = scan(&config, window, budget).await;
    let out = short.tier("smtp-out").unwrap();
    let error = out.error.as_ref().unwrap();
    assert!(error.timed_out, "{}", error.message);
    assert!(
        error.message.starts_with(
            "logs:FilterLogEvents on /ecs/cabal-smtp-out: timed out, the probe's deadline of "
        ),
        "{}",
        error.message
    );
    assert!(out.pages > 0 && out.pages < 300, "{} pages", out.pages);
    assert_eq!(out.events.len(), out.pages as usize * 10);
    assert_eq!(out.events[..], full_out.events[..out.events.len()]);
    assert_eq!(out.step().outcome, StepOutcome::TimedOut);
}

fn log_page(events: std::ops::Range<u32>, next: Option<&str>) -> serde_json::Value {
    let events: Vec<_> = events
        .map(|i| {
            json!({"logStreamName": "smtp-out/smtp-out/0a1b", "timestamp": 1_764_360_000_000i64 + i as i64,
                   "message": format!("sm-mta[1]: q{i}: to=<a@gmail.com>, dsn=4.7.28, stat=Deferred: 421"),
                   "ingestionTime": 1_764_360_000_000i64, "eventId": i.to_string()})
        })
        .collect();
    let mut page = json!({"events": events, "searchedLogStreams": []});
    if let Some(next) = next {
        page["nextToken"] = json!(next);
    }
    page
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_within_the_deadline() {
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let fake = FakeAws::start(Arc::new(move |action, body| {
        assert_eq!(action, "FilterLogEvents");
        let n = counter.fetch_add(1, Ordering::SeqCst);
        match (n, body["nextToken"].as_str()) {
            (0..=2, _) => aws_error(400, "ThrottlingException", "Rate exceeded"),
            (_, None) => (200, log_page(0..5, Some("p2"))),
            (_, Some("p2")) => (200, log_page(5..8, None)),
            _ => aws_error(400, "InvalidParameterException", "bad token"),
        }
    }))
    .await;
    let mut config = big_scan_config(&fake.endpoint);
    config.probes.throttle_backoff_initial_ms = 10;
    config.probes.throttle_backoff_max_ms = 50;
    let window = last_30_min(now());
    let result = scan(&config, window, Duration::from_secs(10)).await;
    let out = result.tier("smtp-out").unwrap();
    assert_eq!(out.error, None);
    assert_eq!(out.events.len(), 8);
    assert_eq!(out.pages, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    let first = &fake.requests_of("FilterLogEvents")[0];
    assert_eq!(first["logGroupName"], "/ecs/cabal-smtp-out");
    assert_eq!(first["filterPattern"], r#"?"stat=Deferred" ?"dsn=5""#);
    assert_eq!(first["limit"], 10);
    assert_eq!(first["startTime"], window.from_ms());
    assert_eq!(first["endTime"], window.to_ms());

    // Throttled for good after the first page: the deadline ends the retries, the first page
    // stays.
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let fake = FakeAws::start(Arc::new(move |_, body| {
        counter.fetch_add(1, Ordering::SeqCst);
        match body["nextToken"].as_str() {
            None => (200, log_page(0..5, Some("p2"))),
            Some(_) => aws_error(400, "ThrottlingException", "Rate exceeded"),
        }
    }))
    .await;
    let mut config = big_scan_config(&fake.endpoint);
    config.probes.throttle_backoff_initial_ms = 20;
    config.probes.throttle_backoff_max_ms = 100;
    let result = scan(&config, window, Duration::from_millis(800)).await;
    let out = result.tier("smtp-out").unwrap();
    assert_eq!(out.events.len(), 5);
    let error = out.error.as_ref().unwrap();
    // Requests after the first page; the last may still have been in flight at the deadline.
    let sent = calls.load(Ordering::SeqCst) - 1;
    let attempts: u32 = error
        .message
        .strip_prefix("logs:FilterLogEvents on /ecs/cabal-smtp-out: throttled by AWS (")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", error.message));
    assert!(
        attempts >= 3 && (attempts == sent || attempts + 1 == sent),
        "{attempts} of {sent}"
    );
    assert_eq!(
        error.message,
        format!("logs:FilterLogEvents on /ecs/cabal-smtp-out: throttled by AWS ({attempts} attempts with backoff) until the deadline ran out; the account's API rate is exhausted, other tools may be calling the same API")
    );
    assert!(!error.timed_out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_discovery_against_moto_counts_each_services_running_tasks() {
    let moto = Moto::start();
    let seeded = moto.seed("full", now_ms(now()));
    let config = config_for(&moto.endpoint);
    let clients = clients(&config, fake_credentials()).await;
    let discovery = AwsTaskDiscovery::new(&clients, &config)
        .discover(Deadline::after(Duration::from_secs(20)))
        .await;
    for tier in ["imap", "smtp-in", "smtp-out"] {
        let t = discovery.tier(tier).unwrap();
        assert_eq!(t.error, None, "{tier}");
        let mut arns: Vec<_> = t.tasks.iter().map(|t| t.arn.clone()).collect();
        arns.sort();
        let expected: Vec<String> = seeded["ecs"]["tasks"][tier]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        // moto ignores serviceName: the group check keeps the admin task and the other tiers'
        // tasks out; desiredStatus=RUNNING keeps the stopped smtp-out task out.
        assert_eq!(arns, expected, "{tier}");
        assert!(t.tasks.iter().all(|task| task.containers[0].name == tier));
        // moto knows nothing of ECS Exec: every task reports it disabled.
        assert_eq!(t.exec_ready().count(), 0);
        assert_eq!(t.exec_problems().len(), expected.len());
        assert!(t.exec_problems()[0].starts_with(&format!("ECS Exec not enabled on {tier} (task ")));
    }
    let stopped = seeded["ecs"]["stopped"].as_str().unwrap();
    assert!(!discovery
        .tiers
        .iter()
        .any(|t| t.tasks.iter().any(|task| task.arn == stopped)));
}

fn fake_ecs() -> FakeEcs {
    let task = |id: &str, container: &str, exec: bool, agent: Option<&'static str>| FakeTask {
        id: id.into(),
        desired_status: "RUNNING",
        exec_enabled: exec,
        container: container.into(),
        agent,
    };
    let mut stopped = task("5e5e", "smtp-out", true, Some("STOPPED"));
    stopped.desired_status = "STOPPED";
    FakeEcs {
        region_account: "us-east-1:123456789012",
        cluster: "cabal-mail".into(),
        page_size: 2,
        services: BTreeMap::from([
            (
                "cabal-imap".into(),
                vec![task("1a1a", "imap", true, Some("RUNNING"))],
            ),
            (
                "cabal-smtp-in".into(),
                vec![
                    task("2a2a", "smtp-in", true, Some("RUNNING")),
                    task("2b2b", "smtp-in", false, None),
                    task("2c2c", "smtp-in", true, Some("PENDING")),
                ],
            ),
            (
                "cabal-smtp-out".into(),
                vec![
                    task("3a3a", "smtp-out", true, Some("RUNNING")),
                    stopped,
                    task("3b3b", "smtp-out", true, Some("RUNNING")),
                    task("3c3c", "smtp-out", true, Some("RUNNING")),
                ],
            ),
        ]),
    }
}

#[tokio::test]
async fn task_discovery_reads_every_task_and_its_exec_readiness() {
    let ecs = fake_ecs();
    let handler = ecs.clone();
    let fake = FakeAws::start(Arc::new(move |action, body| handler.handle(action, body))).await;
    let mut config = Config::default();
    config.aws.region = Some("us-east-1".into());
    config
        .aws
        .endpoints
        .insert("ecs".into(), fake.endpoint.clone());
    config.aws.endpoint_url = Some("http://127.0.0.1:9".into());
    let clients = clients(&config, fake_credentials()).await;
    let discovery = AwsTaskDiscovery::new(&clients, &config)
        .discover(Deadline::after(Duration::from_secs(10)))
        .await;

    let ids = |tier: &str| -> Vec<String> {
        discovery
            .tier(tier)
            .unwrap()
            .tasks
            .iter()
            .map(|t| t.id.clone())
            .collect()
    };
    assert_eq!(ids("imap"), ["1a1a"]);
    assert_eq!(ids("smtp-in"), ["2a2a", "2b2b", "2c2c"]);
    assert_eq!(ids("smtp-out"), ["3a3a", "3b3b", "3c3c"]);
    // Each task's zone, as DescribeTasks gives it.
    for tier in &discovery.tiers {
        for task in &tier.tasks {
            assert_eq!(
                task.availability_zone.as_deref(),
                Some(support::fake_aws::fake_zone(&task.id))
            );
        }
    }
    for tier in &discovery.tiers {
        assert_eq!(tier.error, None);
        assert_eq!(tier.step().outcome, StepOutcome::Ok);
    }
    let smtp_in = discovery.tier("smtp-in").unwrap();
    assert_eq!(
        smtp_in
            .exec_ready()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        ["2a2a"]
    );
    assert_eq!(
        smtp_in.exec_problems(),
        [
            "ECS Exec not enabled on smtp-in (task 2b2b): set enable_execute_command = true on service cabal-smtp-in and force a new deployment",
            "ECS Exec agent in container smtp-in on smtp-in (task 2c2c) is PENDING, not RUNNING: check the task role's ssmmessages permissions and the SSM endpoint",
        ]
    );
    assert_eq!(discovery.tier("smtp-out").unwrap().exec_ready().count(), 3);
    assert_eq!(
        discovery.tier("imap").unwrap().tasks[0].arn,
        ecs.arn("1a1a")
    );

    let lists = fake.requests_of("ListTasks");
    // smtp-in and smtp-out have two pages each at 2 per page.
    assert_eq!(lists.len(), 5);
    assert!(lists.iter().all(|r| r["cluster"] == "cabal-mail"
        && r["desiredStatus"] == "RUNNING"
        && r["serviceName"].as_str().unwrap().starts_with("cabal-")));
    let describes = fake.requests_of("DescribeTasks");
    assert_eq!(describes.len(), 3);

    let mut snapshot = Snapshot::new(now());
    discovery.record(&mut snapshot);
    assert_eq!(
        snapshot.tiers["smtp-in"].tasks.as_ref().unwrap(),
        &vec![ecs.arn("2a2a"), ecs.arn("2b2b"), ecs.arn("2c2c")]
    );
    assert!(!snapshot.tiers["smtp-in"].task_details.as_ref().unwrap()[1].exec_enabled);
}

#[tokio::test]
async fn task_discovery_errors_are_precise_per_tier() {
    let fake = FakeAws::start(Arc::new(|action, body| match body["serviceName"].as_str() {
        Some("cabal-smtp-in") => aws_error(
            400,
            "AccessDeniedException",
            "User: arn:aws:sts::123456789012:assumed-role/cabal-triage/x is not authorized to perform: ecs:ListTasks",
        ),
        _ if action == "ListTasks" => aws_error(400, "ClusterNotFoundException", "Cluster not found."),
        _ => aws_error(500, "ServerException", "boom"),
    }))
    .await;
    let mut config = Config::default();
    config.aws.region = Some("us-east-1".into());
    config.aws.endpoint_url = Some(fake.endpoint.clone());
    let clients = clients(&config, fake_credentials()).await;
    let discovery = AwsTaskDiscovery::new(&clients, &config)
        .discover(Deadline::after(Duration::from_secs(10)))
        .await;
    assert_eq!(
        discovery.tier("smtp-in").unwrap().error.as_ref().unwrap().message,
        "ecs:ListTasks on service cabal-smtp-in in cluster cabal-mail: access denied (User: arn:aws:sts::123456789012:assumed-role/cabal-triage/x is not authorized to perform: ecs:ListTasks); grant ecs:ListTasks to the service's role (deploy/iam/cabal-triage-policy.json)"
    );
    assert_eq!(
        discovery.tier("imap").unwrap().error.as_ref().unwrap().message,
        "ecs:ListTasks on service cabal-imap in cluster cabal-mail: not found (ClusterNotFoundException: Cluster not found.); check the names under [cabalmail] and aws.region"
    );
}

/// A credentials provider with nothing to give, as on a host without a role or keys.
#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no role, no profile, no environment keys",
        )))
    }
}

#[tokio::test]
async fn missing_credentials_and_a_dead_endpoint_are_named() {
    // Nothing listens on this port: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = config_for(&endpoint);

    let clients = clients(&config, SharedCredentialsProvider::new(NoCredentials)).await;
    let nat = AwsNatProbe::new(&clients, &config)
        .describe(Deadline::after(Duration::from_secs(5)))
        .await;
    let message = nat.error.unwrap().message;
    assert!(
        message.starts_with("ec2:DescribeInstances: no AWS credentials found ("),
        "{message}"
    );
    assert!(message.contains("run the service with an IAM role"));

    let clients = clients_with(&config, fake_credentials()).await;
    let discovery = AwsTaskDiscovery::new(&clients, &config)
        .discover(Deadline::after(Duration::from_secs(5)))
        .await;
    let imap = discovery.tier("imap").unwrap();
    let message = &imap.error.as_ref().unwrap().message;
    assert!(
        message.starts_with(&format!(
            "ecs:ListTasks on service cabal-imap in cluster cabal-mail: cannot reach the AWS endpoint {endpoint} ("
        )),
        "{message}"
    );
    assert_eq!(imap.step().outcome, StepOutcome::Failed);
}
