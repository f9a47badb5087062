//! The command line through the real binary: `check-config` and exit codes.

mod support;

use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let output = Command::new(support::service::binary())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run cabal-triage");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_masked() {
    let (code, stdout, stderr) = run(
        &["check-config"],
        &[
            (
                "CABAL_TRIAGE_WEBHOOK_TOKEN",
                "super-secret-token-0123456789",
            ),
            ("CABAL_TRIAGE_SLACK_BOT_TOKEN", "xoxb-secret-slack"),
            ("CABAL_TRIAGE_SLACK_CHANNEL", "C0123"),
            ("CABAL_TRIAGE_LISTEN", "127.0.0.1:9999"),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("listen = \"127.0.0.1:9999\""), "{stdout}");
    assert!(stdout.contains("channel = \"C0123\""), "{stdout}");
    assert!(!stdout.contains("super-secret") && !stderr.contains("super-secret"));
    assert!(!stdout.contains("xoxb-secret") && !stderr.contains("xoxb-secret"));
    assert!(stdout.contains("\"***\""), "{stdout}");
}

#[test]
fn check_config_of_the_shipped_file_warns_that_serve_needs_a_secret() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/cabal-triage.toml");
    let (code, _, stderr) = run(&["check-config", "--config", path], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("serve` would refuse to start"), "{stderr}");
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[worker]\nconcurrency = 0\n").unwrap();
    let (code, _, stderr) = run(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("worker.concurrency"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one-line error: {stderr}");

    std::fs::write(&path, "[server]\nlisten = 5\n").unwrap();
    let (code, _, stderr) = run(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("listen"), "{stderr}");

    let (code, _, stderr) = run(
        &["check-config", "--config", "/nonexistent/cabal.toml"],
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("/nonexistent/cabal.toml"), "{stderr}");

    std::fs::write(&path, "\u{0}\u{1}\u{ff}binary").unwrap();
    let (code, _, _) = run(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2));
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = run(&["no-such-command"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    let (code, stdout, _) = run(&["--help"], &[]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("serve"));
}

/// `healthcheck` (the container health check of the distroless image) exits 0 against a
/// running service and 1, with a message naming the URL, when nothing answers or the answer is
/// not 2xx.
#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_exits_0_against_a_running_service_and_1_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let service = support::service::Service::start_in(
        dir.path(),
        support::service::ServiceOptions::default(),
    )
    .await;
    let url = format!("{}/healthz", service.base);
    let (code, _, stderr) = run(&["healthcheck", "--url", &url], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    // Without --url: the port of CABAL_TRIAGE_LISTEN on the loopback.
    let (code, _, stderr) = run(&["healthcheck"], &[("CABAL_TRIAGE_LISTEN", &service.addr)]);
    assert_eq!(code, Some(0), "{stderr}");
    // A path the service answers 404 for.
    let missing = format!("{}/no-such-path", service.base);
    let (code, _, stderr) = run(&["healthcheck", "--url", &missing], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    drop(service);
    // Nothing listening any more.
    let (code, _, stderr) = run(&["healthcheck", "--url", &url, "--timeout", "2"], &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
}

/// `serve` with `args` and `env` (plus a ledger in a temporary directory and the settings every
/// test service has); returns its stderr lines up to the first one `until` accepts (or all of
/// them when it exits first), and kills it.
fn serve_until(args: &[&str], env: &[(&str, &str)], until: impl Fn(&str) -> bool) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.db").display().to_string();
    let mut child = Command::new(support::service::binary())
        .arg("serve")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CABAL_TRIAGE_WEBHOOK_TOKEN", support::service::TOKEN)
        .env("CABAL_TRIAGE_AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CABAL_TRIAGE_LEDGER", &ledger)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start cabal-triage");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = until(&line);
                lines.push(line);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn serve_listen_flag_overrides_the_configured_address() {
    // The configured address is taken: only the flag lets the service start.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let lines = serve_until(
        &["--listen", "127.0.0.1:0"],
        &[("CABAL_TRIAGE_LISTEN", &taken_addr)],
        |l| l.starts_with("cabal-triage listening on "),
    );
    let line = lines.last().unwrap();
    let addr = line
        .strip_prefix("cabal-triage listening on ")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_ne!(addr, taken_addr);
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    // Without the flag the configured (taken) address is used and the start fails.
    let lines = serve_until(&[], &[("CABAL_TRIAGE_LISTEN", &taken_addr)], |l| {
        l.starts_with("cabal-triage listening on ")
    });
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with("cabal-triage listening on ")),
        "{lines:?}"
    );
    // A malformed flag is bad usage.
    let (code, _, stderr) = run(
        &["serve", "--listen", "nowhere"],
        &[("CABAL_TRIAGE_WEBHOOK_TOKEN", support::service::TOKEN)],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn json_log_mode_writes_only_json_to_stderr() {
    let lines = serve_until(
        &["--listen", "127.0.0.1:0"],
        &[("CABAL_TRIAGE_LOG_FORMAT", "json")],
        |l| l.contains("cabal-triage listening"),
    );
    assert!(
        lines.iter().any(|l| l.contains("cabal-triage listening")),
        "{lines:?}"
    );
    for line in &lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if event["message"] == "cabal-triage listening" {
            assert!(event["listen"].as_str().unwrap().starts_with("127.0.0.1:"));
        }
    }
}

#[test]
fn config_file_may_come_from_cabal_triage_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("triage.toml");
    std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:7777\"\n").unwrap();
    let path = file.display().to_string();
    let (code, stdout, stderr) = run(&["check-config"], &[("CABAL_TRIAGE_CONFIG", &path)]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("listen = \"127.0.0.1:7777\""), "{stdout}");
    // --config wins over the variable; a missing file is named.
    let missing = dir.path().join("missing.toml").display().to_string();
    let (code, _, stderr) = run(
        &["check-config", "--config", &missing],
        &[("CABAL_TRIAGE_CONFIG", &path)],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
}
