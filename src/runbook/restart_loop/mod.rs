//! `ContainerRestartLoop`: an ECS service below its desired task count. Crash, bad image, no
//! room, EFS ownership, or the whole cluster? The service comes from the alert's `service_name`
//! label and is looked up in the configured services (`[[services]]`) before anything else: a
//! name that is not configured ends the triage with a verdict saying so, and no AWS call is made
//! (a label never chooses a target). Then the chains of `gather` run side by side, `evidence`
//! types the snapshot and `rules` decides.

pub mod evidence;
pub mod gather;
pub mod rules;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use time::OffsetDateTime;

use super::environment::Environment;
use super::{Runbook, RunbookError, TriageRequest};
use crate::report::sanitize::sanitize_line;
use crate::report::{
    Action, Confidence, Evidence, Report, RestartLoopCause, RestartLoopVerdict, Step, StepOutcome,
};

pub const ALERTNAME: &str = "ContainerRestartLoop";
pub const NAME: &str = "container-restart-loop";
/// The alert label naming the service.
pub const SERVICE_LABEL: &str = "service_name";
/// Longest label text a verdict repeats.
const MAX_LABEL_CHARS: usize = 100;

pub struct RestartLoop {
    env: Arc<Environment>,
}

impl RestartLoop {
    pub fn new(env: Arc<Environment>) -> RestartLoop {
        RestartLoop { env }
    }
}

/// The verdict for a label that names no configured service: no call was made.
fn not_configured(label: Option<&str>) -> RestartLoopVerdict {
    let shown: String = sanitize_line(label.unwrap_or(""))
        .chars()
        .take(MAX_LABEL_CHARS)
        .collect();
    RestartLoopVerdict {
        service: shown.clone(),
        cause: RestartLoopCause::Unknown,
        action: Action::Investigate,
        confidence: Confidence::High,
        summary: match label {
            None => format!("The alert has no {SERVICE_LABEL} label: nothing was looked up."),
            Some(_) => format!(
                "\"{shown}\" is not a configured service (see [[services]]): nothing was looked up."
            ),
        },
        next_command: None,
        exit_codes: Vec::new(),
        stopped_reason: None,
        image_now: None,
        image_before: None,
    }
}

#[async_trait]
impl Runbook for RestartLoop {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn triage(&self, request: TriageRequest) -> Result<Report, RunbookError> {
        let started_at = OffsetDateTime::now_utc();
        let label = request.alert.labels.get(SERVICE_LABEL).map(String::as_str);
        let configured = label.and_then(|name| self.env.config.services.get(name));
        let now = (self.env.clock)();
        let Some(service) = configured else {
            // An empty snapshot: a replay of it reaches the same verdict, with no call either.
            let snapshot = super::stored_snapshot(crate::probe::Snapshot::new(now), &self.env)?;
            return Ok(Report {
                episode: request.episode_id,
                alertname: ALERTNAME.into(),
                runbook: NAME.into(),
                verdict: not_configured(label).into(),
                evidence: Evidence::default(),
                steps: vec![Step {
                    name: "service-check".into(),
                    outcome: StepOutcome::Skipped,
                    ms: 0,
                    error: Some("not a configured service".into()),
                }],
                started_at,
                finished_at: OffsetDateTime::now_utc(),
                evidence_snapshot: Some(snapshot),
                trimmed: None,
            });
        };
        let gathered = gather::gather(
            &self.env.probes,
            &self.env.config,
            service,
            now,
            request.budget,
        )
        .await;
        let facts = evidence::build(&gathered.snapshot, &self.env.config, &service.name);
        let verdict = rules::verdict(&facts, &self.env.config);
        let snapshot = super::stored_snapshot(gathered.snapshot, &self.env)?;
        Ok(Report {
            episode: request.episode_id,
            alertname: ALERTNAME.into(),
            runbook: NAME.into(),
            verdict: verdict.into(),
            evidence: report_evidence(&facts),
            steps: gathered.steps,
            started_at,
            finished_at: OffsetDateTime::now_utc(),
            evidence_snapshot: Some(snapshot),
            trimmed: None,
        })
    }
}

/// The report's evidence: the service, the others below their count, the stopped tasks, the
/// instances' room, the error lines (redacted and capped).
fn report_evidence(e: &evidence::RestartEvidence) -> Evidence {
    let errors: Vec<String> = e
        .error_lines
        .iter()
        .rev()
        .take(5)
        .map(|l| crate::report::redact::redact_addresses(&sanitize_line(&l.message)).into_owned())
        .collect();
    let mut highlights = Vec::new();
    if let Some(s) = &e.state {
        highlights.push(format!(
            "{}: running {} / desired {}",
            e.service,
            s.running.map_or("?".into(), |n| n.to_string()),
            s.desired.map_or("?".into(), |n| n.to_string())
        ));
        if let Some(event) = s.events.first() {
            highlights.push(format!("last event: {}", event.message));
        }
    }
    if e.below_desired.len() > 1 {
        highlights.push(format!("below desired: {}", e.below_desired.join(", ")));
    }
    if let Some(task) = e.stopped.first() {
        highlights.push(format!(
            "last stopped task {}: {} {}",
            task.id,
            task.stop_code.as_deref().unwrap_or("?"),
            task.stopped_reason.as_deref().unwrap_or("")
        ));
    }
    if let Some(line) = errors.first() {
        highlights.push(format!("error line: {line}"));
    }
    Evidence {
        details: json!({
            "service": e.service,
            "state": e.state.as_ref().map(|s| json!({
                "desired": s.desired, "running": s.running, "pending": s.pending,
                "events": s.events.iter().take(5).collect::<Vec<_>>(),
                "deployments": s.deployments,
            })),
            "below_desired": e.below_desired,
            "stopped_tasks": e.stopped,
            "current_revision": e.current_revision,
            "previous_revision": e.previous_revision,
            "container_instances": e.instances,
            "error_lines": errors,
            "failed": e.failed.iter().map(|(step, error)| json!({"step": step, "error": error})).collect::<Vec<_>>(),
        }),
        highlights,
        ..Evidence::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::alert::WebhookAlert;
    use crate::config::Config;
    use crate::probe::service::{ErrorLogQuery, ServiceProbe};
    use crate::probe::snapshot::{
        ContainerInstanceSnapshot, LogEvent, ServiceSnapshot, Snapshot, StoppedTask,
        TaskDefinitionSnapshot,
    };
    use crate::probe::{ProbeError, ProbeSet};
    use crate::timing::Deadline;

    /// Counts every call; answers nothing.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl ServiceProbe for Counting {
        async fn describe_services(
            &self,
            _: &[String],
            _: Deadline,
        ) -> Result<BTreeMap<String, ServiceSnapshot>, ProbeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(BTreeMap::new())
        }
        async fn stopped_tasks(
            &self,
            _: &str,
            _: usize,
            _: Deadline,
        ) -> Result<Vec<StoppedTask>, ProbeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
        async fn task_definition(
            &self,
            _: &str,
            _: Deadline,
        ) -> Result<TaskDefinitionSnapshot, ProbeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(TaskDefinitionSnapshot::default())
        }
        async fn container_instances(
            &self,
            _: Deadline,
        ) -> Result<Vec<ContainerInstanceSnapshot>, ProbeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
        async fn error_lines(
            &self,
            _: ErrorLogQuery<'_>,
            _: Deadline,
        ) -> Result<Vec<LogEvent>, ProbeError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Vec::new())
        }
    }

    fn request(label: Option<&str>) -> TriageRequest {
        let mut labels = BTreeMap::from([("alertname".to_string(), ALERTNAME.to_string())]);
        if let Some(label) = label {
            labels.insert(SERVICE_LABEL.into(), label.into());
        }
        TriageRequest {
            episode_id: "ep-1".into(),
            group_key: "g".into(),
            alert: WebhookAlert {
                status: crate::alert::AlertStatus::Firing,
                labels,
                annotations: BTreeMap::new(),
                starts_at: time::macros::datetime!(2026-12-01 02:29:00 UTC),
                ends_at: None,
                generator_url: String::new(),
                fingerprint: "f".into(),
            },
            attempt: 1,
            budget: Duration::from_secs(5),
            history: None,
        }
    }

    fn runbook(counting: Arc<Counting>) -> RestartLoop {
        let config = Arc::new(Config::default());
        let mut probes = ProbeSet::replay(
            Snapshot::new(time::macros::datetime!(2026-12-01 03:00:00 UTC)),
            &config,
        );
        probes.services = counting;
        RestartLoop::new(Arc::new(Environment::new(
            probes,
            config,
            Environment::fixed_clock(time::macros::datetime!(2026-12-01 03:00:00 UTC)),
        )))
    }

    #[tokio::test]
    async fn an_unconfigured_or_missing_label_makes_no_call() {
        for label in [
            None,
            Some("cabal-nope"),
            Some("cabal-imap "),
            Some("cabal-imap\n--cluster other"),
            Some(""),
        ] {
            let counting = Arc::new(Counting::default());
            let report = runbook(Arc::clone(&counting))
                .triage(request(label))
                .await
                .unwrap();
            assert_eq!(counting.0.load(Ordering::SeqCst), 0, "{label:?}");
            assert_eq!(report.verdict.action(), Action::Investigate);
            assert!(
                report.verdict.summary().contains("nothing was looked up"),
                "{}",
                report.verdict.summary()
            );
            assert!(!report.verdict.summary().contains('\n'));
        }
    }

    #[tokio::test]
    async fn a_configured_service_runs_every_chain() {
        let counting = Arc::new(Counting::default());
        let report = runbook(Arc::clone(&counting))
            .triage(request(Some("cabal-imap")))
            .await
            .unwrap();
        // DescribeServices, stopped tasks, container instances, error lines (no deployment:
        // no task definition to read).
        assert_eq!(counting.0.load(Ordering::SeqCst), 4);
        let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "describe-services",
                "stopped-tasks cabal-imap",
                "container-instances",
                "error-logs cabal-imap"
            ]
        );
    }
}
