//! `cabal-triage parse maillog|mailq` through the real binary: output contract, standard input,
//! unreadable and hostile input, exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The binary under test. `CABAL_TRIAGE_TEST_BIN` overrides it: the build directory is shared
/// between worktrees, so a copy taken right after the build guards against another build
/// replacing the binary mid-run.
fn bin() -> String {
    std::env::var("CABAL_TRIAGE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_cabal-triage").to_string())
}
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        // A child that rejects its arguments exits without reading: that is its answer.
        if let Err(e) = pipe.write_all(input) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    child.wait_with_output().unwrap()
}

fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .expect("output is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every output line is JSON"))
        .collect()
}

#[test]
fn maillog_file_gives_one_object_per_delivery_line() {
    let path = format!("{FIXTURES}/maillog/source-formats.log");
    let output = run(&["parse", "maillog", &path, "--format", "json"], None);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let records = json_lines(&output);
    let text = std::fs::read_to_string(&path).unwrap();
    let expected = text.lines().filter(|l| l.contains(": to=")).count();
    assert_eq!(records.len(), expected);
    let first = &records[0];
    assert_eq!(first["line"], 1);
    assert_eq!(first["queue_id"], "5ASKE3aB000812");
    assert_eq!(first["status"], "deferred");
    assert_eq!(first["dsn"], "4.7.28");
    assert_eq!(first["dsn_class"], "4.7");
    assert_eq!(first["category"], "policy");
    assert_eq!(first["recipient_domain"], "gmail.com");
    assert_eq!(first["provider"], "google");
    assert_eq!(first["relay"], "gmail-smtp-in.l.google.com");
    assert!(first["reply"].as_str().unwrap().starts_with("421-4.7.28 "));
    assert_eq!(first["reply_dsn"], "4.7.28");
    // Line numbers are the input's, in order.
    let lines: Vec<u64> = records
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert!(lines.windows(2).all(|w| w[0] < w[1]));
    // Every status of the contract, and no other.
    for r in &records {
        let status = r["status"].as_str().unwrap();
        assert!(["sent", "deferred", "bounced", "other"].contains(&status));
        assert_eq!(r["dsn"].is_null(), r["dsn_class"].is_null());
    }
}

#[test]
fn maillog_from_standard_input_skips_other_programs() {
    let noise = std::fs::read(format!("{FIXTURES}/maillog/noise.log")).unwrap();
    let output = run(&["parse", "maillog", "-"], Some(&noise));
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    let line = b"Nov 28 20:14:03 h sm-mta[1]: Q0000001: to=<a@hotmail.com>, mailer=esmtp, pri=1, relay=[IPv6:::1], dsn=5.7.1, stat=Service unavailable\n";
    let output = run(&["parse", "maillog", "-"], Some(line));
    let records = json_lines(&output);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], "bounced");
    assert_eq!(records[0]["provider"], "microsoft");
    assert_eq!(records[0]["relay"], "[IPv6:::1]");
}

#[test]
fn invalid_utf8_and_huge_lines_are_not_a_crash() {
    let mut input = Vec::new();
    input.extend_from_slice(b"\xff\xfe garbage \xc3\n");
    input.extend_from_slice(
        b"Q0000001: to=<\xe9t\xe9@gmail.com>, dsn=4.7.1, stat=Deferred: 451 4.7.1 \xff\n",
    );
    input.extend(std::iter::repeat_n(b'x', 3 << 20));
    input.extend_from_slice(b"to=\n");
    input.extend_from_slice(b"Q0000002: to=<a@b.example>, stat=Sent\n");
    input.extend(std::iter::repeat_n(b'y', 5 << 20)); // longer than the line cap, no newline
    let output = run(&["parse", "maillog", "-"], Some(&input));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records = json_lines(&output);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["line"], 2);
    assert_eq!(records[0]["provider"], "google");
    assert_eq!(records[0]["reply_dsn"], "4.7.1");
    assert_eq!(records[1]["line"], 4);
    assert_eq!(records[1]["status"], "sent");
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let output = run(&["parse", "maillog", "/nonexistent/maillog"], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/maillog"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // A directory opens but cannot be read: the error names the file and the line.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let output = run(&["parse", "maillog", &path], None);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("{path}:1:")), "{stderr}");
    let output = run(&["parse", "mailq", &path], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&format!("{path}:1:")));
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(run(&["parse", "maillog"], None).status.code(), Some(2));
    assert_eq!(
        run(&["parse", "maillog", "x", "--format", "yaml"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run(&["parse", "nothing", "x"], None).status.code(), Some(2));
    let output = run(
        &["parse", "maillog", "-", "--config", "/nonexistent.toml"],
        Some(b""),
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn config_providers_extend_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[providers]\nextra = { \"example.net\" = \"someprovider\" }\n",
    )
    .unwrap();
    let line = b"Q0000001: to=<a@example.net>, dsn=4.7.1, stat=Deferred: 451 4.7.1 later\n";
    let output = run(
        &[
            "parse",
            "maillog",
            "-",
            "--config",
            config.to_str().unwrap(),
        ],
        Some(line),
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(json_lines(&output)[0]["provider"], "someprovider");
}

#[test]
fn mailq_outputs() {
    let output = run(
        &["parse", "mailq", "-"],
        Some(b"\t\tTotal requests: 42\r\n"),
    );
    assert_eq!(output.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["total_requests"], 42);
    assert!(value["queues"].as_array().unwrap().is_empty());

    let output = run(
        &["parse", "mailq", "-"],
        Some(b"sh: 1: mailq: not found\r\n"),
    );
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(value["total_requests"].is_null());

    let path = format!("{FIXTURES}/mailq/debian-sections.txt");
    let output = run(&["parse", "mailq", &path], None);
    assert_eq!(output.status.code(), Some(0));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["total_requests"], 2);
    assert_eq!(value["queues"][1]["section"], "MTA");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("alice@"), "local parts are redacted: {text}");
    let output = run(&["parse", "mailq", &path, "--show-local-parts"], None);
    assert!(String::from_utf8_lossy(&output.stdout).contains("alice@"));

    let output = run(&["parse", "mailq", "/nonexistent/mailq.txt"], None);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn maillog_redacts_reply_and_relay_unless_local_parts_are_shown() {
    let line = b"Nov 28 20:14:03 h sm-mta[1]: Q0000001: to=<jane.doe@example.com>, mailer=esmtp, pri=1, relay=postmaster@mx.example.com. [192.0.2.1], dsn=5.1.1, reply=550 5.1.1 <jane.doe@example.com>: Recipient address rejected, stat=User unknown\n";
    let redacted = run(&["parse", "maillog", "-"], Some(line));
    assert!(redacted.status.success());
    let records = json_lines(&redacted);
    assert_eq!(
        records[0]["reply"],
        "550 5.1.1 <j***@example.com>: Recipient address rejected"
    );
    assert_eq!(records[0]["relay"], "p***@mx.example.com");
    assert!(!String::from_utf8_lossy(&redacted.stdout).contains("jane.doe"));
    let shown = run(&["parse", "maillog", "--show-local-parts", "-"], Some(line));
    let records = json_lines(&shown);
    assert_eq!(
        records[0]["reply"],
        "550 5.1.1 <jane.doe@example.com>: Recipient address rejected"
    );
    assert_eq!(records[0]["relay"], "postmaster@mx.example.com");
}
