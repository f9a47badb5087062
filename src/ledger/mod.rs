//! The ledger: the durable record of episodes, their triage jobs, reports and deliveries.
//!
//! Invariants every implementation keeps:
//! - **Durable before ack**: `ingest` returns only after the alerts are committed to stable
//!   storage; the webhook answers 202 only after that.
//! - **One job per episode**: creating an episode and its job is one atomic step keyed by the
//!   episode id, so repeats, retries and HA duplicates cannot create a second job.
//! - **Leases**: a job is worked on only under a lease with an owner and an expiry; an expired
//!   lease makes the job available again, and attempts are bounded.
//! - **Outbox**: a delivery row is written in the same transaction as the state change that
//!   causes it (see `notify`).

mod dynamodb;
mod model;
mod retention;
mod sqlite;
mod wake;

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use dynamodb::DynamoLedger;
pub use model::*;
pub use retention::{run_retention, RetentionPolicy};
pub use sqlite::SqliteLedger;
pub use wake::DeliveriesWritten;

/// A ledger failure. `Unavailable` is the one the webhook turns into 503; its text is the
/// backend's own (what SQLite or DynamoDB said, and what to check for that backend).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger cannot write: {0}")]
    Unavailable(String),
    #[error("ledger is locked by another process: {0}; the SQLite ledger serves one process (use the dynamodb backend for several replicas)")]
    Locked(String),
    #[error("ledger data is corrupt or from an unknown version: {0}")]
    Corrupt(String),
    #[error("ledger is shut down")]
    Closed,
    /// Permanent: the record exceeds what the backend can store in one item (DynamoDB's 400 KB);
    /// sending it again cannot help.
    #[error("too large to store: {0}")]
    TooLarge(String),
}

/// The durable store. All times are passed in so that the rules are testable.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Records every alert of one notification, atomically: new episodes (with a triage job
    /// when `has_runbook`), repeats, and resolutions.
    async fn ingest(
        &self,
        alerts: Vec<IncomingAlert>,
        now: OffsetDateTime,
    ) -> Result<Vec<IngestResult>, LedgerError>;

    /// Takes the next runnable job under a lease for `owner`. Jobs whose lease expired are
    /// runnable again; those that used up their attempts are marked failed on the way.
    async fn lease_next(
        &self,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<LeasedJob>, LedgerError>;

    /// Extends a lease; false when the lease is no longer this owner's.
    async fn renew_lease(
        &self,
        job_id: i64,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError>;

    /// Stores the report and ends the job `triaged`; false when the lease was lost.
    async fn complete_job(
        &self,
        job_id: i64,
        owner: &str,
        report_json: String,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError>;

    /// Records a failed attempt: the job is queued again after `retry_after`, or ends `failed`
    /// when its attempts are used up.
    async fn fail_attempt(
        &self,
        job_id: i64,
        owner: &str,
        error: String,
        retry_after: Duration,
        now: OffsetDateTime,
    ) -> Result<JobState, LedgerError>;

    /// Gives a leased job back without counting the attempt (graceful shutdown).
    async fn release(
        &self,
        job_id: i64,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), LedgerError>;

    async fn list_episodes(&self, query: EpisodeQuery) -> Result<Vec<EpisodeSummary>, LedgerError>;

    async fn get_episode(&self, id: &str) -> Result<Option<EpisodeDetail>, LedgerError>;

    /// The episodes of `alertname` first seen at or after `since`, `exclude` (the episode being
    /// triaged) left out, with their stored verdicts' actions (`report::history`).
    async fn alert_history(
        &self,
        alertname: &str,
        exclude: &str,
        since: OffsetDateTime,
    ) -> Result<crate::report::history::AlertHistory, LedgerError>;

    /// Counts for metrics: episodes by state and runnable jobs.
    async fn stats(&self, now: OffsetDateTime) -> Result<LedgerStats, LedgerError>;

    /// Deletes episodes (with their jobs and deliveries) last seen before `cutoff`.
    async fn purge(&self, cutoff: OffsetDateTime) -> Result<u64, LedgerError>;

    /// Takes up to `limit` due delivery rows under a lease for `owner`: pending rows whose time
    /// has come and rows whose lease expired. Rows of one episode and destination go out in
    /// order: a row is not claimed while an older one of the same pair is unfinished.
    async fn claim_deliveries(
        &self,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, LedgerError>;

    /// Records how an attempt on a claimed row ended; false when the lease is no longer this
    /// owner's (the result is then dropped: whoever holds the row decides).
    async fn record_delivery(
        &self,
        delivery_id: i64,
        owner: &str,
        result: DeliveryResult,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError>;

    /// `record_delivery`, and stores the per-episode references the attempt found or created
    /// (the Slack message's channel and `ts`, the PagerDuty incident id; a later value of a key
    /// replaces the earlier one), in one write (DynamoDB: one request; SQLite: one
    /// transaction). The references are stored even when the lease was lost: they name what
    /// exists.
    async fn record_delivery_with_refs(
        &self,
        delivery_id: i64,
        owner: &str,
        result: DeliveryResult,
        refs: (&str, &[(&str, &str)]),
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError>;

    /// A real write, for readiness.
    async fn check_writable(&self, now: OffsetDateTime) -> Result<(), LedgerError>;

    /// Claims a fresh triage of a firing, triaged episode whose verdict was reached before
    /// `verdict_before` (`retriage_allowed`): its job is queued again with a new budget of
    /// attempts, the verdict it replaces is kept as the reference `PREVIOUS_VERDICT_REF`, and the
    /// report the new triage stores causes `retriaged` rows instead of `verdict` rows. One
    /// conditional write, so of several replicas (or requests) claiming the same episode at once
    /// exactly one gets true; the others, and any call for an episode that is not eligible, get
    /// false and change nothing.
    async fn claim_retriage(
        &self,
        episode_id: &str,
        verdict_before: OffsetDateTime,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError>;

    /// Records what an operator did to an episode from Slack (who, when, what) as the episode
    /// reference `action.<RFC 3339 time>.<action>` (`operator_action_key`), shown with the
    /// episode. False when there is no such episode.
    async fn record_operator_action(
        &self,
        episode_id: &str,
        action: &str,
        what: &str,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError>;
}

/// Milliseconds since the epoch, the ledgers' time unit.
pub fn unix_ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The inverse of `unix_ms`.
pub fn from_unix_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
pub(crate) mod tests;
