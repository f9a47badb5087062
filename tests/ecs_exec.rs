//! ECS Exec end to end against local fakes on 127.0.0.1: the real aws-sdk-ecs client calls a
//! fake ECS `ExecuteCommand` endpoint, and the client speaks the data channel to a fake agent
//! that runs the command and follows the data-channel protocol (out-of-order and duplicated frames,
//! lost acks, corrupted frames, handshakes, both `channel_closed` shapes, drops and silence).

#[path = "support/fake_agent.rs"]
mod fake_agent;
#[path = "support/fake_ecs.rs"]
mod fake_ecs;

use std::collections::HashSet;
use std::time::Duration;

use cabal_triage::aws::exec::codec::HeaderShape;
use cabal_triage::aws::exec::{
    exec, ChannelTimings, EcsSessionStarter, ExecError, ExecOptions, ExecOutput, ExecRequest,
};
use cabal_triage::aws::probes::exec::{probe_mail_queues, AwsExecProbe};
use cabal_triage::config::{ExecConfig, ProbesConfig};
use cabal_triage::probe::{ExecProbe, TaskTarget, TierTargets};
use cabal_triage::timing::Deadline;
use fake_agent::{AgentScript, Behaviour, Handshake, Order};
use fake_ecs::{EcsBehaviour, FakeEcs};

fn request(command: &str) -> ExecRequest {
    ExecRequest {
        cluster: "cabal-mail".into(),
        task: "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b".into(),
        container: "smtp-out".into(),
        command: command.into(),
    }
}

fn options() -> ExecOptions {
    ExecOptions {
        deadline: Duration::from_secs(10),
        ..ExecOptions::default()
    }
}

async fn run(script: AgentScript, command: &str) -> (FakeEcs, Result<ExecOutput, ExecError>) {
    run_with(
        EcsBehaviour {
            script,
            ..Default::default()
        },
        command,
        options(),
    )
    .await
}

/// The real starter against the fake ECS, with the service's default throttling backoff.
fn starter(ecs: &FakeEcs) -> EcsSessionStarter {
    EcsSessionStarter::new(
        ecs.client(),
        Some(ecs.endpoint.clone()),
        ProbesConfig::default().throttle_backoff(),
    )
}

async fn run_with(
    behaviour: EcsBehaviour,
    command: &str,
    options: ExecOptions,
) -> (FakeEcs, Result<ExecOutput, ExecError>) {
    let ecs = FakeEcs::start(behaviour).await;
    let starter = starter(&ecs);
    let result = exec(&starter, &request(command), &options).await;
    (ecs, result)
}

/// Waits until the fake agent has finished with every session, then asserts the client broke
/// none of the protocol's rules.
async fn assert_clean(ecs: &FakeEcs) -> Vec<fake_agent::SessionRecord> {
    for _ in 0..300 {
        if ecs.agent.records().iter().all(|r| r.finished) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let records = ecs.agent.records();
    for record in &records {
        assert!(
            record.violations.is_empty(),
            "protocol violations: {:?}",
            record.violations
        );
    }
    records
}

#[tokio::test]
async fn normal_run_over_several_frames() {
    let script = AgentScript {
        frame_size: 7,
        ..Default::default()
    };
    let (ecs, result) = run(script, "printf 'Total requests: 42\\n'").await;
    let output = result.unwrap();
    assert_eq!(output.raw, b"Total requests: 42\r\n");
    assert_eq!(output.text, "Total requests: 42\n");
    assert_eq!(output.exit_status, Some(0));
    assert!(!output.truncated);
    assert!(output.warnings.is_empty(), "{:?}", output.warnings);
    let records = assert_clean(&ecs).await;
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert!(record.token_accepted);
    assert!(record.output_frames_sent > 3, "several frames");
    // Every output frame acknowledged exactly once; the Size message sent once as input seq 0.
    let mut acked = record.acked.clone();
    acked.sort();
    acked.dedup();
    assert_eq!(acked.len() as u64, record.output_frames_sent);
    assert_eq!(record.inputs.len(), 1);
    assert_eq!(record.inputs[0].1, 3, "Size");
    // The command reached ECS wrapped with the sentinel, interactive as ECS requires.
    let sent = &ecs.requests()[0];
    assert_eq!(sent["interactive"], true);
    assert_eq!(sent["container"], "smtp-out");
    let command = sent["command"].as_str().unwrap();
    assert!(command.starts_with("/bin/sh -c '(\nprintf '\\''Total requests: 42\\n'\\''\n);"));
}

#[tokio::test]
async fn empty_queue_with_a_multibyte_character_split_across_frames() {
    let script = AgentScript {
        frame_size: 3,
        ..Default::default()
    };
    let (ecs, result) = run(script, "printf 'Mail queue is empty \\342\\234\\223\\n'").await;
    let output = result.unwrap();
    assert_eq!(output.raw, "Mail queue is empty \u{2713}\r\n".as_bytes());
    assert_eq!(output.text, "Mail queue is empty \u{2713}\n");
    assert_eq!(output.exit_status, Some(0));
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn out_of_order_duplicated_and_lost_acks_still_give_byte_exact_output() {
    for (order, duplicate, ignore_first_ack) in [
        (Order::SwapFirstTwo, false, false),
        (Order::Reversed, true, false),
        (Order::Sequential, false, true),
        (Order::Reversed, true, true),
    ] {
        let script = AgentScript {
            frame_size: 5,
            order,
            duplicate,
            ignore_first_ack,
            ..Default::default()
        };
        let (ecs, result) = run(script, "printf 'line one\\nline two\\nline three\\n'").await;
        let output = result.unwrap();
        assert_eq!(
            output.raw, b"line one\r\nline two\r\nline three\r\n",
            "{order:?} duplicate={duplicate} lost ack={ignore_first_ack}"
        );
        assert_eq!(output.exit_status, Some(0));
        let records = assert_clean(&ecs).await;
        if duplicate || ignore_first_ack {
            let record = &records[0];
            assert!(
                record.acked.len() as u64 > record.output_frames_sent,
                "duplicates were acknowledged again: {:?}",
                record.acked
            );
        }
    }
}

#[tokio::test]
async fn a_corrupted_frame_is_not_acknowledged_and_its_good_copy_is_used() {
    let script = AgentScript {
        frame_size: 4,
        corrupt_first: true,
        ..Default::default()
    };
    let (ecs, result) = run(script, "printf 'abcdefgh\\n'").await;
    assert_eq!(result.unwrap().raw, b"abcdefgh\r\n");
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn large_output_is_capped_and_marked_truncated_with_the_exit_status_kept() {
    let options = ExecOptions {
        output_cap: 64 * 1024,
        ..options()
    };
    let behaviour = EcsBehaviour::default();
    let (ecs, result) = run_with(behaviour, "seq 1 40000", options).await;
    let output = result.unwrap();
    assert!(output.truncated);
    assert_eq!(output.raw.len(), 64 * 1024);
    assert!(output.raw.starts_with(b"1\r\n2\r\n3\r\n"));
    assert_eq!(output.exit_status, Some(0));
    assert!(!String::from_utf8_lossy(&output.raw).contains("__ECSX_RC_"));
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn output_exactly_at_the_cap_is_not_truncated() {
    let options = ExecOptions {
        output_cap: 1024,
        ..options()
    };
    // 1022 characters + CR LF = 1024 bytes.
    let (ecs, result) = run_with(
        EcsBehaviour::default(),
        "head -c 1022 /dev/zero | tr '\\0' x; echo",
        options,
    )
    .await;
    let output = result.unwrap();
    assert_eq!(output.raw.len(), 1024);
    assert!(!output.truncated);
    assert_eq!(output.exit_status, Some(0));
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn non_zero_exit_status_is_reported() {
    let (ecs, result) = run(AgentScript::default(), "printf 'oops\\n' >&2; exit 3").await;
    let output = result.unwrap();
    assert_eq!(output.exit_status, Some(3));
    assert_eq!(output.text, "oops\n");
    let (_, result) = run(AgentScript::default(), "mailq-does-not-exist-here").await;
    assert_eq!(result.unwrap().exit_status, Some(127));
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn the_agent_never_answers_and_the_deadline_ends_it() {
    let script = AgentScript {
        behaviour: Behaviour::Silent,
        ..Default::default()
    };
    let options = ExecOptions {
        deadline: Duration::from_millis(800),
        ..options()
    };
    let started = std::time::Instant::now();
    let (_ecs, result) = run_with(
        EcsBehaviour {
            script,
            ..Default::default()
        },
        "true",
        options,
    )
    .await;
    let error = result.unwrap_err();
    assert!(matches!(error, ExecError::Deadline { .. }), "{error}");
    assert!(error.is_deadline());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn silence_after_open_is_a_first_message_timeout() {
    let script = AgentScript {
        behaviour: Behaviour::Silent,
        ..Default::default()
    };
    let options = ExecOptions {
        timings: ChannelTimings {
            first_message_timeout: Duration::from_millis(300),
            ..ChannelTimings::default()
        },
        ..options()
    };
    let (_ecs, result) = run_with(
        EcsBehaviour {
            script,
            ..Default::default()
        },
        "true",
        options,
    )
    .await;
    assert!(
        matches!(result, Err(ExecError::FirstMessageTimeout(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn connection_dropped_mid_stream() {
    let script = AgentScript {
        frame_size: 4,
        behaviour: Behaviour::DropAfterFrames(2),
        ..Default::default()
    };
    let (_ecs, result) = run(script, "printf 'a long line of output\\n'").await;
    let error = result.unwrap_err();
    assert!(
        matches!(error, ExecError::ConnectionLost { received_bytes: 8 }),
        "{error}"
    );
    assert!(error.to_string().contains("dropped"));
}

#[tokio::test]
async fn token_rejected() {
    let behaviour = EcsBehaviour {
        wrong_token: true,
        ..Default::default()
    };
    let (ecs, result) = run_with(behaviour, "true", options()).await;
    let error = result.unwrap_err();
    assert!(matches!(error, ExecError::TokenRejected), "{error}");
    let records = assert_clean(&ecs).await;
    assert!(!records[0].token_accepted);
    assert!(
        !error.to_string().contains("AAEAA"),
        "the token is never shown"
    );
}

#[tokio::test]
async fn kms_handshake_is_refused_with_a_clear_error() {
    let script = AgentScript {
        handshake: Handshake::Kms,
        ..Default::default()
    };
    let (ecs, result) = run(script, "true").await;
    let error = result.unwrap_err();
    let ExecError::KmsRequested { agent_output } = &error else {
        panic!("expected KmsRequested, got {error}");
    };
    assert!(agent_output
        .as_deref()
        .unwrap()
        .contains("KMSEncryption failed on client with status 2"));
    assert!(error.to_string().contains("KMS"));
    let records = assert_clean(&ecs).await;
    assert_eq!(
        records[0].inputs.len(),
        1,
        "only the HandshakeResponse, no Size"
    );
}

#[tokio::test]
async fn handshake_without_kms_then_output_from_seq_2() {
    let script = AgentScript {
        handshake: Handshake::SessionType,
        frame_size: 6,
        withhold_input_ack: Duration::from_millis(500),
        ..Default::default()
    };
    // The command takes longer than the withheld ack, so the client must retransmit meanwhile.
    let (ecs, result) = run(script, "sleep 0.8; printf 'after handshake\\n'").await;
    let output = result.unwrap();
    assert_eq!(output.raw, b"after handshake\r\n");
    let records = assert_clean(&ecs).await;
    let record = &records[0];
    assert_eq!(record.inputs[0].1, 6, "HandshakeResponse first");
    assert_eq!(record.inputs[1].1, 3, "then Size");
    assert!(
        record.input_retransmissions > 0,
        "unacknowledged input was sent again"
    );
}

#[tokio::test]
async fn legacy_channel_closed_and_start_publication_are_handled() {
    let script = AgentScript {
        closed_shape: HeaderShape::Legacy112,
        start_publication: true,
        ..Default::default()
    };
    let (ecs, result) = run(script, "printf 'ok\\n'").await;
    let output = result.unwrap();
    assert_eq!(output.raw, b"ok\r\n");
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn agent_error_after_the_command_is_a_warning() {
    let script = AgentScript {
        closed_output: "unable to generate log data: exec: \"script\": executable file not found"
            .into(),
        ..Default::default()
    };
    let (_ecs, result) = run(script, "printf 'ok\\n'").await;
    let output = result.unwrap();
    assert_eq!(output.exit_status, Some(0));
    assert!(output.warnings[0].contains("script"));
}

#[tokio::test]
async fn exec_not_enabled_is_reported_with_the_fix() {
    let behaviour = EcsBehaviour {
        exec_disabled: HashSet::from([
            "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b".to_string()
        ]),
        ..Default::default()
    };
    let (ecs, result) = run_with(behaviour, "true", options()).await;
    let error = result.unwrap_err();
    assert!(matches!(error, ExecError::ExecNotEnabled { .. }), "{error}");
    assert!(error.to_string().contains("enableExecuteCommand"));
    assert!(ecs.agent.records().is_empty(), "no data channel opened");
}

#[tokio::test]
async fn a_throttled_execute_command_is_retried_like_every_aws_call() {
    let ecs = FakeEcs::start(EcsBehaviour {
        throttle_first: 1,
        ..Default::default()
    })
    .await;
    let config = ExecConfig {
        mailq_command: "printf 'Total requests: 3\\n'".into(),
        ..ExecConfig::default()
    };
    let tiers = vec![TierTargets {
        tier: "smtp-out".into(),
        cluster: "cabal-mail".into(),
        container: "smtp-out".into(),
        tasks: vec![TaskTarget {
            task: "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b".into(),
            exec_enabled: true,
        }],
    }];
    let results = probe_mail_queues(&starter(&ecs), &config, &tiers).await;
    let result = &results["smtp-out"][0];
    assert_eq!(result.error, None, "{result:?}");
    assert_eq!(result.output.as_deref(), Some("Total requests: 3\r\n"));
    assert_eq!(result.exit_status, Some(0));
    assert_eq!(ecs.requests().len(), 2, "throttled once, then started");
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn execute_command_throttled_until_the_deadline_says_so() {
    let (ecs, result) = run_with(
        EcsBehaviour {
            throttle_first: u32::MAX,
            ..Default::default()
        },
        "true",
        ExecOptions {
            deadline: Duration::from_secs(2),
            ..ExecOptions::default()
        },
    )
    .await;
    let error = result.unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("ecs:ExecuteCommand on task arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b in cluster cabal-mail: throttled by AWS"),
        "{message}"
    );
    assert!(
        ecs.requests().len() >= 2,
        "retried: {}",
        ecs.requests().len()
    );
    assert!(ecs.agent.records().is_empty(), "no data channel opened");
}

#[tokio::test]
async fn keep_alive_pings_are_sent() {
    let script = AgentScript {
        frame_size: 2,
        latency: Duration::from_millis(100),
        ..Default::default()
    };
    let options = ExecOptions {
        timings: ChannelTimings {
            ping_interval: Duration::from_millis(100),
            ..ChannelTimings::default()
        },
        ..options()
    };
    let (ecs, result) = run_with(
        EcsBehaviour {
            script,
            ..Default::default()
        },
        "printf 'abcdefgh\\n'",
        options,
    )
    .await;
    result.unwrap();
    let records = assert_clean(&ecs).await;
    assert!(records[0].pings >= 2, "pings: {}", records[0].pings);
}

#[tokio::test]
async fn mail_queue_probe_runs_every_task_in_parallel_under_its_own_deadline() {
    // Each session lasts a few seconds (8-byte frames, 300 ms apart), so parallel sessions overlap
    // even on a loaded machine, and sequential ones could not.
    let script = AgentScript {
        frame_size: 8,
        latency: Duration::from_millis(300),
        ..Default::default()
    };
    let disabled = "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/dead".to_string();
    let ecs = FakeEcs::start(EcsBehaviour {
        script,
        exec_disabled: HashSet::from([disabled.clone()]),
        ..Default::default()
    })
    .await;
    let starter = starter(&ecs);
    let config = ExecConfig {
        mailq_command: "printf 'Total requests: 7\\n'".into(),
        ..ExecConfig::default()
    };
    let task = |id: &str, exec_enabled| TaskTarget {
        task: format!("arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/{id}"),
        exec_enabled,
    };
    let tiers = vec![
        TierTargets {
            tier: "smtp-out".into(),
            cluster: "cabal-mail".into(),
            container: "smtp-out".into(),
            tasks: vec![task("a1", true), task("a2", true)],
        },
        TierTargets {
            tier: "imap".into(),
            cluster: "cabal-mail".into(),
            container: "imap".into(),
            tasks: vec![task("b1", true), task("dead", true), task("off", false)],
        },
    ];
    let results = probe_mail_queues(&starter, &config, &tiers).await;
    assert_eq!(results["smtp-out"].len(), 2);
    for result in results["smtp-out"].iter().chain(&results["imap"][..1]) {
        assert_eq!(result.output.as_deref(), Some("Total requests: 7\r\n"));
        assert_eq!(result.exit_status, Some(0));
        assert_eq!(result.error, None);
        assert_eq!(result.probe, "mailq");
    }
    assert_eq!(results["smtp-out"][0].task, "a1");
    assert!(results["imap"][1]
        .error
        .as_deref()
        .unwrap()
        .contains("enableExecuteCommand"));
    assert!(results["imap"][2]
        .error
        .as_deref()
        .unwrap()
        .contains("not enabled"));
    assert_eq!(ecs.requests().len(), 4, "no call for the task without exec");
    assert_eq!(
        ecs.agent.peak_concurrent_sessions(),
        3,
        "all three sessions at once"
    );
    assert_eq!(
        ecs.requests()[0]["command"]
            .as_str()
            .unwrap()
            .matches("Total requests: 7")
            .count(),
        1
    );
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn probe_deadline_is_per_task() {
    let ecs = FakeEcs::start(EcsBehaviour {
        script: AgentScript {
            behaviour: Behaviour::Silent,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let starter = starter(&ecs);
    let config = ExecConfig {
        task_deadline_secs: 1,
        ..ExecConfig::default()
    };
    let tiers = vec![TierTargets {
        tier: "smtp-in".into(),
        cluster: "cabal-mail".into(),
        container: "smtp-in".into(),
        tasks: vec![
            TaskTarget {
                task: "t1".into(),
                exec_enabled: true,
            },
            TaskTarget {
                task: "t2".into(),
                exec_enabled: true,
            },
        ],
    }];
    let results = probe_mail_queues(&starter, &config, &tiers).await;
    for result in &results["smtp-in"] {
        assert!(result.timed_out, "{result:?}");
        assert!(result.error.as_deref().unwrap().contains("deadline"));
        assert_eq!(result.exit_status, None);
        assert_eq!(result.output, None);
    }
    assert!(ecs.requests()[0]["command"]
        .as_str()
        .unwrap()
        .contains("mailq | tail -1"));
}

#[tokio::test]
async fn a_task_that_hangs_costs_only_its_own_answer() {
    // Two smtp-out tasks share the EFS queue; the agent of the one behind a dead NAT never
    // answers. The triage has 3 s left, less than the per-task deadline (10 s) plus its margin.
    let ecs = FakeEcs::start(EcsBehaviour {
        scripts_by_task: std::collections::HashMap::from([(
            "hang".to_string(),
            AgentScript {
                behaviour: Behaviour::Silent,
                ..Default::default()
            },
        )]),
        ..Default::default()
    })
    .await;
    let probe = AwsExecProbe::new(std::sync::Arc::new(starter(&ecs)), ExecConfig::default());
    let tier = TierTargets {
        tier: "smtp-out".into(),
        cluster: "cabal-mail".into(),
        container: "smtp-out".into(),
        tasks: ["fast", "hang"]
            .into_iter()
            .map(|id| TaskTarget {
                task: format!("arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/{id}"),
                exec_enabled: true,
            })
            .collect(),
    };
    let started = std::time::Instant::now();
    let results = probe
        .run(
            "mailq",
            "printf 'Total requests: 63\\n'",
            &tier,
            Deadline::after(Duration::from_secs(3)),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "bounded by the triage's deadline"
    );
    assert_eq!(results.len(), 2);
    assert_eq!(results[0].task, "fast");
    assert_eq!(results[0].output.as_deref(), Some("Total requests: 63\r\n"));
    assert_eq!(
        (results[0].error.as_deref(), results[0].timed_out),
        (None, false)
    );
    assert_eq!(results[1].task, "hang");
    assert!(results[1].timed_out, "{:?}", results[1]);
    assert_eq!(results[1].output, None);
    let error = results[1].error.as_deref().unwrap();
    assert!(
        error.contains("deadline") || error.contains("did not finish"),
        "{error}"
    );
}

/// The `exec` subcommand, as a process, against the fakes: credentials and region from the
/// environment, the ECS endpoint from `CABAL_TRIAGE_AWS_ENDPOINT_URL`.
async fn cli_exec(ecs: &FakeEcs, args: &[&str]) -> std::process::Output {
    // CABAL_TRIAGE_TEST_BIN: another build of the binary, for when several worktrees share one
    // target directory (its uplifted binary then belongs to whichever built last).
    let binary = std::env::var("CABAL_TRIAGE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_cabal-triage").to_string());
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("exec")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CABAL_TRIAGE_AWS_ENDPOINT_URL", &ecs.endpoint)
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret-test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        );
    command.output().await.unwrap()
}

#[tokio::test]
async fn cli_exec_prints_the_output_and_exits_with_the_command_status() {
    let ecs = FakeEcs::start(EcsBehaviour {
        running_tasks: vec![(
            "cabal-mail".into(),
            "cabal-smtp-out".into(),
            "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b".into(),
        )],
        ..Default::default()
    })
    .await;
    let output = cli_exec(
        &ecs,
        &["--tier", "smtp-out", "--", "printf 'queue\\n';", "exit 4"],
    )
    .await;
    assert_eq!(output.stdout, b"queue\r\n");
    assert_eq!(
        output.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let request = &ecs.requests()[0];
    assert_eq!(
        request["task"],
        "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b"
    );
    assert_eq!(request["container"], "smtp-out");

    let output = cli_exec(&ecs, &["--tier", "imap", "--task", "t9", "--", "true"]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(ecs.requests()[1]["task"], "t9");
    assert_clean(&ecs).await;
}

#[tokio::test]
async fn cli_exec_failures_have_one_line_errors_and_the_contract_exit_codes() {
    let ecs = FakeEcs::start(EcsBehaviour::default()).await;
    let output = cli_exec(&ecs, &["--tier", "nope", "--", "true"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown tier"));
    let output = cli_exec(&ecs, &["--tier", "imap", "--", "true"]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no running task"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1);
}

/// The benchmark's prepared outputs: a captured command is answered with the bytes it printed
/// (and the asking session's sentinel, so its exit status arrives), without a process; anything
/// not captured is still run.
#[tokio::test]
async fn prepared_outputs_answer_as_the_command_would_and_run_anything_else() {
    use cabal_triage::aws::exec::output::Sentinel;
    let command = "printf 'Total requests: 7 on %s\\n' \"$FAKE_ECS_CONTAINER\"; exit 3";
    let env = vec![
        ("FAKE_ECS_CONTAINER".to_string(), "smtp-out".to_string()),
        ("FAKE_ECS_TASK".to_string(), "0a1b".to_string()),
    ];
    let captured = Sentinel::with_nonce("0123456789abcdef").wrap(command);
    let table = fake_agent::PreparedOutputs::capture(vec![(captured, env)]).await;
    let script = AgentScript {
        frame_size: 5,
        prepared: Some(std::sync::Arc::new(table)),
        ..Default::default()
    };
    let (ecs, result) = run(script.clone(), command).await;
    let output = result.unwrap();
    assert_eq!(output.raw, b"Total requests: 7 on smtp-out\r\n");
    assert_eq!(output.exit_status, Some(3));
    let records = assert_clean(&ecs).await;
    assert!(records[0].prepared_output);

    let (ecs, result) = run(script, "printf 'not captured\\n'").await;
    let output = result.unwrap();
    assert_eq!(output.raw, b"not captured\r\n");
    assert_eq!(output.exit_status, Some(0));
    let records = assert_clean(&ecs).await;
    assert!(!records[0].prepared_output);
}

/// The runbook's follow-up checks (`runbook::followup`) through the real client and the fake
/// agent, which splits the wrapped command as the real agent does and runs it: the quoting of
/// the python3 check survives the sentinel wrapper, and what comes back parses.
#[tokio::test]
async fn the_follow_up_checks_run_over_ecs_exec_and_parse() {
    use cabal_triage::aws::probes::exec::run_everywhere;
    use cabal_triage::runbook::followup::{
        connect_command, local_command, parse_connect, parse_local, DnsCheck, ProcmailCheck,
        TcpCheck, EGRESS, LOCAL,
    };
    let ecs = FakeEcs::start(EcsBehaviour::default()).await;
    let starter = starter(&ecs);
    let config = ExecConfig::default();
    let tiers = vec![TierTargets {
        tier: "smtp-out".into(),
        cluster: "cabal-mail".into(),
        container: "smtp-out".into(),
        tasks: vec![TaskTarget {
            task: "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b".into(),
            exec_enabled: true,
        }],
    }];
    let python = std::process::Command::new("python3").arg("-V").output();
    if python.is_ok() {
        for (host, dns) in [
            ("localhost", DnsCheck::Ok),
            ("no-such-host.invalid", DnsCheck::Failed),
        ] {
            let results =
                run_everywhere(&starter, &connect_command(host, 2), EGRESS, &config, &tiers).await;
            let result = &results["smtp-out"][0];
            assert_eq!(result.error, None, "{result:?}");
            let check = parse_connect(&result.task, result.output.as_deref().unwrap());
            assert_eq!(check.dns, dns, "{host}: {result:?}");
            if dns == DnsCheck::Ok {
                assert_eq!(check.address.as_deref(), Some("127.0.0.1"));
                assert_ne!(check.tcp, TcpCheck::Unknown, "{result:?}");
            }
        }
    }
    let results = run_everywhere(
        &starter,
        &local_command("/", "/bin/sh"),
        LOCAL,
        &config,
        &tiers,
    )
    .await;
    let result = &results["smtp-out"][0];
    let check = parse_local(&result.task, result.output.as_deref().unwrap_or_default());
    assert_eq!(check.procmail, ProcmailCheck::Executable, "{result:?}");
    assert_eq!(
        check.spool.map(|s| s.mounted_on),
        Some("/".to_string()),
        "{result:?}"
    );
    assert_clean(&ecs).await;
}
