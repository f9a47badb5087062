//! cabal-triage: receives Alertmanager webhooks for Cabalmail's sendmail alerts, stores them
//! durably, runs the alert's runbook in the background and reports a verdict.
//!
//! The crate is a library so that the binary, the integration tests, the benchmarks and the fuzz
//! targets share one implementation. `docs/architecture.md` maps the modules and the direction of
//! their dependencies, and `tests/architecture.rs` enforces it: `timing` imports nothing,
//! `config` only `timing`; the pure core (`alert`, `dnsbl`, `probe`, `report`, `runbook`,
//! `sendmail`) never depends on the I/O edges (`aws`, `dns`, `ledger`, `metrics`, `notify`,
//! `server`, `shutdown`, `telemetry`, `worker`); `app` wires everything; only `cli` imports
//! `app`, and nothing imports `cli`.

pub mod alert;
pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod dns;
pub mod dnsbl;
pub mod dovecot;
pub mod ledger;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod report;
pub mod runbook;
pub mod sendmail;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod timing;
pub mod worker;
