//! The SQLite ledger's schema: the tables, as a list of migrations counted by
//! `PRAGMA user_version` (a file from a newer build is refused rather than misread), and the
//! settings every connection opens with.

use super::*;

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
pub(super) const MIGRATIONS: &[&str] = &[
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

pub(super) fn open_connection(path: &Path) -> Result<Connection, LedgerError> {
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

pub(super) fn migrate(connection: &mut Connection) -> Result<(), LedgerError> {
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
