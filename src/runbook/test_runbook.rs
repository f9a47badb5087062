//! A runbook for tests only (feature `test-runbook`, never in a release build): it sleeps, fails
//! or panics on demand so that the integration tests can drive the worker, leases, retries and
//! shutdown through the real binary. Its behaviour comes from the test alert's labels, which is
//! acceptable only because this code does not exist outside test builds.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Runbook, RunbookError, TriageRequest};
use crate::report::{
    Action, Confidence, Evidence, NatState, OffendingTier, Report, Step, StepOutcome, TierEvidence,
    Verdict,
};

pub const ALERTNAME: &str = "CabalTriageTest";

pub struct TestRunbook;

fn label_number(request: &TriageRequest, name: &str) -> u64 {
    request
        .alert
        .labels
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[async_trait]
impl Runbook for TestRunbook {
    fn name(&self) -> &'static str {
        "test-runbook"
    }

    async fn triage(&self, request: TriageRequest) -> Result<Report, RunbookError> {
        let started_at = OffsetDateTime::now_utc();
        let sleep_ms = label_number(&request, "test_sleep_ms");
        if sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
        }
        if u64::from(request.attempt) <= label_number(&request, "test_fail_attempts") {
            return Err(RunbookError::Failed(format!(
                "test failure on attempt {}",
                request.attempt
            )));
        }
        if request.alert.labels.get("test_panic").map(String::as_str) == Some("true") {
            panic!("test runbook panicked on request");
        }
        Ok(Report {
            episode: request.episode_id.clone(),
            alertname: ALERTNAME.into(),
            runbook: self.name().into(),
            verdict: Verdict {
                offending_tier: OffendingTier::None,
                dsn_class: None,
                nat_state: NatState::Unknown,
                action: Action::Investigate,
                confidence: Confidence::Low,
                summary: format!("test triage, attempt {}", request.attempt),
                next_command: None,
            }
            .into(),
            evidence: test_evidence(&request),
            steps: vec![Step {
                name: "sleep".into(),
                outcome: StepOutcome::Ok,
                ms: sleep_ms,
                error: None,
            }],
            started_at,
            finished_at: OffsetDateTime::now_utc(),
            evidence_snapshot: None,
            trimmed: None,
        })
    }
}

/// Annotations `test_sample*` become smtp-out log samples (in key order), so that tests can put
/// hostile remote-server replies into a report.
fn test_evidence(request: &TriageRequest) -> Evidence {
    let samples: Vec<String> = request
        .alert
        .annotations
        .iter()
        .filter(|(key, _)| key.starts_with("test_sample"))
        .map(|(_, value)| value.clone())
        .collect();
    let mut evidence = Evidence::default();
    if !samples.is_empty() {
        evidence.tiers.insert(
            "smtp-out".into(),
            TierEvidence {
                samples,
                ..TierEvidence::default()
            },
        );
    }
    evidence
}
