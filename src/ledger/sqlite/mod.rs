//! The SQLite ledger (the default): one file, WAL journal, `synchronous = FULL`, so a commit is
//! on disk when it returns.
//!
//! Writes go through one writer thread that commits in groups: it takes every write waiting in
//! its queue (up to `MAX_BATCH`), runs each in its own savepoint inside one transaction, commits
//! once, and only then answers each caller. Many concurrent webhooks thus share one fsync, which
//! is what makes "durable before ack" cheap. Reads use a separate connection (WAL readers do not
//! block the writer).
//!
//! One process owns the file: an exclusive lock on `<path>.lock` is taken at open, which also
//! makes it safe to take back, at start, every lease the previous process held.
//!
//! Files, the same names and roles as the DynamoDB ledger's: this one (opening, the writer
//! thread, the `Ledger` impl), `schema.rs`, `ingest.rs`, `jobs.rs`, `outbox.rs`, `episodes.rs`;
//! and `checkpoint.rs`, which only SQLite needs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::*;
use crate::alert::{pagerduty_dedup_key, AlertStatus, WebhookAlert};
use crate::report::fit::{fit_report_json, MAX_STORED_REPORT_BYTES};

mod checkpoint;
mod episodes;
mod files;
mod ingest;
mod jobs;
mod outbox;
mod retriage;
mod schema;

#[cfg(test)]
pub(crate) const CHECKPOINT_INTERVAL: Duration = checkpoint::INTERVAL;

use jobs::reclaim_leases;
use outbox::{enqueue_deliveries, read_refs};
use schema::{migrate, open_connection};

const MAX_BATCH: usize = 512;

type Completion = Box<dyn FnOnce(Option<&LedgerError>) + Send>;
/// A write: given the open transaction (or the reason none could be opened), it does its work
/// and returns what to tell its caller once the commit's outcome is known.
type WriteOp = Box<dyn FnOnce(Result<&Transaction<'_>, &LedgerError>) -> Completion + Send>;

/// The SQLite implementation of [`Ledger`].
pub struct SqliteLedger {
    writer: mpsc::UnboundedSender<WriteOp>,
    reader: Arc<Mutex<Connection>>,
    /// Destinations that get outbox rows, and for which changes (empty: nothing to deliver).
    routes: Arc<Vec<Route>>,
    _checkpointer: checkpoint::Checkpointer,
    _lock: File,
    path: PathBuf,
}

impl SqliteLedger {
    /// Opens (creating when absent) the ledger at `path`, runs migrations, and takes back the
    /// leases a previous process left behind.
    pub fn open(path: &Path, routes: Vec<Route>) -> Result<SqliteLedger, LedgerError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            files::create_private_dir(parent).map_err(|e| {
                file_unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let lock_path = lock_path(path);
        let lock = files::open_private(&lock_path)
            .map_err(|e| file_unavailable(format!("cannot open {}: {e}", lock_path.display())))?;
        lock.try_lock()
            .map_err(|e| LedgerError::Locked(format!("{} ({e})", lock_path.display())))?;
        // Created empty and private before SQLite opens it (an empty file is a new database),
        // so that its -wal and -shm are private too.
        files::open_private(path)
            .map_err(|e| file_unavailable(format!("cannot open {}: {e}", path.display())))?;

        let mut writer = open_connection(path)?;
        // Checkpoints are the checkpoint thread's job (see checkpoint.rs).
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(unavailable)?;
        migrate(&mut writer)?;
        reclaim_leases(&mut writer, &routes, OffsetDateTime::now_utc())?;
        let reader = open_connection(path)?;
        let checkpointer = checkpoint::spawn(path)?;

        let (sender, receiver) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer_loop(writer, receiver))
            .map_err(|e| LedgerError::Unavailable(format!("cannot start writer thread: {e}")))?;
        Ok(SqliteLedger {
            writer: sender,
            reader: Arc::new(Mutex::new(reader)),
            routes: Arc::new(routes),
            _checkpointer: checkpointer,
            _lock: lock,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Caps the file's size: a write that would grow it past `max_bytes` fails (503 at the
    /// webhook) instead of filling the disk the mail system may share. Returns the effective
    /// cap in bytes (whole pages; never below the current size).
    pub async fn limit_size(&self, max_bytes: u64) -> Result<u64, LedgerError> {
        self.write(move |tx| {
            let page_size: i64 = tx
                .query_row("PRAGMA page_size", [], |row| row.get(0))
                .map_err(unavailable)?;
            let page_size = page_size.max(1) as u64;
            let pages = (max_bytes / page_size).max(1);
            let effective: i64 = tx
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |row| {
                    row.get(0)
                })
                .map_err(unavailable)?;
            Ok(effective.max(0) as u64 * page_size)
        })
        .await
    }

    /// Runs `f` in the writer's next group commit and returns its result once committed.
    async fn write<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, LedgerError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let op: WriteOp = Box::new(move |tx| {
            let result = match tx {
                Ok(tx) => in_savepoint(tx, f),
                Err(error) => Err(error.clone()),
            };
            Box::new(move |commit_error: Option<&LedgerError>| {
                let outcome = match commit_error {
                    Some(error) => Err(error.clone()),
                    None => result,
                };
                let _ = reply.send(outcome);
            })
        });
        self.writer.send(op).map_err(|_| LedgerError::Closed)?;
        answer.await.map_err(|_| LedgerError::Closed)?
    }

    /// Runs a read on the read connection, off the async threads.
    async fn read<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, LedgerError> + Send + 'static,
    {
        let reader = Arc::clone(&self.reader);
        tokio::task::spawn_blocking(move || {
            let connection = reader
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&connection)
        })
        .await
        .map_err(|e| LedgerError::Unavailable(format!("read task failed: {e}")))?
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn writer_loop(mut connection: Connection, mut receiver: mpsc::UnboundedReceiver<WriteOp>) {
    let mut batch: Vec<WriteOp> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let outcome =
            match connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
                Ok(tx) => {
                    for op in batch.drain(..) {
                        completions.push(op(Ok(&tx)));
                    }
                    tx.commit().map_err(unavailable)
                }
                Err(error) => {
                    let error = unavailable(error);
                    for op in batch.drain(..) {
                        completions.push(op(Err(&error)));
                    }
                    Err(error)
                }
            };
        let commit_error = outcome.err();
        for completion in completions {
            completion(commit_error.as_ref());
        }
    }
}

fn in_savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, LedgerError>,
) -> Result<T, LedgerError> {
    tx.execute_batch("SAVEPOINT op").map_err(unavailable)?;
    match f(tx) {
        Ok(value) => {
            tx.execute_batch("RELEASE op").map_err(unavailable)?;
            Ok(value)
        }
        Err(error) => {
            let _ = tx.execute_batch("ROLLBACK TO op; RELEASE op");
            Err(error)
        }
    }
}

fn unavailable(error: rusqlite::Error) -> LedgerError {
    file_unavailable(error)
}

/// A failure of the ledger file or its folder, with what an operator checks for SQLite.
fn file_unavailable(error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(format!(
        "SQLite: {error}; check disk space and permissions of the ledger file"
    ))
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("{what}: {error}"))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, LedgerError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| corrupt("timestamp", e))
}

#[async_trait]
impl Ledger for SqliteLedger {
    async fn ingest(
        &self,
        alerts: Vec<IncomingAlert>,
        now: OffsetDateTime,
    ) -> Result<Vec<IngestResult>, LedgerError> {
        ingest::ingest(self, alerts, now).await
    }

    async fn lease_next(
        &self,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<LeasedJob>, LedgerError> {
        jobs::lease_next(self, owner, lease, now).await
    }

    async fn renew_lease(
        &self,
        job_id: i64,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        jobs::renew(self, job_id, owner, lease, now).await
    }

    async fn complete_job(
        &self,
        job_id: i64,
        owner: &str,
        report_json: String,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        let report_json = fit_report_json(report_json, MAX_STORED_REPORT_BYTES);
        jobs::complete(self, job_id, owner, report_json, now).await
    }

    async fn fail_attempt(
        &self,
        job_id: i64,
        owner: &str,
        error: String,
        retry_after: Duration,
        now: OffsetDateTime,
    ) -> Result<JobState, LedgerError> {
        jobs::fail(self, job_id, owner, error, retry_after, now).await
    }

    async fn release(
        &self,
        job_id: i64,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), LedgerError> {
        jobs::release(self, job_id, owner, now).await
    }

    async fn list_episodes(&self, query: EpisodeQuery) -> Result<Vec<EpisodeSummary>, LedgerError> {
        episodes::list_episodes(self, query).await
    }

    async fn get_episode(&self, id: &str) -> Result<Option<EpisodeDetail>, LedgerError> {
        episodes::get_episode(self, id).await
    }

    async fn alert_history(
        &self,
        alertname: &str,
        exclude: &str,
        since: OffsetDateTime,
    ) -> Result<crate::report::history::AlertHistory, LedgerError> {
        episodes::alert_history(self, alertname, exclude, since).await
    }

    async fn stats(&self, now: OffsetDateTime) -> Result<LedgerStats, LedgerError> {
        episodes::stats(self, now).await
    }

    async fn purge(&self, cutoff: OffsetDateTime) -> Result<u64, LedgerError> {
        episodes::purge(self, cutoff).await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, LedgerError> {
        outbox::claim_deliveries(self, owner, lease, now, limit).await
    }

    async fn record_delivery(
        &self,
        delivery_id: i64,
        owner: &str,
        result: DeliveryResult,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        outbox::record_delivery(self, delivery_id, owner, result, now).await
    }

    async fn record_delivery_with_refs(
        &self,
        delivery_id: i64,
        owner: &str,
        result: DeliveryResult,
        refs: (&str, &[(&str, &str)]),
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        outbox::record_delivery_with_refs(self, delivery_id, owner, result, refs, now).await
    }

    async fn claim_retriage(
        &self,
        episode_id: &str,
        verdict_before: OffsetDateTime,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        retriage::claim(self, episode_id, verdict_before, reason, now).await
    }

    async fn record_operator_action(
        &self,
        episode_id: &str,
        action: &str,
        what: &str,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        retriage::record_action(self, episode_id, action, what, now).await
    }

    async fn check_writable(&self, now: OffsetDateTime) -> Result<(), LedgerError> {
        let now_text = rfc3339(now);
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('last_write_check', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![now_text],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}
