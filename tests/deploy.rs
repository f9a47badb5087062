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
        "url: http://triage.cabal-monitoring.cabal.internal:9095/api/v1/alerts",
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
    let receiver = template
        .replace(
            "${webhook_url}",
            "http://triage.cabal-monitoring.cabal.internal:9095/api/v1/alerts",
        )
        .replace("__CABAL_TRIAGE_WEBHOOK_TOKEN__", "a-token");
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
    for secret in container["secrets"].as_array().unwrap() {
        let from = secret["valueFrom"].as_str().unwrap();
        assert!(from.contains(":parameter/cabal/triage_"), "{from}");
    }
    let health = &container["healthCheck"]["command"];
    assert_eq!(health[0], "CMD", "exec form: no shell in the image");
    assert_eq!(health[1], "/usr/local/bin/cabal-triage");
    assert_eq!(health[2], "healthcheck");
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
    // Each base image is pinned by digest, with the tag it was resolved from beside it
    // (scripts/pin-base-images.sh refreshes both).
    for stage in &stages {
        let image = stage.split_whitespace().nth(1).unwrap();
        let (tagged, digest) = image
            .split_once("@sha256:")
            .unwrap_or_else(|| panic!("not pinned by digest: {stage}"));
        assert!(
            tagged.rsplit('/').next().unwrap().contains(':'),
            "no tag beside the digest: {stage}"
        );
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a sha256 digest: {stage}"
        );
    }
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

// ── deploy/terraform as a module of Cabalmail's terraform/infra ──────────────────────────────

/// All `.tf` files of the module, concatenated (name, text).
fn terraform_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(repo_path("deploy/terraform"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
}

fn terraform_text() -> String {
    terraform_files()
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The body of the block that starts with `header` (e.g. `resource "aws_ecs_service" "triage"`),
/// braces matched; panics when absent.
fn block<'a>(text: &'a str, header: &str) -> &'a str {
    let start = text
        .find(&format!("{header} {{"))
        .unwrap_or_else(|| panic!("no block {header}"));
    let body = &text[start + header.len() + 2..];
    let mut depth = 1;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &body[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced block {header}");
}

/// Whitespace-insensitive containment (terraform fmt aligns `=`).
fn has(text: &str, needle: &str) -> bool {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    squash(text).contains(&squash(needle))
}

#[test]
fn terraform_module_reads_no_file_outside_itself() {
    for (name, text) in terraform_files() {
        assert!(
            !text.contains("path.module}/.."),
            "{name} reads outside the module: it breaks once copied to terraform/infra/modules/"
        );
        for call in ["file(", "templatefile("] {
            for (at, _) in text.match_indices(call) {
                let rest = &text[at + call.len()..];
                let arg = rest.split([',', ')']).next().unwrap();
                let relative = arg
                    .trim()
                    .trim_matches('"')
                    .strip_prefix("${path.module}/")
                    .unwrap_or_else(|| panic!("{name}: {call}{arg} is not under path.module"));
                assert!(
                    repo_path("deploy/terraform").join(relative).is_file(),
                    "{name}: {relative} is not in the module"
                );
            }
        }
    }
}

#[test]
fn terraform_iam_template_renders_to_the_shipped_policy() {
    let template = repo_file("deploy/terraform/iam_policy.json.tftpl");
    let mut rendered = template
        .replace("${region}", "REGION")
        .replace("${account_id}", "ACCOUNT_ID")
        .replace("${cluster_name}", "cabal-mail")
        .replace("${ledger_table_name}", "cabal-triage");
    for tier in ["imap", "smtp-in", "smtp-out"] {
        rendered = rendered.replace(
            &format!("${{log_groups[\"{tier}\"]}}"),
            &format!("/ecs/cabal-{tier}"),
        );
    }
    assert!(!rendered.contains("${"), "unrendered: {rendered}");
    let rendered: Value = serde_json::from_str(&rendered).expect("the template is JSON");
    let shipped: Value =
        serde_json::from_str(&repo_file("deploy/iam/cabal-triage-policy.json")).unwrap();
    assert_eq!(
        rendered, shipped,
        "deploy/terraform/iam_policy.json.tftpl and deploy/iam/cabal-triage-policy.json differ: change both"
    );
}

#[test]
fn terraform_module_uses_cabalmail_names_pins_and_gates() {
    let variables = repo_file("deploy/terraform/variables.tf");
    for name in [
        "private_subnet_ids",
        "ecs_cluster_id",
        "ecs_cluster_capacity_provider",
        "quiesced",
        "tier_log_group_names",
        "ecr_repository_url",
        "image_tag",
        "alertmanager_security_group_id",
        "prometheus_security_group_id",
    ] {
        assert!(
            variables.contains(&format!("variable \"{name}\" {{")),
            "no variable {name}"
        );
    }
    for old in [
        "private_subnets",
        "capacity_provider",
        "image",
        "alertmanager_cidr_blocks",
    ] {
        assert!(
            !variables.contains(&format!("variable \"{old}\" {{")),
            "variable {old} is not Cabalmail's name"
        );
    }
    let versions = repo_file("deploy/terraform/versions.tf");
    assert!(
        has(&versions, r#"version = ">= 6.0.0, < 7.0.0""#),
        "{versions}"
    );
    let retention = block(&variables, r#"variable "log_retention_days""#);
    assert!(has(retention, "default = 365"), "{retention}");
    let text = terraform_text();
    let service = block(&text, r#"resource "aws_ecs_service" "triage""#);
    assert!(
        has(service, "desired_count = var.quiesced ? 0 :"),
        "{service}"
    );
    let prefix = block(&variables, r#"variable "ssm_parameter_prefix""#);
    assert!(has(prefix, r#"default = "/cabal/triage_""#), "{prefix}");
    let locals = repo_file("deploy/terraform/locals.tf");
    for secret in ["webhook_token", "slack_bot_token", "pagerduty_api_token"] {
        assert!(
            locals.contains(&format!("${{local.parameter_arn}}{secret}\"")),
            "SSM parameter {secret} is not /cabal/<snake_case>"
        );
    }
    assert!(has(
        &locals,
        r#"placeholder_image_tag = "bootstrap-placeholder""#
    ));
}

#[test]
fn terraform_module_leaves_out_of_band_deploys_alone_and_rolls_back_failed_ones() {
    let text = terraform_text();
    let task = block(&text, r#"resource "aws_ecs_task_definition" "triage""#);
    assert!(
        has(task, "ignore_changes = [container_definitions]"),
        "{task}"
    );
    assert!(has(task, "local.health_check"), "{task}");
    let service = block(&text, r#"resource "aws_ecs_service" "triage""#);
    assert!(
        has(service, "ignore_changes = [task_definition]"),
        "{service}"
    );
    let breaker = block(service, "deployment_circuit_breaker");
    assert!(has(breaker, "enable = true") && has(breaker, "rollback = true"));
    let discovery = block(
        &text,
        r#"resource "aws_service_discovery_service" "triage""#,
    );
    assert!(
        has(discovery, "ignore_changes = [health_check_custom_config]"),
        "{discovery}"
    );
    let namespace = block(
        &text,
        r#"data "aws_service_discovery_dns_namespace" "monitoring""#,
    );
    assert!(has(namespace, "name = var.service_discovery_namespace"));
    let variables = repo_file("deploy/terraform/variables.tf");
    let ns = block(&variables, r#"variable "service_discovery_namespace""#);
    assert!(
        has(ns, r#"default = "cabal-monitoring.cabal.internal""#),
        "{ns}"
    );
    // The container health check runs the binary's own subcommand (no shell in the image).
    let locals = repo_file("deploy/terraform/locals.tf");
    let health = block(&locals, "healthCheck =");
    assert!(
        has(
            health,
            r#"command = ["CMD", "/usr/local/bin/cabal-triage", "healthcheck""#
        ),
        "{health}"
    );
}

#[test]
fn terraform_security_group_takes_peers_by_group_and_egress_matches_its_description() {
    let text = terraform_text();
    let group = block(&text, r#"resource "aws_security_group" "triage""#);
    assert!(group.contains("HTTPS") && group.contains("DNS"), "{group}");
    let mut ingress = 0;
    for (at, _) in text.match_indices("resource \"aws_vpc_security_group_ingress_rule\"") {
        let header_end = text[at..].find(" {").unwrap();
        let rule = block(&text, &text[at..at + header_end]);
        if !rule.contains("aws_security_group.triage.id") {
            continue; // the opt-in endpoints' group (endpoints.tf)
        }
        assert!(
            rule.contains("referenced_security_group_id") && !rule.contains("cidr_"),
            "ingress by CIDR: {rule}"
        );
        ingress += 1;
    }
    assert_eq!(ingress, 2, "Alertmanager and Prometheus");
    assert!(
        !text.contains("aws_security_group_rule\""),
        "one rule style"
    );
    let mut egress_ports = Vec::new();
    for (at, _) in text.match_indices("resource \"aws_vpc_security_group_egress_rule\"") {
        let header_end = text[at..].find(" {").unwrap();
        let rule = block(&text, &text[at..at + header_end]);
        assert!(rule.contains("aws_security_group.triage.id"), "{rule}");
        assert!(
            !has(rule, r#"ip_protocol = "-1""#),
            "all traffic out: {rule}"
        );
        let port = rule
            .lines()
            .find_map(|l| l.trim().strip_prefix("from_port"))
            .unwrap_or_else(|| panic!("egress without a port: {rule}"))
            .trim_start_matches([' ', '='])
            .trim()
            .to_string();
        if port == "var.alertmanager_port" {
            // The Silence buttons: only when alertmanager_url is set, only to its group.
            assert!(
                rule.contains("var.alertmanager_url == null ? 0 : 1")
                    && rule.contains(
                        "referenced_security_group_id = var.alertmanager_security_group_id"
                    )
                    && !rule.contains("cidr_"),
                "{rule}"
            );
        }
        egress_ports.push(port);
    }
    egress_ports.sort();
    assert_eq!(
        egress_ports,
        ["443", "53", "var.alertmanager_port"],
        "HTTPS, DNS and (opt-in) Alertmanager only"
    );
}

#[test]
fn cabalmail_root_snippet_gates_on_monitoring_and_passes_only_declared_inputs() {
    let snippet = repo_file("deploy/cabalmail/triage.tf");
    let module = block(&snippet, r#"module "triage""#);
    assert!(has(module, r#"source = "./modules/triage""#));
    assert!(has(module, "count = var.monitoring ? 1 : 0"), "{module}");
    assert!(has(module, "quiesced = var.quiesced"));
    assert!(has(
        module,
        r#"ecr_repository_url = module.ecr.repository_urls["triage"]"#
    ));
    assert!(has(
        module,
        r#"image_tag = local.tier_image_tags["triage"]"#
    ));
    let variables = repo_file("deploy/terraform/variables.tf");
    let passed: Vec<&str> = module
        .lines()
        .filter_map(|l| l.trim().split_once(" = ").map(|(k, _)| k.trim()))
        .filter(|k| !["source", "count", "depends_on"].contains(k) && !k.starts_with('#'))
        .collect();
    for name in &passed {
        assert!(
            variables.contains(&format!("variable \"{name}\" {{")),
            "the snippet passes {name}, which the module does not declare"
        );
    }
    // Every input without a default is passed.
    for (at, _) in variables.match_indices("variable \"") {
        let name = variables[at + 10..].split('"').next().unwrap();
        let body = block(&variables, &format!("variable \"{name}\""));
        if !body.contains("default") {
            assert!(passed.contains(&name), "the snippet does not pass {name}");
        }
    }
}

// ── Images for arm64 (Cabalmail's Graviton cluster) and amd64 ───────────────────────────────

/// The architecture guard of the build stage (`case … esac`), as the shell runs it.
fn architecture_guard(dockerfile: &str) -> String {
    let start = dockerfile
        .find("case \"${TARGETARCH")
        .expect("an architecture guard");
    let end = dockerfile[start..].find("esac").expect("esac") + start + 4;
    dockerfile[start..end].replace("\\\n", "\n")
}

#[test]
fn dockerfile_builds_per_architecture_and_refuses_a_mismatched_build_stage() {
    let dockerfile = repo_file("deploy/Dockerfile");
    assert!(
        dockerfile.contains("--platform linux/arm64"),
        "the buildx command for Cabalmail"
    );
    assert!(dockerfile.contains("\nARG TARGETARCH\n"));
    // Each architecture builds into its own directory of the shared cache.
    assert!(
        dockerfile.contains("--target-dir \"/cargo-target/${TARGETARCH:-native}\""),
        "one cargo target directory per architecture"
    );
    for label in [
        "org.opencontainers.image.source=\"${SOURCE}\"",
        "org.opencontainers.image.revision=\"${REVISION}\"",
        "org.opencontainers.image.version",
        "org.opencontainers.image.licenses=\"MIT\"",
    ] {
        assert!(dockerfile.contains(label), "no OCI label {label}");
    }
    // The guard passes for this machine's architecture, and for a classic build without
    // TARGETARCH, and fails for the other one.
    let guard = architecture_guard(&dockerfile);
    let (same, other) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", "arm64"),
        "aarch64" => ("arm64", "amd64"),
        arch => panic!("no image for {arch}"),
    };
    let run = |arch: Option<&str>| {
        let mut command = Command::new("sh");
        command.arg("-c").arg(&guard).env_remove("TARGETARCH");
        if let Some(arch) = arch {
            command.env("TARGETARCH", arch);
        }
        command.output().expect("run sh")
    };
    assert!(run(Some(same)).status.success());
    assert!(run(None).status.success());
    let mismatched = run(Some(other));
    assert!(!mismatched.status.success());
    assert!(String::from_utf8_lossy(&mismatched.stderr).contains("BUILDPLATFORM"));
    let docs = repo_file("docs/operations.md");
    assert!(
        docs.contains("docker buildx build --platform linux/arm64"),
        "docs/operations.md has the buildx command"
    );
}

// ── Alertmanager as Cabalmail runs it ─────────────────────────────────────────────────────────

/// deploy/alertmanager/cabalmail/alertmanager.yml.tmpl rendered by render.sh (the substitution
/// Cabalmail's entrypoint does), into `dir`.
fn render_cabalmail_alertmanager(dir: &Path, token: Option<&str>) -> (bool, String, PathBuf) {
    let out = dir.join("alertmanager.yml");
    let mut command = Command::new(repo_path("deploy/alertmanager/cabalmail/render.sh"));
    command
        .arg(repo_path(
            "deploy/alertmanager/cabalmail/alertmanager.yml.tmpl",
        ))
        .arg(&out)
        .env(
            "ALERT_SINK_URL",
            "https://abc123.lambda-url.us-west-2.on.aws/",
        )
        .env("ALERT_SECRET", "alert-sink-secret")
        .env_remove("CABAL_TRIAGE_WEBHOOK_TOKEN");
    if let Some(token) = token {
        command.env("CABAL_TRIAGE_WEBHOOK_TOKEN", token);
    }
    let output = command.output().expect("run render.sh");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        out,
    )
}

/// The alertnames of the runbooks in src/runbook/ (`pub const ALERTNAME`), the test runbook
/// excepted.
fn runbook_alertnames() -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(repo_path("src/runbook")).unwrap() {
        let path = entry.unwrap().path();
        let file = if path.is_dir() {
            path.join("mod.rs")
        } else {
            path.clone()
        };
        if file.ends_with("test_runbook.rs") || !file.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.trim().strip_prefix("pub const ALERTNAME: &str = \"") {
                names.push(rest.trim_end_matches("\";").to_string());
            }
        }
    }
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    names
}

#[test]
fn cabalmail_alertmanager_config_copies_runbook_alerts_to_triage_and_keeps_paging() {
    let Some(amtool) = amtool() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The token is injected like Cabalmail's secrets; without it the render refuses.
    let (ok, stderr, _) = render_cabalmail_alertmanager(dir.path(), None);
    assert!(
        !ok && stderr.contains("CABAL_TRIAGE_WEBHOOK_TOKEN"),
        "{stderr}"
    );
    let (ok, stderr, file) = render_cabalmail_alertmanager(dir.path(), Some("0123456789abcdef"));
    assert!(ok, "{stderr}");
    let rendered = std::fs::read_to_string(&file).unwrap();
    assert!(!rendered.contains("__"), "placeholder left: {rendered}");
    assert!(rendered.contains("credentials: 0123456789abcdef"));
    assert!(
        !rendered.contains("credentials_file"),
        "Cabalmail injects secrets by placeholder"
    );
    let (ok, output) = check_config(&amtool, &rendered);
    assert!(ok, "{output}");
    assert!(output.contains("3 receivers"), "{output}");

    // The route matches exactly the alertnames cabal-triage has runbooks for.
    let template = repo_file("deploy/alertmanager/cabalmail/alertmanager.yml.tmpl");
    let matcher = template
        .lines()
        .find_map(|l| l.trim().strip_prefix("- alertname =~ \""))
        .expect("an alertname matcher")
        .trim_end_matches('"');
    let mut routed: Vec<String> = matcher.split('|').map(str::to_string).collect();
    routed.sort();
    assert_eq!(
        routed,
        runbook_alertnames(),
        "the cabal-triage route of deploy/alertmanager/cabalmail/alertmanager.yml.tmpl must list every runbook's alertname"
    );

    // Where alerts go: alert_sink exactly as in Cabalmail's own tree, plus cabal-triage for the
    // runbook alerts.
    let routes = |labels: &[&str]| {
        let output = Command::new(&amtool)
            .args(["config", "routes", "test", "--config.file"])
            .arg(&file)
            .args(labels)
            .output()
            .expect("amtool config routes test");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    let deferred = "alertname=SendmailDeferredSpike".to_string();
    let bounced = "alertname=SendmailBouncedSpike".to_string();
    assert!(runbook_alertnames().contains(&"SendmailDeferredSpike".to_string()));
    assert!(runbook_alertnames().contains(&"SendmailBouncedSpike".to_string()));
    for (labels, expected) in [
        (
            vec![deferred.as_str(), "severity=critical"],
            "cabal-triage,alert-sink-critical",
        ),
        (
            vec![bounced.as_str(), "severity=warning"],
            "cabal-triage,alert-sink-warning",
        ),
        // No severity route takes it: still the root's receiver, as without cabal-triage.
        (vec![deferred.as_str()], "cabal-triage,alert-sink-warning"),
        (
            vec!["alertname=NodeHighCPU", "severity=critical"],
            "alert-sink-critical",
        ),
        (vec!["alertname=NodeHighCPU"], "alert-sink-warning"),
    ] {
        assert_eq!(routes(&labels), expected, "{labels:?}");
    }
}

// ── Blind during the incident: egress without the NAT ───────────────────────────────────────

#[test]
fn nat_independent_endpoints_are_opt_in_cover_the_probes_and_serve_the_whole_vpc() {
    let variables = repo_file("deploy/terraform/variables.tf");
    let enabled = block(&variables, r#"variable "vpc_endpoints""#);
    assert!(has(enabled, "default = false"), "opt-in: {enabled}");
    let services = block(&variables, r#"variable "vpc_endpoint_services""#);
    assert!(
        has(
            services,
            r#"default = ["logs", "ec2", "ecs", "ssmmessages"]"#
        ),
        "{services}"
    );
    let endpoints = repo_file("deploy/terraform/endpoints.tf");
    let endpoint = block(&endpoints, r#"resource "aws_vpc_endpoint" "interface""#);
    for needed in [
        r#"vpc_endpoint_type = "Interface""#,
        "subnet_ids = var.private_subnet_ids",
        "private_dns_enabled = true",
        "for_each = local.vpc_endpoint_services",
    ] {
        assert!(has(endpoint, needed), "{needed}: {endpoint}");
    }
    assert!(has(
        &endpoints,
        "toset(var.vpc_endpoints ? var.vpc_endpoint_services : [])"
    ));
    // Private DNS sends every client of the VPC to the endpoints: HTTPS from the VPC, no wider.
    let ingress = block(
        &endpoints,
        r#"resource "aws_vpc_security_group_ingress_rule" "endpoints_https""#,
    );
    assert!(has(ingress, "cidr_ipv4 = var.vpc_cidr_block"), "{ingress}");
    assert!(has(ingress, "from_port = 443"), "{ingress}");
    // Every service the probes call has an endpoint in the default list: the IAM policy's
    // action prefixes (ledger and DynamoDB aside: a gateway endpoint exists).
    let policy: Value =
        serde_json::from_str(&repo_file("deploy/iam/cabal-triage-policy.json")).unwrap();
    for statement in policy["Statement"].as_array().unwrap() {
        let actions = match &statement["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
            other => panic!("{other}"),
        };
        for action in actions {
            let service = action.split(':').next().unwrap();
            assert!(
                service == "dynamodb" || has(services, &format!("\"{service}\"")),
                "{action}: no endpoint for {service} in the default vpc_endpoint_services"
            );
        }
    }
    let docs = repo_file("docs/operations.md");
    let section = docs
        .split("### Blind during the incident")
        .nth(1)
        .expect("docs/operations.md has the section");
    for topic in [
        "vpc_endpoints",
        "outbox",
        "Slack",
        "PagerDuty",
        "ssmmessages",
    ] {
        assert!(
            section.contains(topic),
            "the section does not mention {topic}"
        );
    }
}
