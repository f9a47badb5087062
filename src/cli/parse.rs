//! `cabal-triage parse maillog FILE` and `cabal-triage parse mailq FILE` (`docs/contracts.md`,
//! "CLI" and "`parse maillog` output"): read a file or standard input (`-`), print JSON. The
//! maillog path streams through `sendmail::stream` (lossy UTF-8 per line, one JSON object per
//! delivery line, classified on every core, written in input order).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use super::CliError;
use crate::config::Config;
use crate::sendmail::stream::{default_workers, write_deliveries, StreamError, MAX_LINE_BYTES};
use crate::sendmail::{parse_mailq, ProviderTable};

/// Largest `mailq` output read.
pub const MAX_MAILQ_BYTES: u64 = 64 << 20;

fn open(file: &str) -> Result<Box<dyn Read + Send>, CliError> {
    if file == "-" {
        return Ok(Box::new(io::stdin()));
    }
    let handle =
        File::open(file).map_err(|e| CliError::Input(format!("{file}: cannot open: {e}")))?;
    Ok(Box::new(handle))
}

/// The provider table: built-ins plus `[providers] extra` of the configuration when given.
fn provider_table(config: Option<&Path>) -> Result<ProviderTable, CliError> {
    match config {
        None => Ok(ProviderTable::builtin()),
        Some(path) => {
            let config = Config::load(Some(path)).map_err(|e| CliError::Input(e.to_string()))?;
            ProviderTable::from_config(&config.providers)
                .map_err(|e| CliError::Input(format!("{}: providers.extra: {e}", path.display())))
        }
    }
}

/// `parse maillog`: `reply` and `relay` redacted unless `show_local_parts`.
pub fn run_maillog(
    file: &str,
    config: Option<&Path>,
    show_local_parts: bool,
) -> Result<(), CliError> {
    let providers = provider_table(config)?;
    let input = open(file)?;
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let result = write_deliveries(
        input,
        &mut out,
        &providers,
        default_workers(),
        MAX_LINE_BYTES,
        show_local_parts,
    );
    let result = result.and_then(|()| out.flush().map_err(StreamError::Write));
    match result {
        Ok(()) => Ok(()),
        Err(StreamError::Read { line, error }) => Err(CliError::Input(format!(
            "{file}:{line}: cannot read: {error}"
        ))),
        // The reader went away (`| head`): nothing more to say.
        Err(StreamError::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(StreamError::Write(e)) => Err(CliError::Runtime(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// `parse mailq`: the whole output in one JSON object; addresses redacted unless asked.
pub fn run_mailq(file: &str, show_local_parts: bool) -> Result<(), CliError> {
    let mut input = open(file)?.take(MAX_MAILQ_BYTES + 1);
    let mut bytes = Vec::new();
    if let Err(e) = input.read_to_end(&mut bytes) {
        let line = bytes.iter().filter(|b| **b == b'\n').count() + 1;
        return Err(CliError::Input(format!("{file}:{line}: cannot read: {e}")));
    }
    if bytes.len() as u64 > MAX_MAILQ_BYTES {
        return Err(CliError::Input(format!(
            "{file}: larger than {MAX_MAILQ_BYTES} bytes; this is not mailq output"
        )));
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut report = parse_mailq(&text);
    if !show_local_parts {
        report.redact_local_parts();
    }
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, &report)
        .map_err(io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .or_else(|e| {
            if e.kind() == io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(CliError::Runtime(format!(
                    "cannot write to standard output: {e}"
                )))
            }
        })
}
