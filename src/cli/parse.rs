//! `cabal-triage parse maillog FILE` and `cabal-triage parse mailq FILE` (design.md, CLI and
//! `parse maillog` contracts): read a file or standard input (`-`), print JSON. The maillog path
//! streams through `maillog_pipeline` (lossy UTF-8 per line, one JSON object per delivery line,
//! classified on every core, written in input order).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use super::maillog_pipeline::{default_workers, write_deliveries, WriteOrRead};
use super::CliError;
use crate::config::Config;
use crate::sendmail::{parse_mailq, redact_local_parts, ProviderTable};

/// Longest line read; the rest of a longer line is skipped (sendmail's own lines are < 2 KiB).
pub const MAX_LINE_BYTES: usize = 4 << 20;
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

/// `parse maillog`.
pub fn run_maillog(file: &str, config: Option<&Path>) -> Result<(), CliError> {
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
    );
    let result = result.and_then(|()| out.flush().map_err(WriteOrRead::Write));
    match result {
        Ok(()) => Ok(()),
        Err(WriteOrRead::Read { line, error }) => Err(CliError::Input(format!(
            "{file}:{line}: cannot read: {error}"
        ))),
        // The reader went away (`| head`): nothing more to say.
        Err(WriteOrRead::Write(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(WriteOrRead::Write(e)) => Err(CliError::Runtime(format!(
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
        for message in &mut report.messages {
            if let Some(sender) = &mut message.sender {
                *sender = redact_local_parts(sender).into_owned();
            }
            if let Some(status) = &mut message.status {
                *status = redact_local_parts(status).into_owned();
            }
            for recipient in &mut message.recipients {
                *recipient = redact_local_parts(recipient).into_owned();
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_json_line_per_delivery_line() {
        let input = b"Nov 28 20:14:03 h sm-mta[1]: Q0000001: to=<a@gmail.com>, delay=00:00:02, mailer=esmtp, pri=1, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 x\nNov 28 20:14:04 h dovecot: imap-login: user=<a>\nQ0000002: to=<b@\xfe.example>, stat=Sent \xff\n\xffQ0000003: to=<c@d.example>, stat=Sent\n";
        let mut out = Vec::new();
        let table = ProviderTable::builtin();
        assert!(write_deliveries(&input[..], &mut out, &table, 2, MAX_LINE_BYTES).is_ok());
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["line"], 1);
        assert_eq!(lines[0]["provider"], "google");
        // Field order follows the contract.
        let first = text.lines().next().unwrap();
        let positions: Vec<usize> = [
            "line",
            "queue_id",
            "status",
            "dsn",
            "dsn_class",
            "category",
            "recipient_domain",
            "provider",
            "relay",
            "reply",
            "reply_dsn",
        ]
        .iter()
        .map(|k| first.find(&format!("\"{k}\":")).unwrap())
        .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{first}");
        assert_eq!(lines[1]["line"], 3);
        assert_eq!(lines[1]["status"], "sent");
        assert_eq!(lines[1]["recipient_domain"], "\u{fffd}.example");
        // Garbage before the queue id: not a sendmail message.
        assert!(!text.contains("Q0000003"));
    }
}
