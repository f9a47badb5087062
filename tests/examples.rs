//! The example incidents of `examples/` through the real binary: `triage --alert payload.json
//! --replay snapshot.json --format json` must reach each incident's expected verdict, and the
//! other formats and the error paths must behave as `docs/contracts.md` ("CLI") says.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("examples/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn triage(dir: &Path, format: &str) -> (Option<i32>, String, String) {
    let output = Command::new(support::service::binary())
        .args(["triage", "--alert"])
        .arg(dir.join("payload.json"))
        .arg("--replay")
        .arg(dir.join("snapshot.json"))
        .args(["--format", format])
        .env_clear()
        .output()
        .expect("run cabal-triage");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_example_reaches_its_expected_verdict() {
    let dirs = examples();
    assert!(dirs.len() >= 6, "six incidents at least: {dirs:?}");
    for dir in dirs {
        let (code, stdout, stderr) = triage(&dir, "json");
        assert_eq!(code, Some(0), "{}: {stderr}", dir.display());
        let report: serde_json::Value = serde_json::from_str(&stdout).expect("report JSON");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        for (field, want) in expected["verdict"].as_object().unwrap() {
            assert_eq!(
                &report["verdict"][field],
                want,
                "{}: verdict.{field}; summary: {}",
                dir.display(),
                report["verdict"]["summary"]
            );
        }
        // What the summary must say, where the incident is about what is said.
        for needle in expected["summary_contains"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let summary = report["verdict"]["summary"].as_str().unwrap_or_default();
            assert!(
                summary.contains(needle.as_str().unwrap()),
                "{}: summary lacks {needle}: {summary}",
                dir.display()
            );
        }
        // The report of `docs/contracts.md` ("Report"): verdict at the top level, every step,
        // the evidence snapshot.
        for key in [
            "episode",
            "alertname",
            "runbook",
            "evidence",
            "steps",
            "started_at",
        ] {
            assert!(
                report.get(key).is_some(),
                "{}: {key} missing",
                dir.display()
            );
        }
        // The sendmail runbooks run eight steps and more; the others at least one (a label
        // naming no configured service stops at the check).
        let min_steps = if report["runbook"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sendmail")
        {
            8
        } else {
            1
        };
        assert!(
            report["steps"].as_array().unwrap().len() >= min_steps,
            "{}",
            dir.display()
        );
        let snapshot: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("snapshot.json")).unwrap())
                .unwrap();
        assert_eq!(
            report["evidence_snapshot"]["captured_at"],
            snapshot["captured_at"],
            "{}",
            dir.display()
        );
    }
}

/// `triage --format json` of `dir`'s payload over `snapshot`, with extra arguments.
fn replay_json(dir: &Path, snapshot: &Path, extra: &[&str]) -> serde_json::Value {
    let output = Command::new(support::service::binary())
        .args(["triage", "--format", "json", "--alert"])
        .arg(dir.join("payload.json"))
        .arg("--replay")
        .arg(snapshot)
        .args(extra)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Every `@` of `text` whose local part is longer than one character and `***`.
fn whole_addresses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices('@') {
        let local: String = text[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || "._+-=%'".contains(*c))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let shown = local.trim_end_matches('*');
        if shown.chars().count() > 1 {
            found.push(format!("{local}@"));
        }
    }
    found
}

#[test]
fn every_stored_snapshot_is_redacted_and_replays_to_the_same_report() {
    for dir in examples() {
        let original = std::fs::read_to_string(dir.join("snapshot.json")).unwrap();
        let first = replay_json(&dir, &dir.join("snapshot.json"), &[]);
        let stored = first["evidence_snapshot"].to_string();
        // Redacted when captured: no local part of the incident's mail is stored whole. Every
        // sendmail incident has addresses to redact (the others may have none: ECS events).
        let payload = std::fs::read_to_string(dir.join("payload.json")).unwrap();
        if payload.contains("\"Sendmail") {
            assert!(
                !whole_addresses(&original).is_empty(),
                "{}: the example has addresses to redact",
                dir.display()
            );
        }
        let whole = whole_addresses(&stored);
        assert!(
            whole.is_empty(),
            "{}: stored whole: {whole:?}",
            dir.display()
        );
        // Dovecot's login names are stored as pseudonyms only (`a~1f2e3d4c`).
        if payload.contains("\"IMAPAuthFailureSpike") {
            assert!(
                original.contains("user=<") && !login_names(&original).is_empty(),
                "{}: the example has login names",
                dir.display()
            );
            let named = login_names(&stored);
            assert!(
                named.is_empty(),
                "{}: login names stored: {named:?}",
                dir.display()
            );
        }
        // ... and a replay of what was stored reaches the same verdict and evidence.
        let recorded = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(recorded.path(), &stored).unwrap();
        let second = replay_json(&dir, recorded.path(), &[]);
        assert_eq!(first["verdict"], second["verdict"], "{}", dir.display());
        assert_eq!(first["evidence"], second["evidence"], "{}", dir.display());
        assert_eq!(second["evidence_snapshot"].to_string(), stored);
    }
}

#[test]
fn show_local_parts_stores_the_snapshot_as_captured() {
    let dir = examples()
        .into_iter()
        .find(|d| d.ends_with("greylist-storm-one-provider"))
        .unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[privacy]\nshow_local_parts = true\n").unwrap();
    let config_path = config.path().to_str().unwrap();
    let report = replay_json(&dir, &dir.join("snapshot.json"), &["--config", config_path]);
    let stored = report["evidence_snapshot"].to_string();
    let original = std::fs::read_to_string(dir.join("snapshot.json")).unwrap();
    let whole = whole_addresses(&stored);
    assert!(!whole.is_empty(), "{stored}");
    for address in whole {
        assert!(original.contains(&address), "{address}");
    }
}

#[test]
fn text_slack_and_pagerduty_formats() {
    let dir = examples()
        .into_iter()
        .find(|d| d.ends_with("greylist-storm-one-provider"))
        .unwrap();
    let (code, text, _) = triage(&dir, "text");
    assert_eq!(code, Some(0));
    assert!(
        text.contains("action:     blocklist-check (high confidence)"),
        "{text}"
    );
    assert!(text.contains("tier:       smtp-out"), "{text}");
    // Local parts are redacted by default.
    assert!(!text.contains("anna.0@gmail.com"), "{text}");
    let (code, slack, _) = triage(&dir, "slack");
    assert_eq!(code, Some(0));
    let slack: serde_json::Value = serde_json::from_str(&slack).unwrap();
    assert!(slack["blocks"].is_array(), "{slack}");
    let (code, note, _) = triage(&dir, "pagerduty");
    assert_eq!(code, Some(0));
    assert!(note.contains("blocklist-check"), "{note}");
    assert!(note.trim_end().ends_with(']'), "{note}");
}

#[test]
fn bad_input_exits_2_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let example = examples().into_iter().next().unwrap();
    let bad_snapshot = dir.path().join("bad.json");
    std::fs::write(&bad_snapshot, "{\n \"captured_at\": \"yesterday\"\n}").unwrap();
    let not_v4 = dir.path().join("v3.json");
    std::fs::write(&not_v4, r#"{"version": "3", "alerts": []}"#).unwrap();
    let huge = dir.path().join("huge.json");
    std::fs::write(&huge, vec![b' '; 17 * 1024 * 1024]).unwrap();
    let no_runbook = dir.path().join("other.json");
    let mut payload: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example.join("payload.json")).unwrap())
            .unwrap();
    payload["alerts"][0]["labels"]["alertname"] = "NodeHighCPU".into();
    std::fs::write(&no_runbook, payload.to_string()).unwrap();
    let cases: Vec<(PathBuf, PathBuf, &str)> = vec![
        (
            example.join("payload.json"),
            bad_snapshot.clone(),
            "bad.json:2",
        ),
        (not_v4.clone(), example.join("snapshot.json"), "v3.json"),
        (huge.clone(), example.join("snapshot.json"), "huge.json"),
        (
            no_runbook,
            example.join("snapshot.json"),
            "no alert in the payload has a runbook",
        ),
        (
            dir.path().join("absent.json"),
            example.join("snapshot.json"),
            "absent.json",
        ),
    ];
    for (alert, snapshot, needle) in cases {
        let output = Command::new(support::service::binary())
            .arg("triage")
            .arg("--alert")
            .arg(&alert)
            .arg("--replay")
            .arg(&snapshot)
            .env_clear()
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{needle}: {stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn demo_runs_the_pipeline_with_nothing_set_up() {
    let home = tempfile::tempdir().unwrap();
    let output = Command::new(support::service::binary())
        .arg("demo")
        .env_clear()
        .env("HOME", home.path())
        .env("TMPDIR", home.path())
        .current_dir(home.path())
        .output()
        .expect("run cabal-triage demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("POST /api/v1/alerts -> 202 episode ep-"),
        "{stdout}"
    );
    assert!(stdout.contains("episode state: triaged"), "{stdout}");
    assert!(stdout.contains("[demo] step mailq smtp-out"), "{stdout}");
    assert!(stdout.contains("[demo] step dnsbl"), "{stdout}");
    assert!(stdout.contains("with its evidence snapshot"), "{stdout}");
    assert!(
        stdout.contains("SendmailDeferredSpike [firing]: blocklist-check (high confidence)"),
        "{stdout}"
    );
    assert!(stdout.contains("concentrate on google"), "{stdout}");
    // The temporary ledger is gone, and nothing was written where the demo ran.
    let left: Vec<_> = std::fs::read_dir(home.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn demo_plays_any_bundled_example_and_names_them_when_asked_for_another() {
    let home = tempfile::tempdir().unwrap();
    let demo = |example: &str| {
        Command::new(support::service::binary())
            .args(["demo", "--example", example])
            .env_clear()
            .env("HOME", home.path())
            .env("TMPDIR", home.path())
            .current_dir(home.path())
            .output()
            .expect("run cabal-triage demo --example")
    };
    let output = demo("restart-unable-to-place");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("replaying the incident restart-unable-to-place"),
        "{stdout}"
    );
    assert!(stdout.contains("episode state: triaged"), "{stdout}");
    assert!(stdout.contains("ContainerRestartLoop [firing]"), "{stdout}");
    assert!(stdout.contains("scale-cluster"), "{stdout}");
    assert!(stdout.contains("cabal-prometheus"), "{stdout}");
    // Every directory of examples/ is bundled, and an unknown name lists them.
    let output = demo("no-such-incident\u{202e}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no bundled example called"), "{stderr}");
    assert!(!stderr.contains('\u{202e}'), "{stderr}");
    for dir in examples() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(stderr.contains(&name), "{name} is not bundled: {stderr}");
    }
}

#[test]
fn a_restart_loop_example_renders_its_own_fields_and_replays_to_the_same_report() {
    let dir = examples()
        .into_iter()
        .find(|d| d.ends_with("restart-image-regression-after-push"))
        .unwrap();
    let (code, text, stderr) = triage(&dir, "text");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(text.contains("service:    cabal-imap"), "{text}");
    assert!(text.contains("cause:      image-regression"), "{text}");
    assert!(
        text.contains("action:     rollback (high confidence)"),
        "{text}"
    );
    assert!(
        text.contains("next:       .github/scripts/deploy-ecs-service.sh imap sha-1a2b3c4d"),
        "{text}"
    );
    assert!(!text.contains("NAT:"), "{text}");
    let (_, slack, _) = triage(&dir, "slack");
    assert!(
        slack.contains("*Cause*") && slack.contains("image-regression"),
        "{slack}"
    );
    let (_, note, _) = triage(&dir, "pagerduty");
    assert!(
        note.contains("Service cabal-imap · cause image-regression"),
        "{note}"
    );

    let (_, first, _) = triage(&dir, "json");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let recorded = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(recorded.path(), first["evidence_snapshot"].to_string()).unwrap();
    let output = Command::new(support::service::binary())
        .args(["triage", "--format", "json", "--alert"])
        .arg(dir.join("payload.json"))
        .arg("--replay")
        .arg(recorded.path())
        .env_clear()
        .output()
        .unwrap();
    assert!(output.status.success());
    let second: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(first["verdict"], second["verdict"]);
    assert_eq!(first["evidence"], second["evidence"]);
}

#[test]
fn an_imap_auth_example_renders_cause_and_severity() {
    let dir = examples()
        .into_iter()
        .find(|d| d.ends_with("imap-auth-non-lambda-source-guessing"))
        .unwrap();
    let (code, text, stderr) = triage(&dir, "text");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(text.contains("tier:       imap"), "{text}");
    assert!(text.contains("cause:      in-vpc-source"), "{text}");
    assert!(text.contains("severity:   critical"), "{text}");
    assert!(text.contains("10.64.40.17"), "{text}");
    // User names are counted and masked, never listed in clear.
    let (_, json, _) = triage(&dir, "json");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names = report["evidence"]["details"]["failing_user_names"]
        .as_array()
        .unwrap();
    assert!(!names.is_empty());
    assert!(
        names.iter().all(|n| n.as_str().unwrap().ends_with("***")),
        "{names:?}"
    );
}

/// The login names of Dovecot lines in `text` that are not pseudonyms (`first char`, `~`, 8 lower
/// hex digits), each part of a master login on its own.
fn login_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for piece in text.split("user=<").skip(1) {
        let name = piece.split('>').next().unwrap_or("");
        for part in name.split('*').filter(|p| !p.is_empty()) {
            let mut chars = part.chars();
            chars.next();
            let rest = chars.as_str();
            let pseudonym = rest.len() == 9
                && rest.starts_with('~')
                && rest[1..]
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !pseudonym {
                names.push(part.to_string());
            }
        }
    }
    names
}
