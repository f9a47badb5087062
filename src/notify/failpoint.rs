//! Test-only failpoints (feature `test-runbook`, never in a release build): with
//! `CABAL_TRIAGE_TEST_FAILPOINT=<name>` in the environment, the process stops making progress at
//! that point (the task waits forever) so that an integration test can SIGKILL it there, for
//! example between a successful Slack post and the ledger update that records it. Without the
//! feature, `hit` does nothing.

/// The environment variable naming the failpoint to stop at.
pub const ENV: &str = "CABAL_TRIAGE_TEST_FAILPOINT";

/// After `chat.postMessage` returned, before the message's `ts` is stored.
pub const SLACK_AFTER_POST: &str = "slack-after-post";

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
