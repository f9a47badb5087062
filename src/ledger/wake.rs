//! The in-process signal that delivery rows were written: the webhook intake (an ingest writes
//! `started`, `repeat` and `resolved` rows) and the workers (a triage's end writes `verdict` or
//! `triage_failed` rows) tell it, and the outbox (`notify::outbox`) claims at once instead of
//! waiting for its next poll. Rows another replica wrote are still found by the poll.

use std::sync::Arc;

/// Told by whoever writes delivery rows in this process (the webhook intake, the workers); the
/// outbox claims at once when told. A permit is kept when the outbox is busy, so a write while
/// it claims is not lost.
#[derive(Debug, Default)]
pub struct DeliveriesWritten(tokio::sync::Notify);

impl DeliveriesWritten {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Rows were written: the outbox should claim now.
    pub fn tell(&self) {
        self.0.notify_one();
    }

    /// Returns when told (at once if told since the last return).
    pub async fn told(&self) {
        self.0.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_tell_before_the_wait_is_kept() {
        let written = DeliveriesWritten::new();
        written.tell();
        tokio::time::timeout(Duration::from_millis(100), written.told())
            .await
            .expect("the permit of the earlier tell");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), written.told())
                .await
                .is_err(),
            "one tell wakes once"
        );
    }
}
