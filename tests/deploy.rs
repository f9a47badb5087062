//! Checks of deploy/ that can run on this machine (docker build and terraform apply cannot):
//! the Alertmanager configuration and the Terraform receiver template pass `amtool
//! check-config`, the ECS task definition is valid JSON that agrees with the image and the
//! documented settings, and the Dockerfile keeps its promises (multi-stage, distroless, non-root,
//! exec-form entrypoint). scripts/check-deploy.sh adds `terraform validate` and
//! `systemd-analyze verify`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(repo_path(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// `amtool` from Debian's prometheus-alertmanager, or `None` after a loud message (a failure
/// under CI or scripts/test.sh).
fn amtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("amtool"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("CABAL_TRIAGE_REQUIRE_ALERTMANAGER").is_ok_and(|v| v == "1");
        let message = "amtool is not installed: apt-get install prometheus-alertmanager, or run scripts/test.sh";
        assert!(!required, "{message}");
        eprintln!("SKIPPED (not passed): {message}");
    }
    found
}

/// Runs `amtool check-config` on `yaml`; returns (success, output).
fn check_config(amtool: &Path, yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alertmanager.yml");
    std::fs::write(&file, yaml).unwrap();
    let output = Command::new(amtool)
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("run amtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn alertmanager_example_config_passes_amtool() {
    let Some(amtool) = amtool() else { return };
    let yaml = repo_file("deploy/alertmanager/alertmanager.yml");
    let (ok, output) = check_config(&amtool, &yaml);
    assert!(ok, "{output}");
    assert!(output.contains("1 receivers"), "{output}");
    // The check can fail: the same file with the webhook URL broken is refused.
    let broken = yaml.replace(
        "url: http://triage.cabal.internal:9095/api/v1/alerts",
        "url: not a url",
    );
    assert_ne!(broken, yaml);
    let (ok, output) = check_config(&amtool, &broken);
    assert!(!ok, "a broken URL passed: {output}");
}

#[test]
fn terraform_receiver_template_renders_to_a_config_amtool_accepts() {
    let Some(amtool) = amtool() else { return };
    let template = repo_file("deploy/terraform/alertmanager_receiver.yml.tftpl");
    assert!(template.contains("${webhook_url}"));
    let receiver = template.replace(
        "${webhook_url}",
        "http://triage.cabal.internal:9095/api/v1/alerts",
    );
    assert!(
        !receiver.contains("${"),
        "unrendered placeholder: {receiver}"
    );
    let config = format!(
        "route:\n  receiver: cabal-triage\n  group_by: [alertname, severity]\nreceivers:\n{receiver}"
    );
    let (ok, output) = check_config(&amtool, &config);
    assert!(ok, "{config}\n{output}");
}

#[test]
fn ecs_task_definition_is_valid_and_agrees_with_image_and_docs() {
    let task: Value =
        serde_json::from_str(&repo_file("deploy/ecs/task-definition.json")).expect("valid JSON");
    assert_eq!(task["networkMode"], "awsvpc");
    let containers = task["containerDefinitions"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["user"], "65532:65532", "non-root, as the image");
    assert_eq!(container["readonlyRootFilesystem"], true);
    assert_eq!(container["portMappings"][0]["containerPort"], 9095);
    assert!(
        container["stopTimeout"].as_u64().unwrap() > 20,
        "above shutdown_grace_secs"
    );
    let docs = repo_file("docs/configuration.md");
    let mut names = Vec::new();
    for entry in container["environment"]
        .as_array()
        .unwrap()
        .iter()
        .chain(container["secrets"].as_array().unwrap())
    {
        let name = entry["name"].as_str().unwrap();
        names.push(name);
        let generic = name.starts_with("CABAL_TRIAGE__");
        assert!(
            generic || docs.contains(&format!("`{name}`")),
            "{name} is not a documented variable"
        );
    }
    for secret in container["secrets"].as_array().unwrap() {
        assert!(secret["valueFrom"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:ssm:"));
    }
    assert!(names.contains(&"CABAL_TRIAGE_WEBHOOK_TOKEN"));
    let mount = &container["mountPoints"][0];
    assert_eq!(mount["containerPath"], "/var/lib/cabal-triage");
    let ledger = container["environment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "CABAL_TRIAGE_LEDGER")
        .unwrap();
    assert!(ledger["value"]
        .as_str()
        .unwrap()
        .starts_with("/var/lib/cabal-triage/"));
}

#[test]
fn dockerfile_is_multi_stage_distroless_non_root_without_shell() {
    let dockerfile = repo_file("deploy/Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages[0].contains(" AS build"));
    assert!(stages[1].contains("gcr.io/distroless/cc-debian12"));
    let runtime = dockerfile.split(stages[1]).nth(1).unwrap();
    assert!(!runtime.contains("\nRUN "), "no RUN in a shell-less image");
    assert!(runtime.contains("\nUSER 65532:65532"));
    for line in runtime
        .lines()
        .filter(|l| l.starts_with("ENTRYPOINT") || l.starts_with("CMD"))
    {
        assert!(line.contains('['), "exec form (no shell to run it): {line}");
    }
    // The build context keeps what cargo needs (benches are declared in Cargo.toml).
    let ignore = repo_file(".dockerignore");
    for needed in ["src", "benches", "config", "Cargo.toml", "Cargo.lock"] {
        assert!(
            !ignore.lines().any(|l| l.trim() == needed),
            "{needed} is excluded from the build context"
        );
        assert!(dockerfile.contains(&format!("COPY {needed}")) || needed.starts_with("Cargo"));
    }
    assert!(dockerfile.contains("COPY Cargo.toml Cargo.lock ./"));
}
