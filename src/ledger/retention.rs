//! Retention: the loop that deletes episodes (with their jobs and deliveries) once they have not
//! been seen for `ledger.retention_days`. It lives with the ledger because what retention means
//! is the ledger's business (`Ledger::purge`; DynamoDB's TTL is only a backstop); `serve` just
//! starts it.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::Ledger;
use crate::config::LedgerConfig;

/// How long episodes are kept, and how often the purge looks for older ones.
#[derive(Debug, Clone, Copy)]
pub struct RetentionPolicy {
    pub keep: Duration,
    pub every: Duration,
}

impl RetentionPolicy {
    /// `ledger.retention_days` and `ledger.purge_interval_secs`.
    pub fn from_config(config: &LedgerConfig) -> RetentionPolicy {
        RetentionPolicy {
            keep: config.retention(),
            every: Duration::from_secs(config.purge_interval_secs),
        }
    }
}

/// Purges episodes last seen more than `policy.keep` ago, at once and then every
/// `policy.every`, until `shutdown` is cancelled. A failed purge is logged and tried again at the
/// next round.
pub async fn run_retention(
    ledger: Arc<dyn Ledger>,
    policy: RetentionPolicy,
    shutdown: CancellationToken,
) {
    loop {
        let cutoff = OffsetDateTime::now_utc() - policy.keep;
        match ledger.purge(cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged episodes past retention"),
            Err(error) => tracing::warn!(%error, "purge failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(policy.every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertStatus;
    use crate::ledger::tests::incoming;
    use crate::ledger::{EpisodeQuery, SqliteLedger};

    #[tokio::test]
    async fn purges_what_is_past_retention_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let ledger: Arc<dyn Ledger> =
            Arc::new(SqliteLedger::open(&dir.path().join("ledger.db"), Vec::new()).unwrap());
        let now = OffsetDateTime::now_utc();
        let day = Duration::from_secs(86_400);
        for (fingerprint, seen) in [
            ("00000000000000old", now - day * 40),
            ("0000000000000new", now),
        ] {
            ledger
                .ingest(
                    vec![incoming(fingerprint, seen, AlertStatus::Firing, true)],
                    seen,
                )
                .await
                .unwrap();
        }
        let shutdown = CancellationToken::new();
        let policy = RetentionPolicy {
            keep: day * 30,
            every: Duration::from_millis(20),
        };
        let task = tokio::spawn(run_retention(Arc::clone(&ledger), policy, shutdown.clone()));
        let query = EpisodeQuery {
            limit: 10,
            state: None,
            status: None,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while ledger.list_episodes(query.clone()).await.unwrap().len() != 1 {
            assert!(std::time::Instant::now() < deadline, "nothing was purged");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let kept = ledger.list_episodes(query).await.unwrap();
        assert_eq!(kept[0].fingerprint, "0000000000000new");
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the loop stops when shutdown is cancelled")
            .unwrap();
    }
}
