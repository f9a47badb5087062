//! The webhook through to a stored report, with every probe talking to real protocols on
//! 127.0.0.1: CloudWatch Logs and EC2 in moto (seeded by `seed_moto.py full`), ECS task
//! discovery in a fake control plane, ECS Exec through the fake ECS endpoint and the fake agent
//! (which runs the configured `mailq` command), the DNSBL lookups against a fake DNS server. The
//! real binary serves; the stored snapshot then replays to the same verdict.

mod support;

#[path = "support/fake_agent.rs"]
mod fake_agent;
#[path = "support/fake_ecs.rs"]
mod fake_ecs;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::Duration;

use support::aws_front::AwsFront;
use support::fake_aws::{FakeEcs as EcsControlPlane, FakeTask};
use support::fake_dns::FakeDns;
use support::moto::Moto;
use support::payload::{alert, notification};
use support::service::{Service, ServiceOptions};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn control_plane(smtp_in_exec: bool) -> EcsControlPlane {
    let task = |id: &str, container: &str, exec: bool| FakeTask {
        id: id.into(),
        desired_status: "RUNNING",
        exec_enabled: exec,
        container: container.into(),
        agent: exec.then_some("RUNNING"),
    };
    EcsControlPlane {
        region_account: "us-east-1:123456789012",
        cluster: "cabal-mail".into(),
        page_size: 100,
        services: BTreeMap::from([
            ("cabal-imap".into(), vec![task("1a1a", "imap", true)]),
            (
                "cabal-smtp-in".into(),
                vec![
                    task("2a2a", "smtp-in", smtp_in_exec),
                    task("2b2b", "smtp-in", smtp_in_exec),
                ],
            ),
            (
                "cabal-smtp-out".into(),
                vec![
                    task("3a3a", "smtp-out", true),
                    task("3b3b", "smtp-out", true),
                ],
            ),
        ]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_to_stored_report_with_moto_ecs_exec_and_dns() {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let seeded = moto.seed("full", now_ms);
    assert_eq!(seeded["smtp-out"]["deferred"], 170);

    let dir = tempfile::tempdir().unwrap();
    for (tier, text) in [
        ("smtp-out", "\t\tTotal requests: 42\n"),
        ("smtp-in", "Mail queue is empty\n"),
        ("imap", "Mail queue is empty\n"),
    ] {
        std::fs::write(dir.path().join(format!("mailq-{tier}")), text).unwrap();
    }
    let exec = fake_ecs::FakeEcs::start(fake_ecs::EcsBehaviour::default()).await;
    let front = AwsFront::start(
        &moto.endpoint,
        &exec.endpoint,
        control_plane(false),
        Duration::ZERO,
    )
    .await;
    let dns = FakeDns::start(HashMap::new()).await;
    let mailq = format!("cat {}/mailq-$FAKE_ECS_CONTAINER", dir.path().display());
    let options = ServiceOptions::default()
        .with("CABAL_TRIAGE_AWS_ENDPOINT_URL", &front.endpoint)
        .with("CABAL_TRIAGE_AWS_REGION", "us-east-1")
        .with("AWS_ACCESS_KEY_ID", "testing")
        .with("AWS_SECRET_ACCESS_KEY", "testing")
        .with("CABAL_TRIAGE__EXEC__MAILQ_COMMAND", &mailq)
        .with("CABAL_TRIAGE_DNSBL_NAMESERVERS", &dns.addr.to_string())
        // The follow-up checks, pointed at what this machine has: localhost resolves, the
        // spool is the filesystem of /, /bin/sh stands in for procmail.
        .with("CABAL_TRIAGE__RUNBOOKS__EGRESS_CHECK_HOST", "localhost")
        .with("CABAL_TRIAGE__RUNBOOKS__SPOOL_PATH", "/")
        .with("CABAL_TRIAGE__RUNBOOKS__PROCMAIL_PATH", "/bin/sh");
    let service = Service::start_in(dir.path(), options).await;

    let starts_at = (now - time::Duration::minutes(5)).format(&Rfc3339).unwrap();
    let payload = notification(
        "{}:{alertname=\"SendmailDeferredSpike\"}",
        vec![alert(
            "SendmailDeferredSpike",
            "0d0e0f1011121314",
            &starts_at,
            "firing",
            &[],
        )],
    );
    let (status, body) = service.post_alerts(&payload).await;
    assert_eq!(status, 202, "{body}");
    let id = body["episodes"][0]["id"].as_str().unwrap().to_string();
    let episode = service
        .wait_for_states(
            std::slice::from_ref(&id),
            &["triaged", "failed"],
            Duration::from_secs(60),
        )
        .await
        .remove(0);
    assert_eq!(episode["state"], "triaged", "{episode}");
    let report = &episode["report"];
    let verdict = &report["verdict"];
    assert_eq!(verdict["offending_tier"], "smtp-out", "{verdict}");
    assert_eq!(verdict["dsn_class"], "4.7", "{verdict}");
    assert_eq!(verdict["nat_state"], "running", "{verdict}");
    assert_eq!(verdict["action"], "blocklist-check", "{verdict}");
    // smtp-in's queue is unknown (ECS Exec not enabled there): medium, not high.
    assert_eq!(verdict["confidence"], "medium", "{verdict}");

    let out = &report["evidence"]["tiers"]["smtp-out"];
    assert_eq!(out["queue_requests"], 42, "{out}");
    assert_eq!(out["deferred_lines"], 170, "{out}");
    assert_eq!(report["evidence"]["tiers"]["imap"]["queue_requests"], 0);
    assert!(report["evidence"]["tiers"]["smtp-in"]["queue_requests"].is_null());
    let step = |name: &str| {
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {}", report["steps"]))
            .clone()
    };
    assert_eq!(step("mailq smtp-out")["outcome"], "ok");
    assert_eq!(step("mailq smtp-in")["outcome"], "failed");
    assert!(step("mailq smtp-in")["error"]
        .as_str()
        .unwrap()
        .contains("ECS Exec not enabled on smtp-in"));
    for name in [
        "log scan imap",
        "log scan smtp-in",
        "log scan smtp-out",
        "nat",
        "dnsbl",
    ] {
        assert_eq!(step(name)["outcome"], "ok", "{name}: {}", step(name));
    }
    // Every exec-ready task ran mailq, the others were not asked.
    let tasks: Vec<String> = exec
        .requests()
        .iter()
        .map(|r| {
            r["task"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    let mut sorted = tasks.clone();
    sorted.sort();
    // One session per task: mailq, and in the same session the tier's follow-up check.
    assert_eq!(sorted, vec!["1a1a", "3a3a", "3b3b"]);
    let details = &report["evidence"]["tier_details"];
    for check in details["smtp-out"]["egress_checks"].as_array().unwrap() {
        assert_eq!(check["dns"], "ok", "{check}");
        assert_eq!(check["address"], "127.0.0.1", "{check}");
    }
    assert_eq!(
        details["smtp-out"]["egress_checks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let local = &details["imap"]["local_checks"][0];
    assert_eq!(local["procmail"], "executable", "{local}");
    assert_eq!(local["spool"]["mounted_on"], "/", "{local}");
    assert!(
        details["smtp-in"].get("relay_checks").is_none(),
        "not run where ECS Exec is off"
    );
    assert!(exec.agent.records().iter().all(|r| r.violations.is_empty()));

    // The snapshot is exposed at the top level and replays to the same verdict.
    let snapshot = &episode["evidence_snapshot"];
    assert!(
        snapshot["tiers"]["smtp-out"]["exec"].is_array(),
        "{snapshot}"
    );
    let egress: Vec<&serde_json::Value> = snapshot["tiers"]["smtp-out"]["exec"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["probe"] == "egress")
        .collect();
    assert_eq!(egress.len(), 2, "{snapshot}");
    assert!(egress[0]["output"]
        .as_str()
        .unwrap()
        .contains("dns=ok 127.0.0.1"));
    assert!(report.get("evidence_snapshot").is_none());
    let snapshot_file = dir.path().join("snapshot.json");
    std::fs::write(&snapshot_file, snapshot.to_string()).unwrap();
    let payload_file = dir.path().join("payload.json");
    std::fs::write(&payload_file, &payload).unwrap();
    let output = Command::new(support::service::binary())
        .args(["triage", "--format", "json", "--alert"])
        .arg(&payload_file)
        .arg("--replay")
        .arg(&snapshot_file)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let replayed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(replayed["verdict"], *verdict);
    assert_eq!(replayed["evidence"]["tiers"], report["evidence"]["tiers"]);
    // The first episode had no history; the next one of the same alert counts it, with its
    // verdict's action, and the count is stored with its snapshot.
    assert_eq!(report["evidence"]["history"]["episodes"], 0, "{report}");
    let later = (now - time::Duration::minutes(2)).format(&Rfc3339).unwrap();
    let second = notification(
        "{}:{alertname=\"SendmailDeferredSpike\"}",
        vec![alert(
            "SendmailDeferredSpike",
            "0d0e0f1011121315",
            &later,
            "firing",
            &[],
        )],
    );
    let (status, body) = service.post_alerts(&second).await;
    assert_eq!(status, 202, "{body}");
    let second_id = body["episodes"][0]["id"].as_str().unwrap().to_string();
    let episode = service
        .wait_for_states(
            std::slice::from_ref(&second_id),
            &["triaged", "failed"],
            Duration::from_secs(60),
        )
        .await
        .remove(0);
    let history = &episode["report"]["evidence"]["history"];
    assert_eq!(history["episodes"], 1, "{history}");
    assert_eq!(history["by_action"]["blocklist-check"], 1, "{history}");
    assert_eq!(
        episode["evidence_snapshot"]["history"]["episodes"], 1,
        "{}",
        episode["evidence_snapshot"]
    );
    assert!(episode["report"]["verdict"]["summary"]
        .as_str()
        .unwrap()
        .contains("The ledger holds 1 earlier SendmailDeferredSpike episode from the last 7 days, 1 of them blocklist-check."));
    drop(service);
}
