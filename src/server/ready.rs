//! `/readyz` without a write per call. Checking that the ledger is writable means writing to it
//! (SQLite: a durable transaction; DynamoDB: a `PutItem` on one item), so an unauthenticated
//! caller polling `/readyz` could otherwise grow the SQLite file (300 calls: 1.1 MB) or make
//! one DynamoDB item hot. The result is cached for [`READY_TTL`]: at most one real check per
//! period, whoever asks and however many ask at once (they wait for the one check in flight).

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

/// How long one ledger check answers `/readyz` for everyone.
pub const READY_TTL: Duration = Duration::from_secs(5);

/// The last check and when it was made.
#[derive(Debug)]
pub struct Readiness {
    ttl: Duration,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    pub fn new(ttl: Duration) -> Self {
        Readiness {
            ttl,
            last: Mutex::new(None),
        }
    }

    /// The cached result when it is fresh; otherwise runs `check` (one caller at a time: the
    /// others wait and then read its result) and caches what it said.
    pub async fn get<F, Fut>(&self, check: F) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let mut last = self.last.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < self.ttl {
                return result.clone();
            }
        }
        let result = check().await;
        *last = Some((Instant::now(), result.clone()));
        result
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new(READY_TTL)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn many_callers_at_once_share_one_check_then_it_expires() {
        let readiness = Arc::new(Readiness::new(Duration::from_millis(300)));
        let checks = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let readiness = Arc::clone(&readiness);
            let checks = Arc::clone(&checks);
            tasks.push(tokio::spawn(async move {
                readiness
                    .get(|| async {
                        checks.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Err("disk full".to_string())
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), Err("disk full".to_string()));
        }
        assert_eq!(checks.load(Ordering::SeqCst), 1);
        tokio::time::sleep(Duration::from_millis(350)).await;
        let again = readiness
            .get(|| async {
                checks.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert_eq!(again, Ok(()));
        assert_eq!(checks.load(Ordering::SeqCst), 2);
    }
}
