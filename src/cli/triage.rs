//! `cabal-triage triage --alert PAYLOAD.json [--replay SNAPSHOT.json] [--format ...]`: one triage
//! in the foreground (`runbook::oneshot`). This file reads the arguments and the files and
//! prints the result. The payload is an Alertmanager webhook body (version 4); its first alert
//! with a runbook is triaged. With `--replay` the probes answer from the snapshot (no AWS, no
//! network) and the clock stands at its capture time; without it they talk to AWS as `serve`
//! does. `--format json` prints the report of `docs/contracts.md` ("Report"; the `verdict`
//! object at the top level).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::alert::{parse_webhook, AlertStatus, WebhookAlert, WebhookPayload};
use crate::config::Config;
use crate::probe::snapshot::{self, Snapshot};
use crate::report::render::{pagerduty, slack, text, Annotation, Stage};
use crate::report::Report;
use crate::runbook::environment::Environment;
use crate::runbook::oneshot::{self, OneShotError};

#[derive(Debug, Args)]
pub struct TriageArgs {
    /// The Alertmanager webhook payload (JSON, version 4), or `-` for standard input.
    #[arg(long, value_name = "PAYLOAD.json")]
    pub alert: String,
    /// A replay snapshot: the probes answer from it instead of AWS.
    #[arg(long, value_name = "SNAPSHOT.json")]
    pub replay: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TriageFormat::Text)]
    pub format: TriageFormat,
    /// TOML configuration file; embedded defaults when omitted.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TriageFormat {
    /// The annotation as the terminal shows it.
    Text,
    /// The report (`docs/contracts.md`, "Report"), `verdict` at the top level.
    Json,
    /// The Slack message (Block Kit JSON).
    Slack,
    /// The PagerDuty note text.
    Pagerduty,
}

pub fn run(args: TriageArgs) -> Result<(), CliError> {
    let config =
        Config::load(args.config.as_deref()).map_err(|e| CliError::Input(e.to_string()))?;
    let payload = read_payload(&args.alert)?;
    let snapshot = args.replay.as_deref().map(read_snapshot).transpose()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let config = Arc::new(config);
    let (alert, report) = runtime.block_on(async {
        let (probes, clock) = match snapshot {
            Some(snapshot) => oneshot::replay(snapshot, &config),
            None => (
                crate::app::aws_probes(&config).await,
                Environment::system_clock(),
            ),
        };
        oneshot::triage(&payload, probes, clock, Arc::clone(&config))
            .await
            .map_err(|e| match e {
                OneShotError::NoRunbook { .. } => CliError::Input(e.to_string()),
                other => CliError::Runtime(other.to_string()),
            })
    })?;
    print!("{}", render(args.format, &alert, &report, &config)?);
    Ok(())
}

/// Largest webhook payload read (the service's own body limit is far smaller).
const MAX_PAYLOAD_BYTES: u64 = 16 * 1024 * 1024;
/// Largest replay snapshot read (a full triage's snapshot is a few MiB at most).
const MAX_SNAPSHOT_BYTES: u64 = 512 * 1024 * 1024;

/// Reads a file or standard input (`-`), refusing more than `cap` bytes.
fn read_capped(path: &str, cap: u64) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let input: Box<dyn Read> = if path == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(path)
                .map_err(|e| CliError::Input(format!("cannot read {path}: {e}")))?,
        )
    };
    let mut bytes = Vec::new();
    input
        .take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::Input(format!("cannot read {path}: {e}")))?;
    if bytes.len() as u64 > cap {
        return Err(CliError::Input(format!(
            "{path}: larger than {cap} bytes; refusing to read it"
        )));
    }
    Ok(bytes)
}

/// Reads and checks the payload (exit 2 naming the file when it is wrong).
fn read_payload(path: &str) -> Result<WebhookPayload, CliError> {
    let body = read_capped(path, MAX_PAYLOAD_BYTES)?;
    parse_webhook(&body).map_err(|e| CliError::Input(format!("{path}: {e}")))
}

/// Reads a replay snapshot (exit 2 naming the file and line when it is wrong).
fn read_snapshot(path: &Path) -> Result<Snapshot, CliError> {
    let name = path.display().to_string();
    let bytes = read_capped(&name, MAX_SNAPSHOT_BYTES)?;
    let text =
        String::from_utf8(bytes).map_err(|_| CliError::Input(format!("{name}: not UTF-8 text")))?;
    snapshot::parse(&text, &name).map_err(|e| CliError::Input(e.to_string()))
}

/// The report in the asked format.
fn render(
    format: TriageFormat,
    alert: &WebhookAlert,
    report: &Report,
    config: &Config,
) -> Result<String, CliError> {
    let annotation = Annotation {
        episode_id: &report.episode,
        alert,
        status: alert.status,
        ends_at: alert
            .ends_at
            .filter(|_| alert.status == AlertStatus::Resolved),
        stage: Stage::Triaged(report),
        repeats: 0,
        episode_url: None,
        links: Vec::new(),
        show_local_parts: config.privacy.show_local_parts,
    };
    let json = |value: &dyn erased::Json| {
        value
            .pretty()
            .map(|mut s| {
                s.push('\n');
                s
            })
            .map_err(|e| CliError::Runtime(format!("cannot render JSON: {e}")))
    };
    match format {
        TriageFormat::Text => Ok(text::render(&annotation)),
        TriageFormat::Json => json(report),
        TriageFormat::Slack => json(&slack::message(&annotation)),
        TriageFormat::Pagerduty => {
            let report_json = serde_json::to_string(report)
                .map_err(|e| CliError::Runtime(format!("cannot render JSON: {e}")))?;
            let marker = pagerduty::marker(
                &report.episode,
                &crate::notify::pagerduty::report_digest(&report_json),
            );
            let mut note = pagerduty::note(&annotation, &marker);
            note.push('\n');
            Ok(note)
        }
    }
}

/// Pretty JSON of anything serializable, behind a trait object.
mod erased {
    pub trait Json {
        fn pretty(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn pretty(&self) -> serde_json::Result<String> {
            serde_json::to_string_pretty(self)
        }
    }
}
