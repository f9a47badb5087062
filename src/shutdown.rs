//! Graceful shutdown, in two stages, so it is obvious what happens on SIGTERM:
//!
//! 1. `stop_intake` fires on the first SIGTERM or SIGINT: the listener stops accepting, idle
//!    workers stop leasing new jobs, running jobs carry on.
//! 2. `abort_jobs` fires when the grace period has passed (or on a second signal): running jobs
//!    are cancelled and their leases released, so the next process takes them at once. Anything
//!    that cannot be released is left to lease expiry.
//!
//! SIGHUP is not a shutdown: `serve` re-reads its webhook and read secrets on it
//! (`app::reload_secrets_on_hangup`).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct Shutdown {
    pub stop_intake: CancellationToken,
    pub abort_jobs: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Starts stage 1 now and stage 2 after `grace`.
    pub fn begin(&self, grace: Duration) {
        if self.stop_intake.is_cancelled() {
            self.abort_jobs.cancel();
            return;
        }
        self.stop_intake.cancel();
        let abort = self.abort_jobs.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(grace) => abort.cancel(),
                _ = abort.cancelled() => {}
            }
        });
    }

    /// Waits for SIGTERM or SIGINT and drives both stages; a second signal aborts at
    /// once.
    pub fn listen_for_signals(&self, grace: Duration) {
        let shutdown = self.clone();
        tokio::spawn(async move {
            loop {
                let signal = match wait_for_signal().await {
                    Ok(signal) => signal,
                    Err(error) => {
                        tracing::error!(%error, "cannot listen for signals; SIGTERM will stop the service without a drain");
                        return;
                    }
                };
                tracing::info!(
                    signal,
                    grace_secs = grace.as_secs(),
                    "shutdown requested: no new work; running triages get the grace period"
                );
                shutdown.begin(grace);
                if shutdown.abort_jobs.is_cancelled() {
                    return;
                }
            }
        });
    }
}

/// Waits for SIGTERM or SIGINT; returns its name.
async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}
