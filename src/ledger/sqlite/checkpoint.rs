//! Moves WAL checkpoints off the commit path. With SQLite's automatic checkpoint, the commit
//! that crosses the WAL threshold also copies the WAL into the database file and fsyncs it, so
//! every few hundred alerts one webhook waits several fsyncs longer than the rest: that is the
//! p99 of the ack. Here the writer's automatic checkpoint is off and this thread, on its own
//! connection, runs a PASSIVE checkpoint a few times a second. PASSIVE never blocks the writer
//! or the readers; once it has copied everything, the next commit starts the WAL over, so the
//! file stays small.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use super::{open_connection, unavailable};
use crate::ledger::LedgerError;

/// How often the WAL is copied back into the database file.
pub(super) const INTERVAL: Duration = Duration::from_millis(250);

/// The checkpoint thread; dropping this stops it (after at most one checkpoint in progress).
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

/// Starts the checkpoint thread on a connection of its own to `path`.
pub(super) fn spawn(path: &Path) -> Result<Checkpointer, LedgerError> {
    let connection = open_connection(path)?;
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("ledger-checkpoint".into())
        .spawn(move || {
            // Until the ledger is dropped (the sender goes away) or says stop.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                if let Err(error) = checkpoint(&connection) {
                    tracing::warn!(%error, "ledger checkpoint failed; will retry");
                }
            }
        })
        .map_err(|e| LedgerError::Unavailable(format!("cannot start checkpoint thread: {e}")))?;
    Ok(Checkpointer { _stop: stop })
}

/// One PASSIVE checkpoint; returns (frames in the WAL, frames copied to the database).
fn checkpoint(connection: &rusqlite::Connection) -> Result<(i64, i64), LedgerError> {
    connection
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        })
        .map_err(unavailable)
}
