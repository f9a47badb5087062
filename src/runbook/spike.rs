//! The flow both sendmail runbooks share: gather every probe concurrently within the budget,
//! turn the snapshot into typed evidence, apply the runbook's pure verdict rules, and assemble
//! the report (evidence per tier, every step, the snapshot itself for replay).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::environment::Environment;
use super::evidence::{self, TierFacts, TriageEvidence};
use super::gather::{gather, ExecPlan};
use super::{RunbookError, TriageRequest};
use crate::config::RunbooksConfig;
use crate::probe::log_window;
use crate::report::history::{AlertHistory, HISTORY_DAYS};
use crate::report::{Evidence, Report, TierEvidence, Verdict};

/// How long the ledger may take to count the alert's earlier episodes (beside the probes, so
/// within it the critical path does not grow).
const HISTORY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// A runbook's own parts: its names, its exec commands and its rules.
pub struct SpikeSpec {
    pub alertname: &'static str,
    pub runbook: &'static str,
    pub plans: Vec<ExecPlan>,
    pub verdict: fn(&TriageEvidence, &RunbooksConfig) -> Verdict,
}

/// Runs the whole flow.
pub async fn run(
    env: &Environment,
    spec: &SpikeSpec,
    request: TriageRequest,
) -> Result<Report, RunbookError> {
    let started_at = OffsetDateTime::now_utc();
    let now = (env.clock)();
    let window = log_window(now, Some(request.alert.starts_at), &env.config.probes);
    // The alert's history beside the probes: the ledger's answer under its own deadline (live),
    // or what the replayed snapshot recorded.
    let history = async {
        match &request.history {
            Some(lookup) => {
                let since = now - time::Duration::days(HISTORY_DAYS);
                let deadline = HISTORY_DEADLINE.min(request.budget / 4);
                Some(
                    match tokio::time::timeout(deadline, lookup.since(since)).await {
                        Ok(Ok(history)) => history,
                        Ok(Err(error)) => AlertHistory::unknown(error),
                        Err(_) => AlertHistory::unknown(format!(
                            "the ledger did not count earlier episodes within {} ms",
                            deadline.as_millis()
                        )),
                    },
                )
            }
            None => env.probes.recorded_history.clone(),
        }
    };
    let (mut gathered, history) = tokio::join!(
        gather(
            &env.probes,
            &env.config,
            &spec.plans,
            window,
            now,
            request.budget,
        ),
        history
    );
    gathered.snapshot.history = history;
    let evidence = evidence::build(&gathered.snapshot, &env.config, &env.providers);
    let mut verdict = (spec.verdict)(&evidence, &env.config.runbooks);
    if let Some(said) =
        super::deferred::history::history_sentence(&evidence, spec.alertname, verdict.action)
    {
        verdict.summary.push_str(&said);
    }
    if super::cut_off::aws_unreachable(&gathered.steps) {
        verdict.summary = format!("{} {}", super::cut_off::CUT_OFF_LINE, verdict.summary);
        verdict.confidence = crate::report::Confidence::Low;
    }
    // The alert's own filter (the metric filters Cabalmail's alerts count), for a logs command.
    let alert_filter = if spec.alertname == super::bounced::ALERTNAME {
        "dsn=5"
    } else {
        "stat=Deferred"
    };
    verdict.next_command =
        super::next_command::next_command(&verdict, &evidence, &env.config, alert_filter);
    let snapshot = super::stored_snapshot(gathered.snapshot, env)?;
    Ok(Report {
        episode: request.episode_id,
        alertname: spec.alertname.into(),
        runbook: spec.runbook.into(),
        verdict: verdict.into(),
        evidence: report_evidence(&evidence),
        steps: gathered.steps,
        started_at,
        finished_at: OffsetDateTime::now_utc(),
        evidence_snapshot: Some(snapshot),
        trimmed: None,
    })
}

/// The report's evidence: the contract's per-tier numbers, plus the details a reader needs
/// (codes, domains, relays, replies, queue answers, virtusertable) under `tier_details`.
pub fn report_evidence(evidence: &TriageEvidence) -> Evidence {
    let mut tiers = BTreeMap::new();
    let mut details = BTreeMap::new();
    for facts in &evidence.tiers {
        tiers.insert(facts.tier.clone(), tier_evidence(facts));
        details.insert(facts.tier.clone(), tier_details(facts));
    }
    Evidence {
        tiers,
        nat: json!({
            "state": evidence.nat_state,
            "public_ips": evidence.nat_ips,
            "instances": evidence.nat.instances,
            "gateways": evidence.nat.gateways,
            "route_tables": evidence.nat.route_tables,
            "addresses": evidence.nat.addresses.iter().flatten().map(|a| {
                let owner = evidence.ip_owner(&a.public_ip);
                json!({
                    "public_ip": a.public_ip,
                    "allocation_id": a.allocation_id,
                    "name": a.name,
                    "nat": owner.as_ref().map(|o| o.0.clone()),
                    "availability_zone": owner.and_then(|o| o.1),
                })
            }).collect::<Vec<_>>(),
            "zones": zones_evidence(evidence),
            "error": evidence.nat.error,
        }),
        dnsbl: if evidence.dnsbl_checked && evidence.dnsbl.is_empty() {
            Value::Null
        } else {
            json!({
                "listed": evidence.listed_ips(),
                "checked": evidence.dnsbl_checked,
                "ips": evidence.dnsbl,
            })
        },
        tier_details: details,
        history: evidence.history.clone(),
        ..Evidence::default()
    }
}

/// `evidence.nat.zones.<az>`: each zone's egress and the tasks (of every tier) behind it.
fn zones_evidence(evidence: &TriageEvidence) -> BTreeMap<String, Value> {
    let every_tier: Vec<&str> = evidence.tiers.iter().map(|f| f.tier.as_str()).collect();
    evidence
        .zones
        .iter()
        .map(|(zone, egress)| {
            let mut value = serde_json::to_value(egress).unwrap_or(Value::Null);
            if let Value::Object(fields) = &mut value {
                let tasks: Vec<Value> = evidence
                    .tasks_in_zone(zone, &every_tier)
                    .into_iter()
                    .map(|(tier, task)| json!({"tier": tier, "task": task}))
                    .collect();
                fields.insert("tasks".into(), Value::Array(tasks));
            }
            (zone.clone(), value)
        })
        .collect()
}

fn tier_evidence(facts: &TierFacts) -> TierEvidence {
    TierEvidence {
        queue_requests: facts.queue,
        deferred_lines: facts.deferred_lines(),
        bounced_lines: facts.bounced_lines(),
        dsn_classes: facts.summary.dsn_classes.clone(),
        top_providers: facts
            .summary
            .top_providers
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect(),
        samples: facts.summary.samples.clone(),
    }
}

fn tier_details(facts: &TierFacts) -> Value {
    let mut codes: Vec<(&String, &u64)> = facts.summary.dsn_codes.iter().collect();
    codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    codes.truncate(5);
    let mut details = json!({
        "top_dsn_codes": codes.into_iter().map(|(c, n)| json!({"code": c, "lines": n})).collect::<Vec<_>>(),
        "top_domains": facts.summary.top_domains,
        "top_relays": facts.summary.top_relays,
        "top_replies": facts.summary.top_replies,
        "greylist_lines": facts.greylist_lines,
        "dsn5_deferred_lines": facts.summary.dsn5_deferred_lines,
        "longest_policy_delay_secs": facts.longest_policy_delay_secs,
        "queue_tasks": facts.queue_tasks,
        "queue_tasks_answered": facts.queue_tasks_answered,
        "queue_problems": facts.queue_problems,
        "identical_queues": facts.identical_queues,
        "log_error": facts.log_error,
        "log_truncated": facts.log_truncated,
        "newest_log_event_ms": facts.newest_log_event_ms,
        "newest_log_age_secs": facts.newest_log_age_secs,
        "newest_log_event_error": facts.newest_log_event_error,
        "virtusertable": facts.virtusertable,
        "virtusertable_problems": facts.virtusertable_problems,
    });
    // The follow-up checks, per task, when they ran (`runbook::followup`).
    if let Value::Object(fields) = &mut details {
        for (key, value) in [
            ("egress_checks", serde_json::to_value(&facts.egress_checks)),
            ("relay_checks", serde_json::to_value(&facts.relay_checks)),
            ("local_checks", serde_json::to_value(&facts.local_checks)),
        ] {
            match value {
                Ok(Value::Array(items)) if !items.is_empty() => {
                    fields.insert(key.into(), Value::Array(items));
                }
                _ => {}
            }
        }
    }
    details
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::deferred::DeferredSpike;
    use super::super::environment::Environment;
    use super::super::{Runbook, TriageRequest};
    use crate::alert::parse_webhook;
    use crate::config::Config;
    use crate::probe::snapshot::{ContainerInfo, Snapshot, TaskInfo};
    use crate::probe::ProbeSet;
    use crate::report::history::AlertHistory;
    use crate::report::{Action, Confidence, OffendingTier, StepOutcome};

    const PAYLOAD: &str = include_str!("../../examples/greylist-storm-one-provider/payload.json");
    const SNAPSHOT: &str = include_str!("../../examples/greylist-storm-one-provider/snapshot.json");

    async fn triage(snapshot: Snapshot) -> crate::report::Report {
        triage_with(snapshot, None).await
    }

    async fn triage_with(
        snapshot: Snapshot,
        history: Option<super::super::HistoryLookup>,
    ) -> crate::report::Report {
        let config = Arc::new(Config::default());
        let at = snapshot.captured_at;
        let env = Environment::new(
            ProbeSet::replay(snapshot, &config),
            Arc::clone(&config),
            Environment::fixed_clock(at),
        );
        let payload = parse_webhook(PAYLOAD.as_bytes()).unwrap();
        DeferredSpike::new(Arc::new(env))
            .triage(TriageRequest {
                episode_id: "ep-test".into(),
                group_key: payload.group_key.clone(),
                alert: payload.alerts[0].clone(),
                attempt: 1,
                budget: Duration::from_secs(25),
                history,
            })
            .await
            .unwrap()
    }

    fn lookup(
        answer: Result<AlertHistory, String>,
        delay: Duration,
    ) -> super::super::HistoryLookup {
        super::super::HistoryLookup(Arc::new(move |since| {
            let answer = answer.clone();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                answer.map(|mut history| {
                    history.since = Some(since);
                    history
                })
            })
        }))
    }

    #[tokio::test]
    async fn the_ledger_history_is_read_beside_the_probes_recorded_and_replayed() {
        const REFUSING: &str = include_str!("../../examples/spamhaus-refusing/snapshot.json");
        let snapshot: Snapshot = serde_json::from_str(REFUSING).unwrap();
        let action = |report: &crate::report::Report| report.verdict.sendmail().unwrap().action;
        assert_eq!(
            action(&triage(snapshot.clone()).await),
            Action::GreylistingTransient
        );
        let twice = AlertHistory {
            since: None,
            episodes: 3,
            by_action: std::collections::BTreeMap::from([("greylisting-transient".to_string(), 2)]),
            error: None,
        };
        let report = triage_with(snapshot.clone(), Some(lookup(Ok(twice), Duration::ZERO))).await;
        let summary = report.verdict.sendmail().unwrap().summary.clone();
        assert_eq!(action(&report), Action::BlocklistCheck, "{summary}");
        assert!(
            summary.contains("greylisting episode 3 in 7 days"),
            "{summary}"
        );
        assert!(
            summary.contains("The ledger holds 3 earlier SendmailDeferredSpike episodes"),
            "{summary}"
        );
        let history = report.evidence.history.clone().unwrap();
        assert_eq!(history.episodes, 3);
        assert_eq!(
            history.since,
            Some(snapshot.captured_at - time::Duration::days(7)),
            "seven days back from the triage's clock"
        );
        // Stored with the snapshot: a replay without a ledger decides the same.
        let stored: Snapshot =
            serde_json::from_value(report.evidence_snapshot.clone().unwrap()).unwrap();
        assert_eq!(stored.history.as_ref().map(|h| h.episodes), Some(3));
        let replayed = triage(stored).await;
        assert_eq!(replayed.verdict, report.verdict);
        // A ledger that fails or does not answer in time: history unknown, nothing decided by it.
        let failed = triage_with(
            snapshot.clone(),
            Some(lookup(Err("ledger down".into()), Duration::ZERO)),
        )
        .await;
        assert_eq!(action(&failed), Action::GreylistingTransient);
        assert_eq!(
            failed.evidence.history.unwrap().error.as_deref(),
            Some("ledger down")
        );
        let started = std::time::Instant::now();
        let slow = triage_with(
            snapshot,
            Some(lookup(Err("never".into()), Duration::from_secs(60))),
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(action(&slow), Action::GreylistingTransient);
        assert!(slow
            .evidence
            .history
            .unwrap()
            .error
            .unwrap()
            .contains("did not count earlier episodes within 2000 ms"));
    }

    fn step_outcome(report: &crate::report::Report, name: &str) -> (StepOutcome, String) {
        let step = report
            .steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name}: {:?}", report.steps));
        (step.outcome, step.error.clone().unwrap_or_default())
    }

    #[tokio::test]
    async fn complete_evidence_gives_a_confident_verdict_and_every_step() {
        let report = triage(serde_json::from_str(SNAPSHOT).unwrap()).await;
        let verdict = report.verdict.sendmail().expect("a sendmail verdict");
        assert_eq!(verdict.offending_tier, OffendingTier::SmtpOut);
        assert_eq!(verdict.action, Action::BlocklistCheck);
        assert_eq!(verdict.confidence, Confidence::High);
        let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
        for name in [
            "tasks imap",
            "tasks smtp-in",
            "tasks smtp-out",
            "mailq imap",
            "mailq smtp-in",
            "mailq smtp-out",
            "log scan imap",
            "log scan smtp-in",
            "log scan smtp-out",
            "nat",
            "dnsbl",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(
            report.steps.iter().all(|s| s.outcome == StepOutcome::Ok),
            "{:?}",
            report.steps
        );
        let out = &report.evidence.tiers["smtp-out"];
        assert_eq!(out.queue_requests, Some(42));
        assert_eq!(out.deferred_lines, Some(96));
        assert!(report.evidence_snapshot.is_some());
    }

    #[tokio::test]
    async fn exec_disabled_logs_denied_and_nat_down_still_give_a_report() {
        let mut snapshot: Snapshot = serde_json::from_str(SNAPSHOT).unwrap();
        // ECS Exec not enabled on smtp-in's tasks.
        let smtp_in = snapshot.tiers.get_mut("smtp-in").unwrap();
        smtp_in.task_details = Some(
            smtp_in
                .tasks
                .clone()
                .unwrap()
                .into_iter()
                .map(|arn| TaskInfo {
                    id: arn.rsplit('/').next().unwrap().to_string(),
                    arn,
                    last_status: Some("RUNNING".into()),
                    exec_enabled: false,
                    started_at: None,
                    containers: vec![ContainerInfo {
                        name: "smtp-in".into(),
                        last_status: Some("RUNNING".into()),
                        exec_agent: None,
                    }],
                    availability_zone: None,
                })
                .collect(),
        );
        // CloudWatch Logs denied on imap.
        let imap = snapshot.tiers.get_mut("imap").unwrap();
        imap.log_events = Some(Vec::new());
        imap.log_error = Some("logs:FilterLogEvents on /ecs/cabal-imap: access denied (AccessDeniedException): grant it to the role".into());
        // EC2 unreachable.
        let nat = snapshot.nat.as_mut().unwrap();
        nat.instances.clear();
        nat.error = Some("ec2:DescribeInstances: cannot reach https://ec2.us-east-1.amazonaws.com: connection refused".into());
        snapshot.dnsbl = None;

        let report = triage(snapshot).await;
        let verdict = report.verdict.sendmail().expect("a sendmail verdict");
        assert_eq!(verdict.offending_tier, OffendingTier::SmtpOut);
        assert_eq!(verdict.nat_state, crate::report::NatState::Unknown);
        assert_eq!(
            report.verdict.confidence(),
            Confidence::Low,
            "{}",
            report.verdict.summary()
        );
        let (outcome, error) = step_outcome(&report, "mailq smtp-in");
        assert_eq!(outcome, StepOutcome::Failed);
        assert!(error.contains("ECS Exec not enabled on smtp-in"), "{error}");
        let (outcome, error) = step_outcome(&report, "log scan imap");
        assert_eq!(outcome, StepOutcome::Failed);
        assert!(error.contains("AccessDenied"), "{error}");
        let (outcome, _) = step_outcome(&report, "nat");
        assert_eq!(outcome, StepOutcome::Failed);
        assert_eq!(step_outcome(&report, "dnsbl").0, StepOutcome::Skipped);
        assert_eq!(report.evidence.tiers["smtp-in"].queue_requests, None);
        assert_eq!(report.evidence.tiers["imap"].deferred_lines, None);
        // AWS answered some of it (a refusal is an answer): not cut off.
        assert!(!report.verdict.summary().contains("cannot reach AWS"));
    }

    #[tokio::test]
    async fn a_bot_cut_off_from_aws_says_so_in_one_line_and_keeps_what_it_knows() {
        let mut snapshot: Snapshot = serde_json::from_str(SNAPSHOT).unwrap();
        for (name, tier) in snapshot.tiers.iter_mut() {
            tier.tasks = Some(Vec::new());
            tier.task_details = Some(Vec::new());
            tier.tasks_error = Some(format!("ecs:ListTasks on service cabal-{name} in cluster cabal-mail: cannot reach the AWS endpoint https://ecs.us-east-1.amazonaws.com (dispatch failure); check aws.endpoint_url / aws.endpoints, DNS and the network path to AWS"));
            tier.exec = None;
            tier.log_events = Some(Vec::new());
            tier.log_error = Some(
                "logs:FilterLogEvents: timed out, the probe's deadline of 15 s ran out".into(),
            );
        }
        let nat = snapshot.nat.as_mut().unwrap();
        nat.instances.clear();
        nat.error =
            Some("ec2:DescribeInstances: timed out, the probe's deadline of 8 s ran out".into());
        snapshot.dnsbl = None;
        let report = triage(snapshot).await;
        assert!(
            report
                .verdict
                .summary()
                .starts_with(super::super::cut_off::CUT_OFF_LINE),
            "{}",
            report.verdict.summary()
        );
        assert_eq!(report.verdict.confidence(), Confidence::Low);
        assert_eq!(
            report.verdict.sendmail().unwrap().offending_tier,
            OffendingTier::Unknown
        );
        // The steps keep each failure.
        assert_eq!(step_outcome(&report, "nat").0, StepOutcome::TimedOut);
    }
}
