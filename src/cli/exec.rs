//! `cabal-triage exec --tier TIER [--task ID] -- COMMAND...`: an operator's command in a tier's
//! container over ECS Exec (the native client in `aws::exec`), output to the terminal, the
//! command's exit status as ours. The words after `--` are joined with spaces and run by
//! `/bin/sh -c`, as `ssh` does: quote what the shell in the container must see as one word.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::aws::ecs::first_running_task;
use crate::aws::exec::{exec, EcsSessionStarter, ExecError, ExecOptions, ExecRequest};
use crate::config::Config;
use crate::timing::Deadline;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// TOML configuration file; embedded defaults when omitted.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Tier whose container runs the command: imap, smtp-in or smtp-out.
    #[arg(long)]
    pub tier: String,
    /// Task id or ARN; the tier service's first running task when omitted.
    #[arg(long)]
    pub task: Option<String>,
    /// Deadline in seconds (default: exec.task_deadline_secs).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// The command, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

pub fn run(args: ExecArgs) -> Result<(), CliError> {
    let config =
        Config::load(args.config.as_deref()).map_err(|e| CliError::Input(e.to_string()))?;
    let tier = config.cabalmail.tiers.get(&args.tier).ok_or_else(|| {
        CliError::Input(format!(
            "unknown tier {:?}; configured tiers: {}",
            args.tier,
            config
                .cabalmail
                .tiers
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let command = args.command.join(" ");
    if command.trim().is_empty() {
        return Err(CliError::Input("the command after -- is empty".into()));
    }
    let options = ExecOptions {
        deadline: Duration::from_secs(args.timeout.unwrap_or(config.exec.task_deadline_secs)),
        output_cap: config.exec.output_cap_bytes,
        ..ExecOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(format!("cannot start the async runtime: {e}")))?;
    let output = runtime.block_on(async {
        let clients = crate::aws::AwsClients::load(
            &config.aws,
            Duration::from_secs(config.probes.aws_connect_timeout_secs),
            None,
        )
        .await;
        let cluster = &config.cabalmail.cluster;
        let task = match args.task {
            Some(task) => task,
            None => first_running_task(
                &clients.ecs,
                clients.endpoints.ecs.as_deref(),
                cluster,
                &tier.service,
                Deadline::after(config.probes.task_discovery_deadline()),
                config.probes.throttle_backoff(),
            )
            .await
            .map_err(|e| CliError::Runtime(e.to_string()))?
            .ok_or_else(|| {
                CliError::Runtime(format!(
                    "service {} has no running task in cluster {cluster}",
                    tier.service
                ))
            })?,
        };
        let request = ExecRequest {
            cluster: config.cabalmail.cluster.clone(),
            task,
            container: tier.container.clone(),
            command,
        };
        let starter = EcsSessionStarter::new(
            clients.ecs.clone(),
            clients.endpoints.ecs.clone(),
            config.probes.throttle_backoff(),
        );
        exec(&starter, &request, &options)
            .await
            .map_err(|e: ExecError| CliError::Runtime(e.to_string()))
    })?;

    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(&output.raw);
    let _ = stdout.flush();
    if output.truncated {
        eprintln!(
            "cabal-triage: output cut at {} bytes (exec.output_cap_bytes)",
            options.output_cap
        );
    }
    for warning in &output.warnings {
        eprintln!("cabal-triage: warning: {warning}");
    }
    match output.exit_status {
        Some(0) => Ok(()),
        // Statuses outside 0..=255 do not come from a POSIX shell; report them as a failure.
        Some(status) => Err(CliError::Status(u8::try_from(status).unwrap_or(1))),
        None => Err(CliError::Runtime(
            "the command's exit status is unknown (the session ended without it)".into(),
        )),
    }
}
