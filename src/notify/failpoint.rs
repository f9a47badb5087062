//! Test-only failpoints (feature `test-runbook`, never in a release build): with
//! `CABAL_TRIAGE_TEST_FAILPOINT=<name>` in the environment, the process stops making progress at
//! that point (the task waits forever) so that an integration test can SIGKILL it there, for
//! example between a successful Slack post and the ledger update that records it; a delay
//! failpoint instead holds the task up once, for the given time (a slow ledger). Without the
//! feature, `hit` and `delay_once` do nothing.

use std::time::Duration;

/// The environment variable naming the failpoint to stop at.
pub const ENV: &str = "CABAL_TRIAGE_TEST_FAILPOINT";

/// After `chat.postMessage` returned, before the message's `ts` is stored.
pub const SLACK_AFTER_POST: &str = "slack-after-post";

/// After a thread reply's `chat.postMessage` returned, before the outcome is recorded.
pub const SLACK_AFTER_REPLY: &str = "slack-after-reply";

/// After ntfy accepted a publish, before its message id is recorded.
pub const NTFY_AFTER_PUBLISH: &str = "ntfy-after-publish";

/// After Pushover accepted a message, before its request id is recorded.
pub const PUSHOVER_AFTER_SEND: &str = "pushover-after-send";

/// After the outbox's claim returned (delay failpoint): the claim took most of the lease, as
/// it can on a busy DynamoDB table.
pub const OUTBOX_SLOW_CLAIM: &str = "outbox-slow-claim";

/// Stops here forever when the failpoint `name` is armed (test builds only).
pub async fn hit(name: &str) {
    #[cfg(feature = "test-runbook")]
    if std::env::var(ENV).as_deref() == Ok(name) {
        eprintln!("cabal-triage: failpoint {name} reached; waiting to be killed");
        std::future::pending::<()>().await;
    }
    #[cfg(not(feature = "test-runbook"))]
    let _ = name;
}

/// Waits `by` here the first time the failpoint `name` is armed (test builds only).
pub async fn delay_once(name: &str, by: Duration) {
    #[cfg(feature = "test-runbook")]
    if std::env::var(ENV).as_deref() == Ok(name) {
        static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        if !DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
            eprintln!("cabal-triage: failpoint {name} reached; waiting {by:?}");
            tokio::time::sleep(by).await;
        }
    }
    #[cfg(not(feature = "test-runbook"))]
    let _ = (name, by);
}
