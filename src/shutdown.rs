//! Graceful shutdown, in two stages, so it is obvious what happens on SIGTERM:
//!
//! 1. `stop_intake` fires on the first SIGTERM or SIGINT: the listener stops accepting, idle
//!    workers stop leasing new jobs, running jobs carry on.
//! 2. `abort_jobs` fires when the grace period has passed (or on a second signal): running jobs
//!    are cancelled and their leases released, so the next process takes them at once. Anything
//!    that cannot be released is left to lease expiry.
//!
//! SIGHUP does the same as SIGTERM: a graceful drain, never the abrupt default death. Secrets
//! (`*_file` included) are read at start only, so rotating one means a restart; the drain makes
//! a `kill -HUP` (or a closed terminal) as safe as a `systemctl restart`.

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

    /// Waits for SIGTERM, SIGINT or SIGHUP and drives both stages; a second signal aborts at
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
                if signal == "SIGHUP" {
                    tracing::info!("SIGHUP drains and stops like SIGTERM; secrets and the configuration are read at start, so start the service again to pick up rotated ones");
                }
                shutdown.begin(grace);
                if shutdown.abort_jobs.is_cancelled() {
                    return;
                }
            }
        });
    }
}

/// Waits for SIGTERM, SIGINT or SIGHUP; returns its name.
async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
        _ = hangup.recv() => "SIGHUP",
    })
}
