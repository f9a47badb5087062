//! The command line (clap): it parses arguments, reads the files they name and prints; the work
//! is done by the library (`app` for `serve`, `runbook::oneshot` for `triage`,
//! `sendmail::stream` for `parse maillog`, ...). Each subcommand lives in its own file; this one
//! parses and dispatches, and maps errors to the exit codes of `docs/contracts.md` ("CLI"):
//! 0 success, 1 runtime failure, 2 bad usage or bad input (with a one-line error on stderr).
//! Nothing imports this module.

mod check_config;
mod demo;
mod exec;
mod healthcheck;
mod parse;
mod service;
mod triage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cabal-triage",
    version,
    about = "Triage for Cabalmail's sendmail alerts: Alertmanager webhook in, verdict out"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: webhook intake, workers, operator API.
    Serve {
        /// TOML configuration file; embedded defaults when omitted.
        #[arg(long, value_name = "FILE", env = "CABAL_TRIAGE_CONFIG")]
        config: Option<PathBuf>,
        /// Address and port to listen on; overrides server.listen and CABAL_TRIAGE_LISTEN.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// The whole pipeline on this machine: the real intake and ledger, a bundled incident
    /// replayed, the annotation printed. No AWS, no network, no configuration.
    Demo {
        /// Which bundled incident (a directory of examples/); a greylist storm when omitted.
        #[arg(long, value_name = "NAME")]
        example: Option<String>,
    },
    /// Validate the configuration and print it with secrets masked.
    CheckConfig {
        #[arg(long, value_name = "FILE", env = "CABAL_TRIAGE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Parse sendmail's logs or `mailq` output into JSON (`-` reads standard input).
    Parse {
        #[command(subcommand)]
        what: ParseCommand,
    },
    /// Run a command in a tier's container over ECS Exec; exits with the command's status.
    Exec(exec::ExecArgs),
    /// One triage in the foreground; with --replay, from a snapshot and without AWS.
    Triage(triage::TriageArgs),
    /// GET the running service's /healthz; exit 0 when it answers 2xx, 1 otherwise (for
    /// container health checks in the shell-less image).
    Healthcheck {
        /// URL to ask; default http://127.0.0.1:<port of CABAL_TRIAGE_LISTEN, or 9095>/healthz.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 3)]
        timeout: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ParseCommand {
    /// One JSON object per sendmail delivery-status line.
    Maillog {
        /// The log file, or `-` for standard input.
        #[arg(value_name = "FILE")]
        file: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ParseFormat::Json)]
        format: ParseFormat,
        /// Configuration whose `[providers] extra` entries extend the provider table.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print email local parts in `reply` and `relay` instead of `j***@gmail.com`.
        #[arg(long)]
        show_local_parts: bool,
    },
    /// `{"total_requests": N | null, "queues": [...]}` from `mailq` output.
    Mailq {
        /// The saved `mailq` output, or `-` for standard input.
        #[arg(value_name = "FILE")]
        file: String,
        /// Print email local parts instead of `j***@gmail.com`.
        #[arg(long)]
        show_local_parts: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ParseFormat {
    /// JSON lines.
    Json,
}

/// A command's failure, split by exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage or bad input: exit 2.
    #[error("{0}")]
    Input(String),
    /// Something failed while running: exit 1.
    #[error("{0}")]
    Runtime(String),
    /// Exit with this status and no message (`exec` passes on the command's own status).
    #[error("exit status {0}")]
    Status(u8),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 2 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Serve { config, listen } => service::run(config.as_deref(), listen),
        Command::Demo { example } => demo::run(example.as_deref()),
        Command::CheckConfig { config } => check_config::run(config.as_deref()),
        Command::Parse {
            what:
                ParseCommand::Maillog {
                    file,
                    format: ParseFormat::Json,
                    config,
                    show_local_parts,
                },
        } => parse::run_maillog(&file, config.as_deref(), show_local_parts),
        Command::Parse {
            what:
                ParseCommand::Mailq {
                    file,
                    show_local_parts,
                },
        } => parse::run_mailq(&file, show_local_parts),
        Command::Exec(args) => exec::run(args),
        Command::Triage(args) => triage::run(args),
        Command::Healthcheck { url, timeout } => healthcheck::run(url, timeout),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Input(message)) => {
            eprintln!("cabal-triage: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Runtime(message)) => {
            eprintln!("cabal-triage: {message}");
            ExitCode::from(1)
        }
        Err(CliError::Status(status)) => ExitCode::from(status),
    }
}
