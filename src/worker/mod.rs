//! The worker pool: `concurrency` loops that lease triage jobs from the ledger, run the alert's
//! runbook under the triage budget, and store the report or the failure.
//!
//! A job is only worked on under a lease, renewed by a heartbeat while the runbook runs. A
//! runbook that fails, times out or panics costs one attempt; the job is retried with backoff
//! until its attempts are used up, then ends `failed` with its last error. On shutdown, idle
//! loops stop at once; running jobs get the grace period, then are cancelled and released.
//!
//! Every failure of a triage is worth another attempt (the attempts bound it); a loop that
//! cannot read the ledger waits longer after each failure. Both pauses are the crate's one
//! backoff (`timing::Backoff`) with this module's parameters.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::WorkerConfig;
use crate::ledger::{JobState, LeasedJob, Ledger, LedgerError};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::report::fit::{fit_report_json, MAX_STORED_REPORT_BYTES};
use crate::runbook::{Registry, TriageRequest};
use crate::shutdown::Shutdown;
use crate::timing::Backoff;

/// Pause before a failed triage is tried again: the ceiling 1 s, 2 s, 4 s … capped at 60 s,
/// drawn between half and all of it so that jobs that failed together (an AWS outage) do not
/// come back together, while the bounded attempts still cover at least half the ceilings.
pub const RETRY_BACKOFF: Backoff =
    Backoff::equal_jitter(Duration::from_secs(1), Duration::from_secs(60));

/// Longest pause of a worker loop that cannot lease (the ledger is failing).
const LEASE_ERROR_MAX_PAUSE: Duration = Duration::from_secs(30);

pub struct WorkerPool {
    pub ledger: Arc<dyn Ledger>,
    pub runbooks: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub work_available: Arc<Notify>,
    /// Told after a triage ended (its verdict or failure rows are written).
    pub deliveries_written: Arc<crate::ledger::DeliveriesWritten>,
    pub config: WorkerConfig,
    /// Prefix of lease owner names (host and process), so a lease names who holds it.
    pub owner_prefix: String,
}

impl WorkerPool {
    /// Runs until shutdown; returns when every loop has stopped.
    pub async fn run(self, shutdown: Shutdown) {
        let pool = Arc::new(self);
        let mut loops = JoinSet::new();
        for index in 0..pool.config.concurrency {
            let pool = Arc::clone(&pool);
            let shutdown = shutdown.clone();
            loops.spawn(async move { pool.worker_loop(index, shutdown).await });
        }
        while loops.join_next().await.is_some() {}
    }

    async fn worker_loop(&self, index: usize, shutdown: Shutdown) {
        let owner = format!("{}/w{index}", self.owner_prefix);
        let lease_errors_backoff =
            Backoff::full_jitter(self.config.poll_interval(), LEASE_ERROR_MAX_PAUSE);
        let mut failed_leases: u32 = 0;
        loop {
            if shutdown.stop_intake.is_cancelled() {
                return;
            }
            // Register interest before looking, so a notification between the look and the
            // wait is not lost.
            let notified = self.work_available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self
                .ledger
                .lease_next(&owner, self.config.lease(), OffsetDateTime::now_utc())
                .await
            {
                Ok(Some(job)) => {
                    failed_leases = 0;
                    // The first lease of a job writes its `started` rows.
                    self.deliveries_written.tell();
                    self.run_job(&owner, job, &shutdown).await;
                    continue;
                }
                Ok(None) => failed_leases = 0,
                Err(error) => {
                    tracing::error!(%error, worker = %owner, "cannot lease jobs");
                    failed_leases = failed_leases.saturating_add(1);
                }
            }
            let pause = match failed_leases {
                0 => self.config.poll_interval(),
                failed => lease_errors_backoff.pause(failed),
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.stop_intake.cancelled() => return,
            }
        }
    }

    async fn run_job(&self, owner: &str, job: LeasedJob, shutdown: &Shutdown) {
        let started = Instant::now();
        let alertname = job.alert.alertname().to_string();
        let Some(runbook) = self.runbooks.get(&alertname) else {
            // The registry changed since the alert was recorded (a runbook was removed).
            self.record_failure(
                owner,
                &job,
                format!("no runbook for {alertname} in this build"),
                started,
            )
            .await;
            return;
        };
        let request = TriageRequest {
            episode_id: job.episode_id.clone(),
            group_key: job.group_key.clone(),
            alert: job.alert.clone(),
            attempt: job.attempt,
            budget: self.config.triage_budget(),
            history: Some(history_lookup(
                Arc::clone(&self.ledger),
                alertname.clone(),
                job.episode_id.clone(),
            )),
        };
        let budget = self.config.triage_budget();
        // The runbook runs in its own task so that a panic is caught as a JoinError.
        let mut triage =
            tokio::spawn(
                async move { tokio::time::timeout(budget, runbook.triage(request)).await },
            );
        let mut heartbeat = tokio::time::interval(self.config.lease() / 3);
        heartbeat.tick().await;
        let outcome = loop {
            tokio::select! {
                result = &mut triage => break Some(result),
                _ = heartbeat.tick() => {
                    match self.ledger.renew_lease(job.job_id, owner, self.config.lease(), OffsetDateTime::now_utc()).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(episode = %job.episode_id, "lease lost; abandoning this attempt");
                            triage.abort();
                            return;
                        }
                        Err(error) => tracing::warn!(%error, episode = %job.episode_id, "cannot renew lease"),
                    }
                }
                _ = shutdown.abort_jobs.cancelled() => break None,
            }
        };
        let Some(result) = outcome else {
            triage.abort();
            match self
                .ledger
                .release(job.job_id, owner, OffsetDateTime::now_utc())
                .await
            {
                Ok(()) => {
                    tracing::info!(episode = %job.episode_id, "grace period over: job released for the next start")
                }
                Err(error) => {
                    tracing::warn!(%error, episode = %job.episode_id, "cannot release job; its lease will expire")
                }
            }
            return;
        };
        if let Ok(Ok(Ok(report))) = &result {
            self.metrics.observe_steps(&report.steps);
        }
        let error = match result {
            Ok(Ok(Ok(report))) => match serde_json::to_string(&report) {
                Ok(json) => {
                    let json = fit_report_json(json, MAX_STORED_REPORT_BYTES);
                    match self
                        .ledger
                        .complete_job(job.job_id, owner, json.clone(), OffsetDateTime::now_utc())
                        .await
                    {
                        Ok(true) => {
                            self.deliveries_written.tell();
                            self.observe(started, "triaged");
                            tracing::info!(
                                episode = %job.episode_id,
                                ms = started.elapsed().as_millis() as u64,
                                "triage done"
                            );
                        }
                        Ok(false) => {
                            tracing::warn!(episode = %job.episode_id, "lease lost before the report was stored; another worker owns the job")
                        }
                        // The ledger trims a report to its bound; an item that still cannot
                        // hold it (its delivery rows grew) keeps the verdict without evidence
                        // rather than running the triage again.
                        Err(LedgerError::TooLarge(why)) => {
                            tracing::warn!(episode = %job.episode_id, %why, "report too large to store; storing the verdict without its evidence snapshot");
                            let small = fit_report_json(json, 0);
                            match self
                                .ledger
                                .complete_job(job.job_id, owner, small, OffsetDateTime::now_utc())
                                .await
                            {
                                Ok(true) => self.observe(started, "triaged"),
                                Ok(false) => {
                                    tracing::warn!(episode = %job.episode_id, "lease lost before the report was stored; another worker owns the job")
                                }
                                Err(error) => {
                                    tracing::error!(%error, episode = %job.episode_id, "cannot store report; the job will be retried when its lease expires")
                                }
                            }
                        }
                        Err(error) => {
                            tracing::error!(%error, episode = %job.episode_id, "cannot store report; the job will be retried when its lease expires")
                        }
                    }
                    return;
                }
                Err(error) => format!("report could not be serialized: {error}"),
            },
            Ok(Ok(Err(error))) => error.to_string(),
            Ok(Err(_elapsed)) => format!(
                "triage exceeded its budget of {} s (worker.triage_budget_secs)",
                budget.as_secs()
            ),
            Err(join_error) if join_error.is_panic() => {
                format!(
                    "runbook panicked: {}",
                    panic_message(join_error.into_panic())
                )
            }
            Err(join_error) => format!("runbook task ended: {join_error}"),
        };
        self.record_failure(owner, &job, error, started).await;
    }

    async fn record_failure(&self, owner: &str, job: &LeasedJob, error: String, started: Instant) {
        let retry_after = retry_backoff(job.attempt, rand::random::<f64>());
        match self
            .ledger
            .fail_attempt(
                job.job_id,
                owner,
                error.clone(),
                retry_after,
                OffsetDateTime::now_utc(),
            )
            .await
        {
            Ok(JobState::Failed) => {
                self.deliveries_written.tell();
                self.observe(started, "failed");
                tracing::error!(episode = %job.episode_id, attempt = job.attempt, %error, "triage failed; no attempt left");
            }
            Ok(JobState::Leased) => {
                tracing::warn!(episode = %job.episode_id, %error, "attempt failed after its lease was lost; the current holder decides");
            }
            Ok(_) => {
                self.observe(started, "retry");
                tracing::warn!(episode = %job.episode_id, attempt = job.attempt, %error, retry_in_ms = retry_after.as_millis() as u64, "triage attempt failed; will retry");
            }
            Err(ledger_error) => {
                tracing::error!(%ledger_error, episode = %job.episode_id, "cannot record the failure; the lease will expire")
            }
        }
    }

    fn observe(&self, started: Instant, outcome: &str) {
        self.metrics
            .job_duration
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The pause after attempt `attempt` (from 1) failed, `unit` in [0, 1) choosing the jitter.
pub fn retry_backoff(attempt: u32, unit: f64) -> Duration {
    RETRY_BACKOFF.delay(attempt.saturating_sub(1), unit)
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

/// The alert's history from the ledger, for the runbook to run beside its probes.
fn history_lookup(
    ledger: Arc<dyn Ledger>,
    alertname: String,
    episode_id: String,
) -> crate::runbook::HistoryLookup {
    crate::runbook::HistoryLookup(Arc::new(move |since| {
        let ledger = Arc::clone(&ledger);
        let alertname = alertname.clone();
        let episode_id = episode_id.clone();
        Box::pin(async move {
            ledger
                .alert_history(&alertname, &episode_id, since)
                .await
                .map_err(|e| format!("the ledger could not count earlier episodes: {e}"))
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(retry_backoff(1, 0.0), Duration::from_secs(1));
        assert_eq!(retry_backoff(2, 0.0), Duration::from_secs(2));
        assert_eq!(retry_backoff(3, 0.0), Duration::from_secs(4));
        assert_eq!(retry_backoff(3, 0.5), Duration::from_secs(3));
        assert_eq!(retry_backoff(3, 1.0), Duration::from_secs(2));
        assert_eq!(retry_backoff(50, 0.0), Duration::from_secs(60));
        assert_eq!(retry_backoff(50, 1.0), Duration::from_secs(30));
    }
}
