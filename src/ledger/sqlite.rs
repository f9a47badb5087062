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

mod checkpoint;
mod outbox;

#[cfg(test)]
pub(crate) const CHECKPOINT_INTERVAL: Duration = checkpoint::INTERVAL;

use outbox::read_refs;

const MAX_BATCH: usize = 512;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE episodes (
    id            TEXT PRIMARY KEY,
    group_key     TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    starts_at     TEXT NOT NULL,
    alertname     TEXT NOT NULL,
    status        TEXT NOT NULL,
    state         TEXT NOT NULL,
    ends_at       TEXT,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL,
    repeats       INTEGER NOT NULL DEFAULT 0,
    alert_json    TEXT NOT NULL,
    receiver      TEXT NOT NULL,
    external_url  TEXT NOT NULL,
    report_json   TEXT
);
CREATE INDEX episodes_last_seen ON episodes(last_seen_ms);
CREATE INDEX episodes_state ON episodes(state, last_seen_ms);
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    episode_id       TEXT NOT NULL UNIQUE REFERENCES episodes(id) ON DELETE CASCADE,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    not_before_ms    INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_ms INTEGER,
    leased_ms        INTEGER,
    last_error       TEXT,
    duration_ms      INTEGER,
    created_ms       INTEGER NOT NULL,
    updated_ms       INTEGER NOT NULL
);
CREATE INDEX jobs_runnable ON jobs(state, not_before_ms);
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    episode_id      TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    destination     TEXT NOT NULL,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error      TEXT,
    external_ref    TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX deliveries_episode ON deliveries(episode_id);
CREATE INDEX deliveries_due ON deliveries(state, next_attempt_ms);
"#,
    // 2: the outbox dispatcher's leases, and per-episode references to what deliveries created
    // (the Slack message's channel and ts, the PagerDuty incident id).
    r#"
ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
ALTER TABLE deliveries ADD COLUMN lease_expires_ms INTEGER;
CREATE INDEX deliveries_order ON deliveries(episode_id, destination, state, id);
CREATE TABLE episode_refs (
    episode_id TEXT NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (episode_id, key)
);
"#,
    // 3: when each row's current lease began, and the window in which earlier attempts may
    // have delivered something unrecorded (`DoubtWindow`).
    r#"
ALTER TABLE deliveries ADD COLUMN claimed_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN doubt_from_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN doubt_to_ms INTEGER;
"#,
];

type Completion = Box<dyn FnOnce(Option<&LedgerError>) + Send>;
/// A write: given the open transaction (or the reason none could be opened), it does its work
/// and returns what to tell its caller once the commit's outcome is known.
type WriteOp = Box<dyn FnOnce(Result<&Transaction<'_>, &LedgerError>) -> Completion + Send>;

/// The SQLite implementation of [`Ledger`].
pub struct SqliteLedger {
    writer: mpsc::UnboundedSender<WriteOp>,
    reader: Arc<Mutex<Connection>>,
    /// Destinations that get an outbox row per state change (empty: nothing to deliver).
    destinations: Arc<Vec<String>>,
    _checkpointer: checkpoint::Checkpointer,
    _lock: File,
    path: PathBuf,
}

impl SqliteLedger {
    /// Opens (creating when absent) the ledger at `path`, runs migrations, and takes back the
    /// leases a previous process left behind.
    pub fn open(path: &Path, destinations: Vec<String>) -> Result<SqliteLedger, LedgerError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                file_unavailable(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let lock_path = lock_path(path);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| file_unavailable(format!("cannot open {}: {e}", lock_path.display())))?;
        lock.try_lock()
            .map_err(|e| LedgerError::Locked(format!("{} ({e})", lock_path.display())))?;

        let mut writer = open_connection(path)?;
        // Checkpoints are the checkpoint thread's job (see checkpoint.rs).
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(unavailable)?;
        migrate(&mut writer)?;
        reclaim_leases(&mut writer, &destinations, OffsetDateTime::now_utc())?;
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
            destinations: Arc::new(destinations),
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

fn open_connection(path: &Path) -> Result<Connection, LedgerError> {
    let connection = Connection::open(path)
        .map_err(|e| file_unavailable(format!("cannot open {}: {e}", path.display())))?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA foreign_keys = ON;
             PRAGMA busy_timeout = 5000;",
        )
        .map_err(unavailable)?;
    Ok(connection)
}

fn migrate(connection: &mut Connection) -> Result<(), LedgerError> {
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(unavailable)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(LedgerError::Corrupt(format!(
            "schema version {version} is newer than this build knows ({known}); run the newer cabal-triage or restore a backup"
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = connection.transaction().map_err(unavailable)?;
        tx.execute_batch(sql).map_err(unavailable)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
    }
    Ok(())
}

/// At start, no lease can be alive: the file lock says no other process uses the ledger. Jobs
/// left leased by a crash are queued again (the interrupted attempt counts, so a job that kills
/// the process cannot loop forever), or failed when they used every attempt.
fn reclaim_leases(
    connection: &mut Connection,
    destinations: &[String],
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let tx = connection.transaction().map_err(unavailable)?;
    let now_ms = unix_ms(now);
    // Deliveries in flight when the process stopped go out again at once; their attempt counts,
    // and what it may have sent is in doubt from its claim to its lease's end (or now), which
    // tells the dispatcher where to look before sending again.
    tx.execute(
        concat!(
            "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_expires_ms = NULL,
             next_attempt_ms = ?1, updated_ms = ?1,
             doubt_from_ms = ",
            outbox::doubt_from_widened!(),
            ",
             doubt_to_ms = ",
            outbox::doubt_to_widened!("COALESCE(MIN(lease_expires_ms, ?1), ?1)"),
            ",
             last_error = 'attempt ' || attempts || ' interrupted: the previous cabal-triage process stopped while it ran'
         WHERE state = 'sending'"
        ),
        params![now_ms],
    )
    .map_err(unavailable)?;
    let leased: Vec<(i64, String, u32, u32)> = {
        let mut statement = tx
            .prepare(
                "SELECT id, episode_id, attempts, max_attempts FROM jobs WHERE state = 'leased'",
            )
            .map_err(unavailable)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)?
    };
    for (job_id, episode_id, attempts, max_attempts) in leased {
        let error = format!("attempt {attempts} interrupted: the previous cabal-triage process stopped while it ran");
        let (job_state, episode_state) = if attempts >= max_attempts {
            enqueue_deliveries(
                &tx,
                destinations,
                &episode_id,
                DeliveryKind::TriageFailed,
                now_ms,
            )?;
            (JobState::Failed, EpisodeState::Failed)
        } else {
            (JobState::Queued, EpisodeState::Queued)
        };
        set_job_state(
            &tx,
            job_id,
            &episode_id,
            job_state,
            episode_state,
            Some(&error),
            now_ms,
            now_ms,
        )?;
    }
    tx.commit().map_err(unavailable)
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

#[allow(clippy::too_many_arguments)]
fn set_job_state(
    tx: &Transaction<'_>,
    job_id: i64,
    episode_id: &str,
    job_state: JobState,
    episode_state: EpisodeState,
    error: Option<&str>,
    not_before_ms: i64,
    now_ms: i64,
) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE jobs SET state = ?2, last_error = COALESCE(?3, last_error), not_before_ms = ?4,
                lease_owner = NULL, lease_expires_ms = NULL, updated_ms = ?5
         WHERE id = ?1",
        params![job_id, job_state.as_str(), error, not_before_ms, now_ms],
    )
    .map_err(unavailable)?;
    set_episode_state(tx, episode_id, episode_state)
}

fn set_episode_state(
    tx: &Transaction<'_>,
    episode_id: &str,
    state: EpisodeState,
) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE episodes SET state = ?2 WHERE id = ?1",
        params![episode_id, state.as_str()],
    )
    .map_err(unavailable)?;
    Ok(())
}

fn enqueue_deliveries(
    tx: &Transaction<'_>,
    destinations: &[String],
    episode_id: &str,
    kind: DeliveryKind,
    now_ms: i64,
) -> Result<(), LedgerError> {
    for destination in destinations {
        if !destination_wants(destination, kind) {
            continue;
        }
        if kind == DeliveryKind::Repeat {
            // Repeats coalesce: one waiting repeat row per episode and destination is enough
            // (HA peers and retries can re-send a group several times within seconds). And a
            // repeat gets no row before one that posts the episode's message
            // (`repeat_row_wanted`).
            let mut statement = tx
                .prepare_cached(
                    "SELECT kind, state FROM deliveries WHERE episode_id = ?1 AND destination = ?2",
                )
                .map_err(unavailable)?;
            let earlier: Vec<(String, String)> = statement
                .query_map(params![episode_id, destination], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .and_then(|rows| rows.collect())
                .map_err(unavailable)?;
            let waiting = earlier
                .iter()
                .any(|(kind, state)| kind == "repeat" && state == "pending");
            let kinds = earlier
                .iter()
                .filter_map(|(kind, _)| DeliveryKind::parse(kind));
            if waiting || !repeat_row_wanted(destination, kinds) {
                continue;
            }
        }
        let kind = kind.as_str();
        tx.execute(
            "INSERT INTO deliveries (episode_id, destination, kind, state, next_attempt_ms, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?4, ?4)",
            params![episode_id, destination, kind, now_ms],
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

fn ingest_one(
    tx: &Transaction<'_>,
    destinations: &[String],
    incoming: &IncomingAlert,
    now_ms: i64,
) -> Result<IngestResult, LedgerError> {
    let id = incoming.key.id();
    let alertname = incoming.alert.alertname().to_string();
    let existing: Option<(String, String)> = tx
        .query_row(
            "SELECT state, status FROM episodes WHERE id = ?1",
            params![id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let ends_at = incoming.alert.ends_at.map(rfc3339);
    match existing {
        None => {
            let firing = incoming.alert.status == AlertStatus::Firing;
            let state = match (incoming.has_runbook, firing) {
                (false, _) => EpisodeState::NoRunbook,
                (true, true) => EpisodeState::Queued,
                (true, false) => EpisodeState::Skipped,
            };
            let alert_json =
                serde_json::to_string(&incoming.alert).map_err(|e| corrupt("alert", e))?;
            tx.execute(
                "INSERT INTO episodes (id, group_key, fingerprint, starts_at, alertname, status, state,
                     ends_at, first_seen_ms, last_seen_ms, repeats, alert_json, receiver, external_url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 0, ?10, ?11, ?12)",
                params![
                    id,
                    incoming.key.group_key,
                    incoming.key.fingerprint,
                    incoming.key.starts_at_text(),
                    alertname,
                    incoming.alert.status.as_str(),
                    state.as_str(),
                    ends_at,
                    now_ms,
                    alert_json,
                    incoming.receiver,
                    incoming.external_url,
                ],
            )
            .map_err(unavailable)?;
            if state == EpisodeState::Queued {
                tx.execute(
                    "INSERT INTO jobs (episode_id, state, attempts, max_attempts, not_before_ms, created_ms, updated_ms)
                     VALUES (?1, 'queued', 0, ?2, ?3, ?3, ?3)",
                    params![id, incoming.max_attempts, now_ms],
                )
                .map_err(unavailable)?;
            }
            Ok(IngestResult {
                id,
                alertname,
                state,
                outcome: IngestOutcome::Created,
            })
        }
        Some((state_text, status_text)) => {
            let state = EpisodeState::parse(&state_text)
                .ok_or_else(|| corrupt("episode state", &state_text))?;
            let resolves =
                incoming.alert.status == AlertStatus::Resolved && status_text == "firing";
            if resolves {
                // A resolution is news, not a repeat. Once resolved an episode stays resolved: in
                // HA, a firing notification from a slower peer can arrive after the resolution.
                tx.execute(
                    "UPDATE episodes SET status = 'resolved', ends_at = ?2, last_seen_ms = ?3 WHERE id = ?1",
                    params![id, ends_at, now_ms],
                )
                .map_err(unavailable)?;
                enqueue_deliveries(tx, destinations, &id, DeliveryKind::Resolved, now_ms)?;
                Ok(IngestResult {
                    id,
                    alertname,
                    state,
                    outcome: IngestOutcome::Resolved,
                })
            } else {
                tx.execute(
                    "UPDATE episodes SET repeats = repeats + 1, last_seen_ms = ?2 WHERE id = ?1",
                    params![id, now_ms],
                )
                .map_err(unavailable)?;
                if status_text == "firing"
                    && !matches!(state, EpisodeState::NoRunbook | EpisodeState::Skipped)
                {
                    enqueue_deliveries(tx, destinations, &id, DeliveryKind::Repeat, now_ms)?;
                }
                Ok(IngestResult {
                    id,
                    alertname,
                    state,
                    outcome: IngestOutcome::Repeat,
                })
            }
        }
    }
}

/// Marks failed the leased jobs whose lease expired with no attempt left.
fn fail_exhausted_expired(
    tx: &Transaction<'_>,
    destinations: &[String],
    now_ms: i64,
) -> Result<(), LedgerError> {
    let exhausted: Vec<(i64, String, Option<String>, u32)> = {
        let mut statement = tx
            .prepare_cached(
                "SELECT id, episode_id, lease_owner, attempts FROM jobs
                 WHERE state = 'leased' AND lease_expires_ms < ?1 AND attempts >= max_attempts",
            )
            .map_err(unavailable)?;
        let rows = statement
            .query_map(params![now_ms], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)?
    };
    for (job_id, episode_id, owner, attempts) in exhausted {
        let error = format!(
            "attempt {attempts} lost: the lease of worker {} expired (crashed or stalled); no attempt left",
            owner.unwrap_or_default()
        );
        set_job_state(
            tx,
            job_id,
            &episode_id,
            JobState::Failed,
            EpisodeState::Failed,
            Some(&error),
            now_ms,
            now_ms,
        )?;
        enqueue_deliveries(
            tx,
            destinations,
            &episode_id,
            DeliveryKind::TriageFailed,
            now_ms,
        )?;
    }
    Ok(())
}

fn lease_one(
    tx: &Transaction<'_>,
    destinations: &[String],
    owner: &str,
    lease: Duration,
    now_ms: i64,
) -> Result<Option<LeasedJob>, LedgerError> {
    fail_exhausted_expired(tx, destinations, now_ms)?;
    let candidate: Option<(i64, String, String, Option<String>)> = tx
        .prepare_cached(
            "SELECT id, episode_id, state, lease_owner FROM jobs
             WHERE (state = 'queued' AND not_before_ms <= ?1)
                OR (state = 'leased' AND lease_expires_ms < ?1)
             ORDER BY not_before_ms, id LIMIT 1",
        )
        .map_err(unavailable)?
        .query_row(params![now_ms], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()
        .map_err(unavailable)?;
    let Some((job_id, episode_id, state, previous_owner)) = candidate else {
        return Ok(None);
    };
    let expired_note = (state == "leased").then(|| {
        format!(
            "previous attempt lost: the lease of worker {} expired (crashed or stalled)",
            previous_owner.unwrap_or_default()
        )
    });
    let lease_expires = now_ms + lease.as_millis() as i64;
    tx.execute(
        "UPDATE jobs SET state = 'leased', attempts = attempts + 1, lease_owner = ?2,
             lease_expires_ms = ?3, leased_ms = ?4, updated_ms = ?4,
             last_error = COALESCE(?5, last_error)
         WHERE id = ?1",
        params![job_id, owner, lease_expires, now_ms, expired_note],
    )
    .map_err(unavailable)?;
    set_episode_state(tx, &episode_id, EpisodeState::Running)?;
    let (attempt, max_attempts, group_key, alert_json): (u32, u32, String, String) = tx
        .query_row(
            "SELECT j.attempts, j.max_attempts, e.group_key, e.alert_json
             FROM jobs j JOIN episodes e ON e.id = j.episode_id WHERE j.id = ?1",
            params![job_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .map_err(unavailable)?;
    let alert: WebhookAlert =
        serde_json::from_str(&alert_json).map_err(|e| corrupt("stored alert", e))?;
    // "Triage running" once per episode: a job released at shutdown starts again at attempt 1.
    let announced: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE episode_id = ?1 AND kind = 'started')",
            params![episode_id],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    if attempt == 1 && !announced {
        enqueue_deliveries(tx, destinations, &episode_id, DeliveryKind::Started, now_ms)?;
    }
    Ok(Some(LeasedJob {
        job_id,
        episode_id,
        group_key,
        alert,
        attempt,
        max_attempts,
    }))
}

/// Whether `owner` still holds the lease on `job_id`.
fn holds_lease(
    tx: &Transaction<'_>,
    job_id: i64,
    owner: &str,
) -> Result<Option<(String, i64, u32, u32)>, LedgerError> {
    tx.query_row(
        "SELECT episode_id, COALESCE(leased_ms, 0), attempts, max_attempts FROM jobs
         WHERE id = ?1 AND state = 'leased' AND lease_owner = ?2",
        params![job_id, owner],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )
    .optional()
    .map_err(unavailable)
}

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSummary> {
    Ok(RawSummary {
        id: row.get(0)?,
        alertname: row.get(1)?,
        status: row.get(2)?,
        state: row.get(3)?,
        group_key: row.get(4)?,
        fingerprint: row.get(5)?,
        starts_at: row.get(6)?,
        ends_at: row.get(7)?,
        first_seen_ms: row.get(8)?,
        last_seen_ms: row.get(9)?,
        repeats: row.get(10)?,
    })
}

const SUMMARY_COLUMNS: &str = "id, alertname, status, state, group_key, fingerprint, starts_at, ends_at, first_seen_ms, last_seen_ms, repeats";

struct RawSummary {
    id: String,
    alertname: String,
    status: String,
    state: String,
    group_key: String,
    fingerprint: String,
    starts_at: String,
    ends_at: Option<String>,
    first_seen_ms: i64,
    last_seen_ms: i64,
    repeats: i64,
}

impl RawSummary {
    fn into_summary(self) -> Result<EpisodeSummary, LedgerError> {
        Ok(EpisodeSummary {
            status: match self.status.as_str() {
                "firing" => AlertStatus::Firing,
                "resolved" => AlertStatus::Resolved,
                other => return Err(corrupt("episode status", other)),
            },
            state: EpisodeState::parse(&self.state)
                .ok_or_else(|| corrupt("episode state", &self.state))?,
            starts_at: parse_rfc3339(&self.starts_at)?,
            ends_at: self.ends_at.as_deref().map(parse_rfc3339).transpose()?,
            first_seen: from_unix_ms(self.first_seen_ms),
            last_seen: from_unix_ms(self.last_seen_ms),
            repeats: self.repeats.max(0) as u64,
            id: self.id,
            alertname: self.alertname,
            group_key: self.group_key,
            fingerprint: self.fingerprint,
        })
    }
}

#[async_trait]
impl Ledger for SqliteLedger {
    async fn ingest(
        &self,
        alerts: Vec<IncomingAlert>,
        now: OffsetDateTime,
    ) -> Result<Vec<IngestResult>, LedgerError> {
        let destinations = Arc::clone(&self.destinations);
        let now_ms = unix_ms(now);
        self.write(move |tx| {
            alerts
                .iter()
                .map(|incoming| ingest_one(tx, &destinations, incoming, now_ms))
                .collect()
        })
        .await
    }

    async fn lease_next(
        &self,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<LeasedJob>, LedgerError> {
        let owner = owner.to_string();
        let now_ms = unix_ms(now);
        let destinations = Arc::clone(&self.destinations);
        self.write(move |tx| lease_one(tx, &destinations, &owner, lease, now_ms))
            .await
    }

    async fn renew_lease(
        &self,
        job_id: i64,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        let owner = owner.to_string();
        let now_ms = unix_ms(now);
        self.write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE jobs SET lease_expires_ms = ?3, updated_ms = ?4
                     WHERE id = ?1 AND state = 'leased' AND lease_owner = ?2",
                    params![job_id, owner, now_ms + lease.as_millis() as i64, now_ms],
                )
                .map_err(unavailable)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn complete_job(
        &self,
        job_id: i64,
        owner: &str,
        report_json: String,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        let owner = owner.to_string();
        let now_ms = unix_ms(now);
        let destinations = Arc::clone(&self.destinations);
        self.write(move |tx| {
            let Some((episode_id, leased_ms, _, _)) = holds_lease(tx, job_id, &owner)? else {
                return Ok(false);
            };
            tx.execute(
                "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_ms = NULL,
                     duration_ms = ?2, updated_ms = ?3 WHERE id = ?1",
                params![job_id, (now_ms - leased_ms).max(0), now_ms],
            )
            .map_err(unavailable)?;
            tx.execute(
                "UPDATE episodes SET state = 'triaged', report_json = ?2 WHERE id = ?1",
                params![episode_id, report_json],
            )
            .map_err(unavailable)?;
            enqueue_deliveries(
                tx,
                &destinations,
                &episode_id,
                DeliveryKind::Verdict,
                now_ms,
            )?;
            Ok(true)
        })
        .await
    }

    async fn fail_attempt(
        &self,
        job_id: i64,
        owner: &str,
        error: String,
        retry_after: Duration,
        now: OffsetDateTime,
    ) -> Result<JobState, LedgerError> {
        let owner = owner.to_string();
        let now_ms = unix_ms(now);
        let destinations = Arc::clone(&self.destinations);
        self.write(move |tx| {
            let Some((episode_id, _, attempts, max_attempts)) = holds_lease(tx, job_id, &owner)?
            else {
                // The lease was lost meanwhile; whoever holds the job now decides.
                return Ok(JobState::Leased);
            };
            let error = format!("attempt {attempts} of {max_attempts}: {error}");
            if attempts >= max_attempts {
                set_job_state(
                    tx,
                    job_id,
                    &episode_id,
                    JobState::Failed,
                    EpisodeState::Failed,
                    Some(&error),
                    now_ms,
                    now_ms,
                )?;
                enqueue_deliveries(
                    tx,
                    &destinations,
                    &episode_id,
                    DeliveryKind::TriageFailed,
                    now_ms,
                )?;
                Ok(JobState::Failed)
            } else {
                let not_before = now_ms + retry_after.as_millis() as i64;
                set_job_state(
                    tx,
                    job_id,
                    &episode_id,
                    JobState::Queued,
                    EpisodeState::Queued,
                    Some(&error),
                    not_before,
                    now_ms,
                )?;
                Ok(JobState::Queued)
            }
        })
        .await
    }

    async fn release(
        &self,
        job_id: i64,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), LedgerError> {
        let owner = owner.to_string();
        let now_ms = unix_ms(now);
        self.write(move |tx| {
            if let Some((episode_id, _, _, _)) = holds_lease(tx, job_id, &owner)? {
                tx.execute(
                    "UPDATE jobs SET attempts = MAX(attempts - 1, 0) WHERE id = ?1",
                    params![job_id],
                )
                .map_err(unavailable)?;
                set_job_state(
                    tx,
                    job_id,
                    &episode_id,
                    JobState::Queued,
                    EpisodeState::Queued,
                    None,
                    now_ms,
                    now_ms,
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn list_episodes(&self, query: EpisodeQuery) -> Result<Vec<EpisodeSummary>, LedgerError> {
        self.read(move |connection| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM episodes
                 WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR status = ?2)
                 ORDER BY last_seen_ms DESC, first_seen_ms DESC, id LIMIT ?3"
            );
            let mut statement = connection.prepare_cached(&sql).map_err(unavailable)?;
            let rows = statement
                .query_map(
                    params![
                        query.state.map(EpisodeState::as_str),
                        query.status.map(AlertStatus::as_str),
                        query.limit as i64
                    ],
                    summary_from_row,
                )
                .map_err(unavailable)?;
            let mut episodes = Vec::new();
            for row in rows {
                episodes.push(row.map_err(unavailable)?.into_summary()?);
            }
            Ok(episodes)
        })
        .await
    }

    async fn get_episode(&self, id: &str) -> Result<Option<EpisodeDetail>, LedgerError> {
        let id = id.to_string();
        self.read(move |connection| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS}, alert_json, report_json FROM episodes WHERE id = ?1"
            );
            let row = connection
                .query_row(&sql, params![id], |row| {
                    Ok((
                        summary_from_row(row)?,
                        row.get::<_, String>(11)?,
                        row.get::<_, Option<String>>(12)?,
                    ))
                })
                .optional()
                .map_err(unavailable)?;
            let Some((raw, alert_json, report_json)) = row else {
                return Ok(None);
            };
            let summary = raw.into_summary()?;
            let alert =
                serde_json::from_str(&alert_json).map_err(|e| corrupt("stored alert", e))?;
            let report = report_json
                .map(|text| serde_json::from_str(&text).map_err(|e| corrupt("stored report", e)))
                .transpose()?;
            let job = connection
                .query_row(
                    "SELECT state, attempts, max_attempts, last_error, lease_expires_ms, duration_ms
                     FROM jobs WHERE episode_id = ?1",
                    params![summary.id],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, u32>(1)?,
                            row.get::<_, u32>(2)?,
                            row.get::<_, Option<String>>(3)?,
                            row.get::<_, Option<i64>>(4)?,
                            row.get::<_, Option<i64>>(5)?,
                        ))
                    },
                )
                .optional()
                .map_err(unavailable)?
                .map(|(state, attempts, max_attempts, last_error, lease_expires, duration)| {
                    Ok::<_, LedgerError>(JobView {
                        state: JobState::parse(&state).ok_or_else(|| corrupt("job state", &state))?,
                        attempts,
                        max_attempts,
                        last_error,
                        lease_expires_at: lease_expires.map(from_unix_ms),
                        duration_ms: duration.map(|d| d.max(0) as u64),
                    })
                })
                .transpose()?;
            let mut statement = connection
                .prepare_cached(
                    "SELECT destination, kind, state, attempts, last_error, external_ref
                     FROM deliveries WHERE episode_id = ?1 ORDER BY id",
                )
                .map_err(unavailable)?;
            let deliveries = statement
                .query_map(params![summary.id], |row| {
                    Ok(DeliveryView {
                        destination: row.get(0)?,
                        kind: row.get(1)?,
                        state: row.get(2)?,
                        attempts: row.get(3)?,
                        last_error: row.get(4)?,
                        external_ref: row.get(5)?,
                    })
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let external_refs = read_refs(connection, &summary.id)?;
            Ok(Some(EpisodeDetail {
                external_refs,
                pagerduty_dedup_key: pagerduty_dedup_key(&summary.group_key),
                summary,
                alert,
                job,
                report,
                deliveries,
            }))
        })
        .await
    }

    async fn stats(&self, now: OffsetDateTime) -> Result<LedgerStats, LedgerError> {
        let now_ms = unix_ms(now);
        self.read(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT state, COUNT(*) FROM episodes GROUP BY state")
                .map_err(unavailable)?;
            let counts: Vec<(String, i64)> = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            let episodes_by_state = EpisodeState::ALL
                .into_iter()
                .map(|state| {
                    let count = counts
                        .iter()
                        .find(|(s, _)| s == state.as_str())
                        .map(|(_, n)| *n as u64)
                        .unwrap_or(0);
                    (state, count)
                })
                .collect();
            let queue_depth: i64 = connection
                .query_row(
                    "SELECT COUNT(*) FROM jobs WHERE (state = 'queued' AND not_before_ms <= ?1)
                        OR (state = 'leased' AND lease_expires_ms < ?1)",
                    params![now_ms],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            Ok(LedgerStats {
                episodes_by_state,
                queue_depth: queue_depth.max(0) as u64,
            })
        })
        .await
    }

    async fn purge(&self, cutoff: OffsetDateTime) -> Result<u64, LedgerError> {
        let cutoff_ms = unix_ms(cutoff);
        self.write(move |tx| {
            let deleted = tx
                .execute(
                    "DELETE FROM episodes WHERE last_seen_ms < ?1",
                    params![cutoff_ms],
                )
                .map_err(unavailable)?;
            Ok(deleted as u64)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, LedgerError> {
        let owner = owner.to_string();
        let now_ms = unix_ms(now);
        self.write(move |tx| outbox::claim(tx, &owner, lease, now_ms, limit))
            .await
    }

    async fn record_delivery(
        &self,
        delivery_id: i64,
        owner: &str,
        result: DeliveryResult,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        let owner = owner.to_string();
        let now_ms = unix_ms(now);
        self.write(move |tx| outbox::record(tx, delivery_id, &owner, &result, now_ms))
            .await
    }

    async fn record_delivery_with_refs(
        &self,
        delivery_id: i64,
        owner: &str,
        result: DeliveryResult,
        (episode_id, refs): (&str, &[(&str, &str)]),
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        let owner = owner.to_string();
        let episode_id = episode_id.to_string();
        let refs = owned_refs(refs);
        let now_ms = unix_ms(now);
        // One transaction: the references (stored whoever holds the row), then the outcome.
        self.write(move |tx| {
            for (key, value) in &refs {
                outbox::set_ref(tx, &episode_id, key, value, now_ms)?;
            }
            outbox::record(tx, delivery_id, &owner, &result, now_ms)
        })
        .await
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

/// References as owned pairs, to move into a write closure.
fn owned_refs(refs: &[(&str, &str)]) -> Vec<(String, String)> {
    refs.iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}
