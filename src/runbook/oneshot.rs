//! One triage in the foreground (`cabal-triage triage`), outside the service: the payload's
//! first alert that has a runbook, run once with the probes and the clock the caller chose (a
//! replay snapshot and its capture time, or the live probes and the wall clock), bounded by the
//! triage budget as the worker bounds it. No ledger, no delivery: the caller prints the report.

use std::sync::Arc;
use std::time::Duration;

use super::environment::{Clock, Environment};
use super::{Registry, TriageRequest};
use crate::alert::{EpisodeKey, WebhookAlert, WebhookPayload};
use crate::config::Config;
use crate::probe::{ProbeSet, Snapshot};
use crate::report::Report;

/// Why a one-shot triage gave no report.
#[derive(Debug, thiserror::Error)]
pub enum OneShotError {
    /// The payload is the wrong input (exit status 2 at the command line).
    #[error("no alert in the payload has a runbook; runbooks exist for: {known}")]
    NoRunbook { known: String },
    #[error("triage exceeded its budget of {} s (worker.triage_budget_secs)", .budget.as_secs())]
    OverBudget { budget: Duration },
    #[error("{0}")]
    Failed(#[from] super::RunbookError),
}

/// The probes and clock of a replay: every probe answers from `snapshot`, and the clock stands
/// at its capture time, so the replay computes the window and ages the triage computed.
pub fn replay(snapshot: Snapshot, config: &Config) -> (ProbeSet, Clock) {
    let at = snapshot.captured_at;
    (
        ProbeSet::replay(snapshot, config),
        Environment::fixed_clock(at),
    )
}

/// Triages the payload's first alert that has a runbook, with `probes` and `clock`.
pub async fn triage(
    payload: &WebhookPayload,
    probes: ProbeSet,
    clock: Clock,
    config: Arc<Config>,
) -> Result<(WebhookAlert, Report), OneShotError> {
    let budget = config.worker.triage_budget();
    let registry = Registry::with_runbooks(Arc::new(Environment::new(probes, config, clock)));
    let Some((alert, runbook)) = payload
        .alerts
        .iter()
        .find_map(|a| registry.get(a.alertname()).map(|r| (a.clone(), r)))
    else {
        return Err(OneShotError::NoRunbook {
            known: registry.alertnames().join(", "),
        });
    };
    let key = EpisodeKey::new(&payload.group_key, &alert.fingerprint, alert.starts_at);
    let request = TriageRequest {
        episode_id: key.id(),
        group_key: payload.group_key.clone(),
        alert: alert.clone(),
        attempt: 1,
        budget,
        // A one-shot triage has no ledger: a replay uses the history its snapshot recorded.
        history: None,
    };
    let report = tokio::time::timeout(budget + Duration::from_secs(1), runbook.triage(request))
        .await
        .map_err(|_| OneShotError::OverBudget { budget })??;
    Ok((alert, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::parse_webhook;

    const PAYLOAD: &str = include_str!("../../examples/greylist-storm-one-provider/payload.json");
    const SNAPSHOT: &str = include_str!("../../examples/greylist-storm-one-provider/snapshot.json");
    const EXPECTED: &str = include_str!("../../examples/greylist-storm-one-provider/expected.json");

    #[tokio::test]
    async fn a_replay_reaches_a_verdict_and_a_payload_without_runbook_is_refused() {
        let config = Arc::new(Config::default());
        let payload = parse_webhook(PAYLOAD.as_bytes()).unwrap();
        let snapshot = crate::probe::snapshot::parse(SNAPSHOT, "example").unwrap();
        let (probes, clock) = replay(snapshot.clone(), &config);
        let (alert, report) = triage(&payload, probes, clock, Arc::clone(&config))
            .await
            .unwrap();
        assert_eq!(alert.alertname(), payload.alerts[0].alertname());
        // The expected verdict needs the replay's clock: the log window is counted from it.
        let expected: serde_json::Value = serde_json::from_str(EXPECTED).unwrap();
        let verdict = serde_json::to_value(&report.verdict).unwrap();
        for (field, want) in expected["verdict"].as_object().unwrap() {
            assert_eq!(&verdict[field], want, "verdict.{field}");
        }

        let mut other = payload.clone();
        for alert in &mut other.alerts {
            alert.labels.insert("alertname".into(), "Unrelated".into());
        }
        let (probes, clock) = replay(snapshot, &config);
        let error = triage(&other, probes, clock, config).await.unwrap_err();
        assert!(matches!(error, OneShotError::NoRunbook { .. }), "{error}");
        assert!(
            error.to_string().contains("SendmailDeferredSpike"),
            "{error}"
        );
    }
}
