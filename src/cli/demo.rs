//! `cabal-triage demo`: the whole pipeline on this machine, with nothing to set up. It starts the
//! real service in this process (HTTP intake, SQLite ledger in a temporary directory, worker
//! pool) on a loopback port the system picks, with the sendmail runbooks answering from a
//! bundled replay snapshot (a greylist storm at one provider on smtp-out); posts the bundled
//! SendmailDeferredSpike payload through the real webhook, follows the episode through the
//! operator API, prints a line per step and the annotation as the terminal renders it. No AWS,
//! no network beyond 127.0.0.1, no configuration.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::CliError;
use crate::alert::{parse_webhook, AlertStatus};
use crate::config::{Config, Secret};
use crate::probe::ProbeSet;
use crate::report::render::{kebab, text, Annotation, Stage};
use crate::report::Report;
use crate::runbook::environment::Environment;
use crate::runbook::Registry;
use crate::shutdown::Shutdown;

/// The bundled incident.
pub const PAYLOAD: &str = include_str!("../../examples/greylist-storm-one-provider/payload.json");
pub const SNAPSHOT: &str = include_str!("../../examples/greylist-storm-one-provider/snapshot.json");

/// How long the demo waits for the triage.
const WAIT: Duration = Duration::from_secs(30);

pub fn run() -> Result<(), CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let dir = std::env::temp_dir().join(format!("cabal-triage-demo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Runtime(format!("cannot create {}: {e}", dir.display())))?;
    let result = runtime.block_on(demo(dir.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn say(line: &str) {
    println!("{line}");
}

async fn demo(dir: PathBuf) -> Result<(), CliError> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.ledger.path = dir.join("ledger.db");
    config.auth.webhook_tokens = vec![Secret::new(token.clone())];
    config.worker.poll_interval_ms = 100;
    config
        .validate()
        .map_err(|e| CliError::Runtime(format!("demo configuration: {e}")))?;
    let config = Arc::new(config);

    let snapshot = crate::probe::snapshot::parse(SNAPSHOT, "bundled snapshot")
        .map_err(|e| CliError::Runtime(e.to_string()))?;
    let captured_at = snapshot.captured_at;
    let env = Environment::new(
        ProbeSet::replay(snapshot, &config),
        Arc::clone(&config),
        Environment::fixed_clock(captured_at),
    );
    let shutdown = Shutdown::new();
    let (tell, listening) = tokio::sync::oneshot::channel();
    let runbooks = Registry::with_sendmail(Arc::new(env));
    let server = async {
        crate::app::serve(&config, runbooks, shutdown.clone(), Some(tell))
            .await
            .map_err(CliError::from)
    };
    let client = async {
        let Ok(addr) = listening.await else {
            return Err(CliError::Runtime("the service did not start".into()));
        };
        say(&format!(
            "[demo] service listening on http://{addr} (ledger {})",
            config.ledger.path.display()
        ));
        say(&format!(
            "[demo] replaying the incident captured at {} (a greylist storm at one provider on smtp-out)",
            captured_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ));
        let outcome = drive(&format!("http://{addr}"), &token, &config).await;
        shutdown.begin(Duration::from_secs(2));
        outcome
    };
    let (served, outcome) = tokio::join!(server, client);
    match (served, outcome) {
        (Err(e), _) => Err(e),
        (Ok(()), outcome) => outcome,
    }
}

async fn drive(base: &str, token: &str, config: &Config) -> Result<(), CliError> {
    let runtime = |e: reqwest::Error| CliError::Runtime(format!("demo HTTP: {e}"));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(runtime)?;
    let posted = client
        .post(format!("{base}/api/v1/alerts"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(PAYLOAD)
        .send()
        .await
        .map_err(runtime)?;
    let status = posted.status();
    let body: serde_json::Value = posted.json().await.map_err(runtime)?;
    let Some(id) = body["episodes"][0]["id"].as_str().map(str::to_string) else {
        return Err(CliError::Runtime(format!(
            "the webhook answered {status} without an episode: {body}"
        )));
    };
    say(&format!(
        "[demo] POST /api/v1/alerts -> {} episode {id} ({})",
        status.as_u16(),
        body["episodes"][0]["state"].as_str().unwrap_or("?")
    ));

    let started = tokio::time::Instant::now();
    let mut last_state = String::new();
    let episode = loop {
        let episode: serde_json::Value = client
            .get(format!("{base}/api/v1/episodes/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .map_err(runtime)?
            .json()
            .await
            .map_err(runtime)?;
        let state = episode["state"].as_str().unwrap_or("?").to_string();
        if state != last_state {
            say(&format!("[demo] episode state: {state}"));
            last_state = state.clone();
        }
        if matches!(state.as_str(), "triaged" | "failed") {
            break episode;
        }
        if started.elapsed() > WAIT {
            return Err(CliError::Runtime(format!(
                "the triage did not finish within {} s",
                WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if last_state == "failed" {
        return Err(CliError::Runtime(format!(
            "the triage failed: {}",
            episode["job"]["last_error"]
        )));
    }
    let report: Report = serde_json::from_value(episode["report"].clone())
        .map_err(|e| CliError::Runtime(format!("the stored report is unreadable: {e}")))?;
    for step in &report.steps {
        say(&format!(
            "[demo] step {:<22} {:<9} {:>5} ms{}",
            step.name,
            kebab(&step.outcome),
            step.ms,
            step.error
                .as_deref()
                .map(|e| format!("  ({e})"))
                .unwrap_or_default()
        ));
    }
    let snapshot_stored = episode["evidence_snapshot"].is_object();
    say(&format!(
        "[demo] report stored in the ledger{}; annotation:",
        if snapshot_stored {
            " with its evidence snapshot"
        } else {
            ""
        }
    ));
    say("");
    let payload = parse_webhook(PAYLOAD.as_bytes())
        .map_err(|e| CliError::Runtime(format!("bundled payload: {e}")))?;
    let alert = &payload.alerts[0];
    let annotation = Annotation {
        episode_id: &id,
        alert,
        status: AlertStatus::Firing,
        ends_at: None,
        stage: Stage::Triaged(&report),
        repeats: 0,
        episode_url: Some(format!("{base}/api/v1/episodes/{id}")),
        show_local_parts: config.privacy.show_local_parts,
    };
    print!("{}", text::render(&annotation));
    Ok(())
}
