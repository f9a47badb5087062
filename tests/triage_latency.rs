//! The measurement behind `bench/triage-latency.sh` (ignored in normal runs): one real
//! `cabal-triage triage` (the binary, against AWS endpoints) with every AWS call delayed by
//! `BENCH_LATENCY_MS` at the loopback front and every output frame of the fake ECS Exec agent
//! delayed as much. It prints one JSON line (`BENCH {...}`) with the triage's wall time and, per
//! chain of dependent calls, how many delayed calls and frames it took in this run; the script
//! turns those into the critical path and the sequential sum and prints the ratios.

mod support;

#[path = "support/fake_agent.rs"]
mod fake_agent;
#[path = "support/fake_ecs.rs"]
mod fake_ecs;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

use support::aws_front::{AwsFront, ExecUpstream};
use support::fake_aws::{FakeEcs as EcsControlPlane, FakeTask};
use support::fake_dns::FakeDns;
use support::moto::Moto;
use support::payload::{alert, notification};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run by bench/triage-latency.sh"]
async fn triage_latency() {
    let latency = Duration::from_millis(env_number("BENCH_LATENCY_MS", 50));
    let counts = [
        ("imap", 1u64),
        ("smtp-in", env_number("BENCH_SMTP_IN_TASKS", 2)),
        ("smtp-out", env_number("BENCH_SMTP_OUT_TASKS", 3)),
    ];
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let now = OffsetDateTime::now_utc();
    moto.seed("full", (now.unix_timestamp_nanos() / 1_000_000) as i64);

    let dir = tempfile::tempdir().unwrap();
    for (tier, depth) in [("smtp-out", 42), ("smtp-in", 0), ("imap", 0)] {
        std::fs::write(
            dir.path().join(format!("mailq-{tier}")),
            format!("Total requests: {depth}\n"),
        )
        .unwrap();
    }
    let mut services = BTreeMap::new();
    for (tier, n) in counts {
        let tasks: Vec<FakeTask> = (0..n)
            .map(|k| {
                let id = format!("{}{k:04x}", tier.replace('-', ""));
                FakeTask {
                    id,
                    desired_status: "RUNNING",
                    exec_enabled: true,
                    container: tier.into(),
                    agent: Some("RUNNING"),
                }
            })
            .collect();
        services.insert(format!("cabal-{tier}"), tasks);
    }
    let control = EcsControlPlane {
        region_account: "us-east-1:123456789012",
        cluster: "cabal-mail".into(),
        page_size: 100,
        services,
    };
    // The fake agent answers from outputs captured now, by running the mail-queue command once
    // per task with that task's environment, unless BENCH_AGENT_COMMANDS=spawn (a process per
    // session, as the other tests do; on 2 cores that CPU lands in the wall time).
    let mailq = format!("cat {}/mailq-$FAKE_ECS_CONTAINER", dir.path().display());
    let prepared = match std::env::var("BENCH_AGENT_COMMANDS").as_deref() {
        Ok("spawn") => None,
        Ok("prepared") | Err(_) => Some(std::sync::Arc::new(
            fake_agent::PreparedOutputs::capture(prepared_runs(&mailq, &control)).await,
        )),
        Ok(other) => panic!("BENCH_AGENT_COMMANDS={other}: expected spawn or prepared"),
    };
    let behaviour = fake_ecs::EcsBehaviour {
        script: fake_agent::AgentScript {
            latency,
            prepared: prepared.clone(),
            ..fake_agent::AgentScript::default()
        },
        ..fake_ecs::EcsBehaviour::default()
    };
    let exec = fake_ecs::FakeEcs::start(behaviour).await;
    let front = AwsFront::start_with(
        &moto.endpoint,
        ExecUpstream::InProcess(exec.router()),
        control,
        latency,
    )
    .await;
    let dns = FakeDns::start(HashMap::new()).await;

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
    let payload_file = dir.path().join("payload.json");
    std::fs::write(&payload_file, &payload).unwrap();
    let started = Instant::now();
    let output = Command::new(support::service::binary())
        .args(["triage", "--format", "json", "--alert"])
        .arg(&payload_file)
        .env_clear()
        .env("CABAL_TRIAGE_AWS_ENDPOINT_URL", &front.endpoint)
        .env("CABAL_TRIAGE_AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("CABAL_TRIAGE__EXEC__MAILQ_COMMAND", &mailq)
        .env("CABAL_TRIAGE_DNSBL_NAMESERVERS", dns.addr.to_string())
        .envs(check_settings().iter().map(|(k, v)| (*k, *v)))
        .env(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .output()
        .unwrap();
    let process_ms = started.elapsed().as_millis();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        report["verdict"]["offending_tier"], "smtp-out",
        "{}",
        report["verdict"]
    );
    let at = |key: &str| OffsetDateTime::parse(report[key].as_str().unwrap(), &Rfc3339).unwrap();
    let wall_ms = (at("finished_at") - at("started_at")).whole_milliseconds();

    // Delayed calls per chain of this run.
    let calls = front.calls();
    let count = |action: &str| calls.iter().filter(|c| c.action == action).count() as u64;
    let records = exec.agent.records();
    if prepared.is_some() {
        // Every session must have been answered from the table: a miss spawns a process and
        // changes what is measured.
        let spawned = records.iter().filter(|r| !r.prepared_output).count();
        assert_eq!(
            spawned, 0,
            "sessions not answered from the prepared outputs"
        );
    }
    let frames: Vec<u64> = records.iter().map(|r| r.output_frames_sent).collect();
    let max_frames = frames.iter().copied().max().unwrap_or(0);
    let tiers = counts.len() as u64;
    // Per tier: ListTasks pages, then DescribeTasks, then ExecuteCommand and the session's output
    // frames (every task of a tier in parallel). The front cannot tell tiers apart in ListTasks
    // answers, so pages are averaged per tier (one page each here: page_size 100).
    let exec_chain = count("ecs:ListTasks").div_ceil(tiers)
        + count("ecs:DescribeTasks").div_ceil(tiers)
        + 1
        + max_frames;
    let logs_chain = count("logs:FilterLogEvents").div_ceil(tiers);
    // The NAT's four reads side by side, then DescribeSubnets for the zones.
    let nat_chain = [
        "ec2:DescribeInstances",
        "ec2:DescribeNatGateways",
        "ec2:DescribeRouteTables",
        "ec2:DescribeAddresses",
    ]
    .into_iter()
    .map(count)
    .max()
    .unwrap_or(0)
        + count("ec2:DescribeSubnets");
    let delayed_total = calls.len() as u64 + frames.iter().sum::<u64>();
    println!(
        "BENCH {}",
        serde_json::json!({
            "latency_ms": latency.as_millis() as u64,
            "tasks": counts.iter().map(|(t, n)| (t.to_string(), *n)).collect::<BTreeMap<_, _>>(),
            "wall_ms": wall_ms,
            "process_ms": process_ms,
            "chains": {"tasks_then_exec": exec_chain, "logs": logs_chain, "nat_then_dnsbl": nat_chain},
            "delayed_total": delayed_total,
            "calls": calls.iter().fold(BTreeMap::<String, u64>::new(), |mut m, c| {
                *m.entry(c.action.clone()).or_default() += 1;
                m
            }),
            "exec_sessions": frames.len(),
            "agent_commands": if prepared.is_some() { "prepared" } else { "spawn" },
            "frames_per_session": frames,
        })
    );
    if std::env::var_os("BENCH_TIMELINE").is_some() {
        // Where the time went: every delayed call and exec session relative to the process
        // start, and the report's own steps.
        let at = |t: Instant| t.saturating_duration_since(started).as_millis();
        let mut lines: Vec<(u128, String)> = calls
            .iter()
            .map(|c| (at(c.started), format!("{} -> {} ms", c.action, at(c.ended))))
            .collect();
        for r in exec.agent.records() {
            if let (Some(open), Some(end)) = (r.opened_at, r.finished_at) {
                lines.push((
                    at(open),
                    format!(
                        "exec session ({} frames) -> {} ms",
                        r.output_frames_sent,
                        at(end)
                    ),
                ));
            }
        }
        lines.sort();
        for (start, line) in lines {
            eprintln!("TIMELINE {start:>6} ms  {line}");
        }
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        for step in report["steps"].as_array().into_iter().flatten() {
            eprintln!(
                "STEP {} {} {} ms",
                step["name"], step["outcome"], step["ms"]
            );
        }
    }
}

/// The (command, environment) of every exec session the triage will open: the service wraps the
/// configured command with its sentinel (any nonce: the table masks it), and the fake ECS names
/// the task and container in the environment.
fn prepared_runs(mailq: &str, control: &EcsControlPlane) -> Vec<(String, Vec<(String, String)>)> {
    let wrap = |command: &str| cabal_triage::aws::exec::output::Sentinel::random().wrap(command);
    // The follow-up check each tier runs in mailq's session, as the service builds it from the
    // same settings (`check_settings`).
    let checks = cabal_triage::runbook::followup::commands(&check_config());
    control
        .services
        .values()
        .flatten()
        .map(|task| {
            let env = vec![
                ("FAKE_ECS_TASK".to_string(), task.id.clone()),
                ("FAKE_ECS_CONTAINER".to_string(), task.container.clone()),
            ];
            let command = match checks.iter().find(|(tier, _, _)| *tier == task.container) {
                Some((_, probe, check)) => {
                    cabal_triage::probe::exec::with_section(mailq, probe, check)
                }
                None => mailq.to_string(),
            };
            (wrap(&command), env)
        })
        .collect()
}

/// One of the AWS-only runbooks (no ECS Exec) measured like the sendmail ones: the real binary
/// against moto seeded with `scenario`, behind the front that delays every call by
/// `BENCH_LATENCY_MS`; ListTasks and DescribeTasks answered by `control`.
struct RunbookBench {
    runbook: &'static str,
    alertname: &'static str,
    labels: &'static [(&'static str, &'static str)],
    scenario: &'static str,
    control: EcsControlPlane,
    /// The runbook's chains of dependent calls, as its `CHAINS` constant lists them.
    chain_text: &'static str,
    /// The verdict field and value that show the runbook ran to its end.
    expect: (&'static str, &'static str),
    /// Per chain, its steps in order: an action, and whether its calls go side by side (chunks:
    /// one step) or one after the other (pages: a step each).
    chains: &'static [(&'static str, &'static [(&'static str, Together)])],
}

#[derive(Clone, Copy, PartialEq)]
enum Together {
    SideBySide,
    OneAfterTheOther,
}

/// A chain's delayed steps and its duration as the front saw its calls (each call: the
/// upstream's own time plus the injected latency).
fn chain_cost(steps: &[(&str, Together)], calls: &[support::aws_front::Call]) -> (u64, Duration) {
    let mut count = 0;
    let mut took = Duration::ZERO;
    for (action, together) in steps {
        let durations: Vec<Duration> = calls
            .iter()
            .filter(|c| c.action == *action)
            .map(|c| c.ended - c.started)
            .collect();
        match together {
            Together::SideBySide => {
                count += u64::from(!durations.is_empty());
                took += durations.iter().max().copied().unwrap_or_default();
            }
            Together::OneAfterTheOther => {
                count += durations.len() as u64;
                took += durations.iter().sum::<Duration>();
            }
        }
    }
    (count, took)
}

async fn measure_runbook(bench: RunbookBench) {
    let latency = Duration::from_millis(env_number("BENCH_LATENCY_MS", 50));
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let now = OffsetDateTime::now_utc();
    moto.seed(
        bench.scenario,
        (now.unix_timestamp_nanos() / 1_000_000) as i64,
    );
    // No ECS Exec in these runbooks: nothing listens for ExecuteCommand.
    let front = AwsFront::start_with(
        &moto.endpoint,
        ExecUpstream::Url("http://127.0.0.1:9".into()),
        bench.control,
        latency,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let starts_at = (now - time::Duration::minutes(5)).format(&Rfc3339).unwrap();
    let payload = notification(
        &format!("{{}}:{{alertname=\"{}\"}}", bench.alertname),
        vec![alert(
            bench.alertname,
            "1d1e1f2021222324",
            &starts_at,
            "firing",
            bench.labels,
        )],
    );
    let payload_file = dir.path().join("payload.json");
    std::fs::write(&payload_file, &payload).unwrap();
    let started = Instant::now();
    let output = Command::new(support::service::binary())
        .args(["triage", "--format", "json", "--alert"])
        .arg(&payload_file)
        .env_clear()
        .env("CABAL_TRIAGE_AWS_ENDPOINT_URL", &front.endpoint)
        .env("CABAL_TRIAGE_AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env(
            "RUST_LOG",
            std::env::var("BENCH_RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .output()
        .unwrap();
    let process_ms = started.elapsed().as_millis();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let (field, value) = bench.expect;
    assert_eq!(report["verdict"][field], value, "{}", report["verdict"]);
    assert!(
        report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "ok"),
        "every step answered: {}",
        report["steps"]
    );
    let at = |key: &str| OffsetDateTime::parse(report[key].as_str().unwrap(), &Rfc3339).unwrap();
    let wall_ms = (at("finished_at") - at("started_at")).whole_milliseconds();
    let calls = front.calls();
    let costs: BTreeMap<&str, (u64, Duration)> = bench
        .chains
        .iter()
        .map(|(name, steps)| (*name, chain_cost(steps, &calls)))
        .collect();
    println!(
        "BENCH {}",
        serde_json::json!({
            "runbook": bench.runbook,
            "latency_ms": latency.as_millis() as u64,
            "wall_ms": wall_ms,
            "process_ms": process_ms,
            "chains": costs.iter().map(|(name, (n, _))| (*name, *n)).collect::<BTreeMap<_, _>>(),
            "chains_observed_ms": costs
                .iter()
                .map(|(name, (_, took))| (*name, took.as_millis() as u64))
                .collect::<BTreeMap<_, _>>(),
            "chain_text": bench.chain_text,
            "delayed_total": calls.len() as u64,
            "calls": calls.iter().fold(BTreeMap::<String, u64>::new(), |mut m, c| {
                *m.entry(c.action.clone()).or_default() += 1;
                m
            }),
            "verdict": report["verdict"][field],
        })
    );
    if std::env::var_os("BENCH_TIMELINE").is_some() {
        let at = |t: Instant| t.saturating_duration_since(started).as_millis();
        let mut lines: Vec<(u128, String)> = calls
            .iter()
            .map(|c| (at(c.started), format!("{} -> {} ms", c.action, at(c.ended))))
            .collect();
        lines.sort();
        for (start, line) in lines {
            eprintln!("TIMELINE {start:>6} ms  {line}");
        }
        for step in report["steps"].as_array().into_iter().flatten() {
            eprintln!(
                "STEP {} {} {} ms",
                step["name"], step["outcome"], step["ms"]
            );
        }
    }
}

fn one_service(service: &str, tasks: Vec<FakeTask>) -> EcsControlPlane {
    EcsControlPlane {
        region_account: "us-east-1:123456789012",
        cluster: "cabal-mail".into(),
        page_size: 100,
        services: BTreeMap::from([(service.to_string(), tasks)]),
    }
}

use Together::{OneAfterTheOther, SideBySide};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run by bench/triage-latency.sh"]
async fn triage_latency_imap_auth() {
    measure_runbook(RunbookBench {
        runbook: cabal_triage::runbook::imap_auth::NAME,
        alertname: cabal_triage::runbook::imap_auth::ALERTNAME,
        labels: &[],
        // A non-Lambda interface guessing ten names (support/seed_moto.py).
        scenario: "imap_auth",
        control: one_service(
            "cabal-imap",
            vec![FakeTask {
                id: "9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5".into(),
                desired_status: "RUNNING",
                exec_enabled: true,
                container: "imap".into(),
                agent: Some("RUNNING"),
            }],
        ),
        chain_text: cabal_triage::runbook::imap_auth::CHAINS,
        expect: ("cause", "in-vpc-source"),
        chains: &[
            (
                "logs_then_interfaces",
                &[
                    ("logs:FilterLogEvents", OneAfterTheOther),
                    ("ec2:DescribeNetworkInterfaces", SideBySide),
                ],
            ),
            ("parameter", &[("AmazonSSM:DescribeParameters", SideBySide)]),
            (
                "tasks",
                &[
                    ("ecs:ListTasks", OneAfterTheOther),
                    ("ecs:DescribeTasks", OneAfterTheOther),
                ],
            ),
        ],
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "benchmark: run by bench/triage-latency.sh"]
async fn triage_latency_restart_loop() {
    let stopped = |id: &str| FakeTask {
        id: id.into(),
        desired_status: "STOPPED",
        exec_enabled: true,
        container: "imap".into(),
        agent: None,
    };
    measure_runbook(RunbookBench {
        runbook: cabal_triage::runbook::restart_loop::NAME,
        alertname: cabal_triage::runbook::restart_loop::ALERTNAME,
        labels: &[("service_name", "cabal-imap")],
        // cabal-imap on a new image whose tasks exit (support/seed_moto.py); the stopped tasks
        // from the fake control plane, described as crashes.
        scenario: "restart_loop",
        control: one_service("cabal-imap", vec![stopped("5a5a"), stopped("5b5b")]),
        chain_text: cabal_triage::runbook::restart_loop::gather::CHAINS,
        expect: ("cause", "image-regression"),
        chains: &[
            (
                "services_then_definitions",
                &[
                    ("ecs:DescribeServices", SideBySide),
                    ("ecs:DescribeTaskDefinition", SideBySide),
                ],
            ),
            (
                "stopped_tasks",
                &[
                    ("ecs:ListTasks", OneAfterTheOther),
                    ("ecs:DescribeTasks", OneAfterTheOther),
                ],
            ),
            (
                "container_instances",
                &[
                    ("ecs:ListContainerInstances", OneAfterTheOther),
                    ("ecs:DescribeContainerInstances", OneAfterTheOther),
                ],
            ),
            ("error_lines", &[("logs:FilterLogEvents", OneAfterTheOther)]),
        ],
    })
    .await;
}
/// The follow-up checks pointed at what this machine has (localhost resolves; the spool is /,
/// /bin/sh stands in for procmail), as the service's environment.
fn check_settings() -> [(&'static str, &'static str); 4] {
    [
        ("CABAL_TRIAGE__RUNBOOKS__EGRESS_CHECK_HOST", "localhost"),
        ("CABAL_TRIAGE__RUNBOOKS__RELAY_CHECK_HOST", "localhost"),
        ("CABAL_TRIAGE__RUNBOOKS__SPOOL_PATH", "/"),
        ("CABAL_TRIAGE__RUNBOOKS__PROCMAIL_PATH", "/bin/sh"),
    ]
}

/// The same settings as a configuration.
fn check_config() -> cabal_triage::config::RunbooksConfig {
    cabal_triage::config::RunbooksConfig {
        egress_check_host: "localhost".into(),
        relay_check_host: "localhost".into(),
        spool_path: "/".into(),
        procmail_path: "/bin/sh".into(),
        ..cabal_triage::config::RunbooksConfig::default()
    }
}
