//! The demo (`cabal-triage demo`): the whole pipeline on this machine, with nothing to set up.
//! It starts the real service in this process (HTTP intake, SQLite ledger in the directory it
//! is given, worker pool) on a loopback port the system picks, with the sendmail runbooks
//! answering from a bundled replay snapshot (by default a greylist storm at one provider on
//! smtp-out; `--example NAME` plays any of `examples/`); posts the incident's alert through the
//! real webhook and follows the
//! episode through the operator API, telling each step to `say`. The caller prints (`cli`). No
//! AWS, no network beyond 127.0.0.1, no configuration.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::alert::{parse_webhook, WebhookAlert};
use crate::config::{Config, Secret};
use crate::probe::ProbeSet;
use crate::report::render::kebab;
use crate::report::Report;
use crate::runbook::environment::Environment;
use crate::runbook::Registry;
use crate::shutdown::Shutdown;

/// Why the demo did not get to its annotation.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Bundled(String),
    #[error(transparent)]
    Service(#[from] super::AppError),
    #[error("the service did not start")]
    NotStarted,
    #[error("demo HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the webhook answered {status} without an episode: {body}")]
    NoEpisode { status: u16, body: String },
    #[error("the triage did not finish within {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("the triage failed: {0}")]
    TriageFailed(String),
    #[error("the stored report is unreadable: {0}")]
    UnreadableReport(serde_json::Error),
}

/// What the demo ends with: the triaged episode, for the caller to render.
#[derive(Debug)]
pub struct Triaged {
    pub episode_id: String,
    /// The service's base URL (`http://127.0.0.1:PORT`).
    pub base: String,
    pub alert: WebhookAlert,
    pub report: Report,
}

/// A bundled incident: an `examples/` directory's alert and replay snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    pub name: &'static str,
    pub payload: &'static str,
    pub snapshot: &'static str,
}

macro_rules! bundled {
    ($($name:literal),* $(,)?) => {
        &[$(Example {
            name: $name,
            payload: include_str!(concat!("../../examples/", $name, "/payload.json")),
            snapshot: include_str!(concat!("../../examples/", $name, "/snapshot.json")),
        }),*]
    };
}

/// Every directory of `examples/` (a test keeps the list whole), for `demo --example NAME`.
pub const EXAMPLES: &[Example] = bundled![
    "blackhole-route-after-nat-replacement",
    "bounced-address-map-stale",
    "bounced-dsn5-deferrals",
    "dns-failing-inside-smtp-out",
    "greylist-storm-one-provider",
    "greylisting-third-time-this-week",
    "imap-auth-master-password-rotated",
    "imap-auth-non-lambda-source-guessing",
    "imap-auth-one-account-missing",
    "imap-auth-plaintext-regression",
    "imap-local-delivery-failing",
    "imap-spool-not-mounted",
    "nat-stopped-4.4-wave",
    "queue-growing-logs-stalled",
    "remote-congestion",
    "restart-efs-failed-to-chown",
    "restart-image-regression-after-push",
    "restart-three-services-at-once",
    "restart-unable-to-place",
    "restart-unconfigured-service",
    "smtp-in-cannot-relay-to-imap",
    "smtp-in-relay-check-refused",
    "smtp-in-shared-queue",
    "spamhaus-refusing",
    "spike-already-over",
    "zone-nat-stopped-exec-timeouts",
];

/// The incident the demo plays without `--example`: a greylist storm at one provider.
pub const DEFAULT_EXAMPLE: &str = "greylist-storm-one-provider";

/// The bundled incident called `name`; the error lists the names there are.
pub fn example(name: &str) -> Result<&'static Example, DemoError> {
    EXAMPLES.iter().find(|e| e.name == name).ok_or_else(|| {
        let names: Vec<&str> = EXAMPLES.iter().map(|e| e.name).collect();
        DemoError::Bundled(format!(
            "no bundled example called {:?}; the examples are: {}",
            crate::report::sanitize::sanitize_line(name),
            names.join(", ")
        ))
    })
}

/// How long the demo waits for the triage.
const WAIT: Duration = Duration::from_secs(30);

/// Runs the demo with its ledger in `dir`, telling each step to `say`; stops the service before
/// it returns.
pub async fn run(
    dir: &Path,
    example: &Example,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Triaged, DemoError> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".into();
    config.ledger.path = dir.join("ledger.db");
    config.auth.webhook_tokens = vec![Secret::new(token.clone())];
    config.worker.poll_interval_ms = 100;
    config
        .validate()
        .map_err(|e| DemoError::Config(e.to_string()))?;
    let config = Arc::new(config);

    let snapshot = crate::probe::snapshot::parse(example.snapshot, example.name)
        .map_err(|e| DemoError::Bundled(e.to_string()))?;
    let captured_at = snapshot.captured_at;
    let env = Environment::new(
        ProbeSet::replay(snapshot, &config),
        Arc::clone(&config),
        Environment::fixed_clock(captured_at),
    );
    let shutdown = Shutdown::new();
    let (tell, listening) = tokio::sync::oneshot::channel();
    let runbooks = Registry::with_runbooks(Arc::new(env));
    let server = super::serve(&config, runbooks, shutdown.clone(), Some(tell), None);
    let client = async {
        let Ok(addr) = listening.await else {
            return Err(DemoError::NotStarted);
        };
        say(&format!(
            "[demo] service listening on http://{addr} (ledger {})",
            config.ledger.path.display()
        ));
        say(&format!(
            "[demo] replaying the incident {} captured at {}",
            example.name,
            captured_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        ));
        let outcome = drive(&format!("http://{addr}"), &token, example.payload, say).await;
        shutdown.begin(Duration::from_secs(2));
        outcome
    };
    let (served, outcome) = tokio::join!(server, client);
    match (served, outcome) {
        (Err(e), _) => Err(e.into()),
        (Ok(()), outcome) => outcome,
    }
}

async fn drive(
    base: &str,
    token: &str,
    payload_text: &'static str,
    say: &(dyn Fn(&str) + Sync),
) -> Result<Triaged, DemoError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()?;
    let posted = client
        .post(format!("{base}/api/v1/alerts"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(payload_text)
        .send()
        .await?;
    let status = posted.status();
    let body: serde_json::Value = posted.json().await?;
    let Some(id) = body["episodes"][0]["id"].as_str().map(str::to_string) else {
        return Err(DemoError::NoEpisode {
            status: status.as_u16(),
            body: body.to_string(),
        });
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
            .await?
            .json()
            .await?;
        let state = episode["state"].as_str().unwrap_or("?").to_string();
        if state != last_state {
            say(&format!("[demo] episode state: {state}"));
            last_state = state.clone();
        }
        if matches!(state.as_str(), "triaged" | "failed") {
            break episode;
        }
        if started.elapsed() > WAIT {
            return Err(DemoError::TimedOut(WAIT));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if last_state == "failed" {
        return Err(DemoError::TriageFailed(
            episode["job"]["last_error"].to_string(),
        ));
    }
    let report: Report =
        serde_json::from_value(episode["report"].clone()).map_err(DemoError::UnreadableReport)?;
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
    let payload = parse_webhook(payload_text.as_bytes())
        .map_err(|e| DemoError::Bundled(format!("bundled payload: {e}")))?;
    Ok(Triaged {
        episode_id: id,
        base: base.to_string(),
        alert: payload.alerts[0].clone(),
        report,
    })
}
