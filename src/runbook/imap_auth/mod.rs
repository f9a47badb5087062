//! `IMAPAuthFailureSpike`: Dovecot refuses logins on the imap tier. The API Lambdas locked out
//! (master password, user sync), a client off STARTTLS, or something inside the VPC guessing?
//! Three chains side by side, each under its deadline: the imap log group's login lines, then
//! the network interfaces of the failing sources; the master-password parameter's metadata; the
//! imap tasks (their start time). `evidence` types the snapshot and `rules` decides.

pub mod evidence;
pub mod rules;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::environment::Environment;
use super::gather::REPORT_MARGIN;
use super::{Runbook, RunbookError, TriageRequest};
use crate::dovecot::parse_login;
use crate::probe::imap_auth::{LOGIN_LINES_STEP, NETWORK_INTERFACES_STEP, PARAMETER_STEP};
use crate::probe::snapshot::Snapshot;
use crate::probe::{log_window, step, TaskDiscovery};
use crate::report::{Evidence, Report, Step, StepOutcome};
use crate::timing::Deadline;

pub const ALERTNAME: &str = "IMAPAuthFailureSpike";
pub const NAME: &str = "imap-auth-failure-spike";
/// The chains, as the benchmark lists them.
pub const CHAINS: &str = "FilterLogEvents(imap) -> DescribeNetworkInterfaces | DescribeParameters | ListTasks(imap) -> DescribeTasks";

pub struct ImapAuthSpike {
    env: Arc<Environment>,
}

impl ImapAuthSpike {
    pub fn new(env: Arc<Environment>) -> ImapAuthSpike {
        ImapAuthSpike { env }
    }
}

fn within(own: Duration, overall: &Deadline) -> Deadline {
    Deadline::after(own.min(overall.remaining()))
}

/// Gathers every chain into a snapshot, with one step per call.
pub async fn gather(
    env: &Environment,
    starts_at: OffsetDateTime,
    now: OffsetDateTime,
    budget: Duration,
) -> (Snapshot, Vec<Step>) {
    let config = &env.config;
    let probes = &env.probes;
    let overall = Deadline::after(budget.saturating_sub(REPORT_MARGIN));
    let overall = &overall;
    let window = log_window(now, Some(starts_at), &config.probes);
    let log_group = config
        .cabalmail
        .tiers
        .get("imap")
        .map(|t| t.log_group.clone())
        .unwrap_or_default();
    let logs_chain = async {
        let started = Instant::now();
        let lines = probes
            .imap_auth
            .login_lines(
                &log_group,
                window,
                config.imap_auth.log_max_events,
                within(config.probes.log_scan_deadline(), overall),
            )
            .await;
        let lines_elapsed = started.elapsed();
        let mut failing: Vec<IpAddr> = lines
            .iter()
            .flatten()
            .filter_map(|e| parse_login(&e.message))
            .filter(|l| l.failed() || l.outcome == crate::dovecot::LoginOutcome::Success)
            .filter_map(|l| l.rip)
            .collect();
        failing.sort_unstable();
        failing.dedup();
        let started = Instant::now();
        let interfaces = if failing.is_empty() {
            None
        } else {
            Some(
                probes
                    .imap_auth
                    .network_interfaces(&failing, within(config.probes.nat_deadline(), overall))
                    .await,
            )
        };
        (lines, lines_elapsed, interfaces, started.elapsed())
    };
    let parameter_chain = async {
        let started = Instant::now();
        let answer = probes
            .imap_auth
            .parameter(
                &config.imap_auth.master_password_parameter,
                within(config.probes.nat_deadline(), overall),
            )
            .await;
        (answer, started.elapsed())
    };
    let tasks_chain = probes.tasks.discover_tier(
        "imap",
        within(config.probes.task_discovery_deadline(), overall),
    );
    let ((lines, lines_elapsed, interfaces, eni_elapsed), (parameter, parameter_elapsed), tasks) =
        tokio::join!(logs_chain, parameter_chain, tasks_chain);

    let mut snapshot = Snapshot::new(now);
    snapshot.window = Some(window);
    let discovery = TaskDiscovery { tiers: vec![tasks] };
    let mut steps = discovery.steps();
    discovery.record(&mut snapshot);
    let imap = snapshot.tier_mut("imap");
    match lines {
        Ok(events) => {
            imap.log_events = Some(events);
            steps.push(step(LOGIN_LINES_STEP.into(), lines_elapsed, None));
        }
        Err(e) => {
            imap.log_error = Some(e.message.clone());
            steps.push(step(LOGIN_LINES_STEP.into(), lines_elapsed, Some(&e)));
        }
    }
    match interfaces {
        None => steps.push(Step {
            name: NETWORK_INTERFACES_STEP.into(),
            outcome: StepOutcome::Skipped,
            ms: 0,
            error: Some("no login source to look up".into()),
        }),
        Some(Ok(found)) => {
            snapshot.network_interfaces = Some(found);
            steps.push(step(NETWORK_INTERFACES_STEP.into(), eni_elapsed, None));
        }
        Some(Err(e)) => {
            snapshot
                .probe_errors
                .insert(NETWORK_INTERFACES_STEP.into(), e.message.clone());
            steps.push(step(NETWORK_INTERFACES_STEP.into(), eni_elapsed, Some(&e)));
        }
    }
    match parameter {
        Ok(found) => {
            let name = config.imap_auth.master_password_parameter.clone();
            snapshot.parameters = Some(found.into_iter().map(|p| (name.clone(), p)).collect());
            steps.push(step(PARAMETER_STEP.into(), parameter_elapsed, None));
        }
        Err(e) => {
            snapshot
                .probe_errors
                .insert(PARAMETER_STEP.into(), e.message.clone());
            steps.push(step(PARAMETER_STEP.into(), parameter_elapsed, Some(&e)));
        }
    }
    (snapshot, steps)
}

#[async_trait]
impl Runbook for ImapAuthSpike {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn triage(&self, request: TriageRequest) -> Result<Report, RunbookError> {
        let started_at = OffsetDateTime::now_utc();
        let now = (self.env.clock)();
        let (snapshot, steps) =
            gather(&self.env, request.alert.starts_at, now, request.budget).await;
        let facts = evidence::build(&snapshot, &self.env.config);
        let verdict = rules::verdict(&facts, &self.env.config.imap_auth);
        let recorded = super::stored_snapshot(snapshot, &self.env)?;
        Ok(Report {
            episode: request.episode_id,
            alertname: ALERTNAME.into(),
            runbook: NAME.into(),
            verdict: verdict.into(),
            evidence: report_evidence(&facts),
            steps,
            started_at,
            finished_at: OffsetDateTime::now_utc(),
            evidence_snapshot: Some(recorded),
            trimmed: None,
        })
    }
}

/// A user name cut like an address's local part: its first character and `***`.
fn masked(name: &str) -> String {
    match name.chars().next() {
        Some(first) => format!("{first}***"),
        None => "(none)".into(),
    }
}

fn report_evidence(e: &evidence::ImapAuthEvidence) -> Evidence {
    let mut sources: Vec<(&IpAddr, &evidence::SourceFacts)> = e.sources.iter().collect();
    sources.sort_by_key(|(_, s)| std::cmp::Reverse(s.failures + s.plaintext + s.internal));
    let sources_json: Vec<serde_json::Value> = sources
        .iter()
        .map(|(ip, s)| {
            json!({
                "address": ip.to_string(),
                "eni": s.interface.as_ref().map(|i| &i.id),
                "interface_type": s.interface.as_ref().and_then(|i| i.interface_type.clone()),
                "description": s.interface.as_ref().and_then(|i| i.description.clone()),
                "failures": s.failures + s.plaintext + s.internal,
                "users_tried": s.users.len(),
                "successes": s.successes,
            })
        })
        .collect();
    let mut highlights = vec![format!(
        "failures {} · plaintext refusals {} · no account {} · successes {} · failing users {}",
        e.failures,
        e.plaintext_refusals,
        e.internal_failures,
        e.successes,
        e.failing_users.len()
    )];
    for (ip, s) in sources.iter().take(5) {
        highlights.push(format!(
            "{ip}: {} ({}) failures {} users {} successes {}",
            s.interface
                .as_ref()
                .and_then(|i| i.interface_type.as_deref())
                .unwrap_or("no ENI"),
            s.interface.as_ref().map_or("-", |i| i.id.as_str()),
            s.failures + s.plaintext + s.internal,
            s.users.len(),
            s.successes
        ));
    }
    Evidence {
        details: json!({
            "sources": sources_json,
            "failures": e.failures,
            "plaintext_refusals": e.plaintext_refusals,
            "internal_failures": e.internal_failures,
            "successes": e.successes,
            "failing_users": e.failing_users.len(),
            "failing_user_names": e.failing_users.iter().take(10).map(|u| masked(u)).collect::<Vec<_>>(),
            "sync_users_lines": e.sync_users_lines,
            "parameter": e.parameter,
            "task_started_at": e.task_started_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "parameter_changed_after_start": e.parameter_changed_after_start(),
            "failed": e.failed.iter().map(|(s, m)| json!({"step": s, "error": m})).collect::<Vec<_>>(),
        }),
        highlights,
        ..Evidence::default()
    }
}
