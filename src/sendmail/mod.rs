//! Sendmail intelligence: reading sendmail's own words. Pure code: nothing here opens a file or
//! a socket (`stream` reads and writes only the streams it is handed).
//!
//! - [`syslog`]: the syslog envelope of a log line (traditional, RFC 3339 or stripped).
//! - [`line`](mod@line): sendmail's delivery-status and sender lines, borrowing from the input.
//! - [`dsn`]: RFC 3463 enhanced status codes, their meaning and the runbook's reading.
//! - [`implied`]: the code sendmail's DSN-less texts imply (`Connection refused by ...`).
//! - [`providers`]: which operator runs a recipient domain's mail.
//! - [`classify`](mod@classify): a delivery line turned into typed evidence (the `parse maillog` record).
//! - [`aggregate`]: a tier's delivery lines summed up for the report.
//! - [`mailq`]: `mailq` output, for the queue depth.
//! - [`cap`]: samples capped in length (addresses are redacted by `report::redact`).
//! - [`stream`]: a whole log turned into `parse maillog` JSON lines on every core, in order,
//!   written by [`json`].
//!
//! `docs/sendmail.md` documents the formats and tables.

pub mod aggregate;
pub mod cap;
pub mod classify;
pub mod dsn;
pub mod implied;
pub mod json;
pub mod line;
pub mod mailq;
pub mod providers;
pub mod stream;
pub mod syslog;

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod proptests;

/// The one redactor lives in the core (`report::redact`); re-exported for the sendmail callers.
pub use crate::report::redact::redact_addresses as redact_local_parts;
pub use aggregate::{aggregate_lines, AggregateOptions, Aggregator, NamedCount, TierLogSummary};
pub use classify::{classify, classify_line, Delivery, Status};
pub use dsn::{Category, Dsn, DsnClass};
pub use line::{parse_message, DeliveryLine, Relay, SenderLine, SendmailMessage};
pub use mailq::{parse_mailq, MailqReport, QueueSummary, QueuedMessage};
pub use providers::ProviderTable;
pub use syslog::{parse_syslog, SyslogLine};
