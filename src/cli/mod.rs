//! The command line (clap). Each subcommand lives in its own file; this one parses and
//! dispatches, and maps errors to the exit codes of design.md: 0 success, 1 runtime failure,
//! 2 bad usage or bad input (with a one-line error on stderr).

mod check_config;
mod exec;
mod serve;

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
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate the configuration and print it with secrets masked.
    CheckConfig {
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run a command in a tier's container over ECS Exec; exits with the command's status.
    Exec(exec::ExecArgs),
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
        Command::Serve { config } => serve::run(config.as_deref()),
        Command::CheckConfig { config } => check_config::run(config.as_deref()),
        Command::Exec(args) => exec::run(args),
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
