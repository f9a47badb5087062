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
