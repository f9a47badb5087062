//! Runbooks: what to look at for an alert and how to decide. A runbook receives the alert and a
//! time budget and returns a report; the registry maps an alertname to its runbook. An alert
//! whose alertname has no runbook is recorded as `no_runbook` and never triaged.

pub mod bounced;
pub mod cut_off;
pub mod deferred;
pub mod environment;
pub mod evidence;
pub mod followup;
pub mod gather;
pub mod imap_auth;
pub mod next_command;
pub mod oneshot;
pub mod restart_loop;
pub mod rules;
pub mod spike;

#[cfg(test)]
mod replay_proptests;
#[cfg(feature = "test-runbook")]
mod test_runbook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::alert::WebhookAlert;
use crate::report::Report;

/// Everything a runbook gets to know about the episode it triages. Labels and annotations are
/// untrusted: they may be shown, never used to choose a command or a target.
#[derive(Debug, Clone)]
pub struct TriageRequest {
    pub episode_id: String,
    pub group_key: String,
    pub alert: WebhookAlert,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The overall budget; the worker also enforces it from outside.
    pub budget: Duration,
    /// The alert's history, from the ledger (the worker hands in the lookup; the runbook runs it
    /// beside its probes, under a deadline). None: not asked (a replay uses what its snapshot
    /// recorded).
    pub history: Option<HistoryLookup>,
}

/// What a history lookup returns: the history, or an operator sentence.
pub type HistoryAnswer =
    futures::future::BoxFuture<'static, Result<crate::report::history::AlertHistory, String>>;

/// A lookup of the alert's history (`report::history`): the episodes of its alertname first
/// seen since the given instant.
#[derive(Clone)]
pub struct HistoryLookup(
    pub std::sync::Arc<dyn Fn(time::OffsetDateTime) -> HistoryAnswer + Send + Sync>,
);

impl HistoryLookup {
    pub fn since(&self, since: time::OffsetDateTime) -> HistoryAnswer {
        (self.0)(since)
    }
}

impl std::fmt::Debug for HistoryLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryLookup")
    }
}

/// Why a triage produced no report at all (a report with failed steps is not an error).
#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error("{0}")]
    Failed(String),
}

/// The snapshot as a report stores it: redacted unless `privacy.show_local_parts`
/// (docs/contracts.md, "Replay snapshot"). Every runbook's verdict is reached on what the probes
/// saw; only what is stored and served is cut.
pub(crate) fn stored_snapshot(
    mut snapshot: crate::probe::Snapshot,
    env: &environment::Environment,
) -> Result<serde_json::Value, RunbookError> {
    if !env.config.privacy.show_local_parts {
        snapshot.redact_local_parts(&env.user_key);
    }
    serde_json::to_value(&snapshot)
        .map_err(|e| RunbookError::Failed(format!("cannot serialize the evidence snapshot: {e}")))
}

#[async_trait]
pub trait Runbook: Send + Sync {
    /// The runbook's name in reports (`sendmail-deferred-spike`).
    fn name(&self) -> &'static str;
    async fn triage(&self, request: TriageRequest) -> Result<Report, RunbookError>;
}

/// alertname -> runbook.
#[derive(Default, Clone)]
pub struct Registry {
    by_alertname: HashMap<String, Arc<dyn Runbook>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// The registry the service ships with.
    pub fn shipped() -> Self {
        #[allow(unused_mut)]
        let mut registry = Registry::new();
        #[cfg(feature = "test-runbook")]
        registry.register(test_runbook::ALERTNAME, Arc::new(test_runbook::TestRunbook));
        registry
    }

    /// The shipped registry plus the sendmail runbooks over `env`'s probes.
    pub fn with_sendmail(env: Arc<environment::Environment>) -> Self {
        let mut registry = Registry::shipped();
        registry.register(
            deferred::ALERTNAME,
            Arc::new(deferred::DeferredSpike::new(Arc::clone(&env))),
        );
        registry.register(
            bounced::ALERTNAME,
            Arc::new(bounced::BouncedSpike::new(env)),
        );
        registry
    }

    /// The shipped registry plus every Cabalmail runbook over `env`'s probes: the two sendmail
    /// runbooks, `ContainerRestartLoop`, `IMAPAuthFailureSpike`.
    pub fn with_runbooks(env: Arc<environment::Environment>) -> Self {
        let mut registry = Registry::with_sendmail(Arc::clone(&env));
        registry.register(
            restart_loop::ALERTNAME,
            Arc::new(restart_loop::RestartLoop::new(Arc::clone(&env))),
        );
        registry.register(
            imap_auth::ALERTNAME,
            Arc::new(imap_auth::ImapAuthSpike::new(env)),
        );
        registry
    }

    pub fn register(&mut self, alertname: &str, runbook: Arc<dyn Runbook>) {
        self.by_alertname.insert(alertname.to_string(), runbook);
    }

    pub fn get(&self, alertname: &str) -> Option<Arc<dyn Runbook>> {
        self.by_alertname.get(alertname).cloned()
    }

    pub fn has(&self, alertname: &str) -> bool {
        self.by_alertname.contains_key(alertname)
    }

    pub fn alertnames(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_alertname.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}
