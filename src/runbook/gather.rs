//! Gathering the evidence: every probe at once, each under its own deadline cut to what is left
//! of the overall budget, and the results written into a replay snapshot. The chains of
//! dependent calls run side by side:
//!
//! - per tier, task discovery, then each configured command over ECS Exec in every ready task of
//!   that tier (a tier's commands start as soon as its own tasks are known);
//! - the CloudWatch Logs scan of every tier;
//! - the NAT lookup, then the DNSBL check of the NAT's public IPs.
//!
//! Nothing here decides: the snapshot goes to `evidence` and the rules. The probes are injected
//! (`probe::ProbeSet`), so the same code runs against AWS, a replay snapshot, or test fakes.

use std::net::IpAddr;
use std::time::Duration;

use futures::future::join_all;
use time::OffsetDateTime;
use tokio::time::Instant;

use crate::config::Config;
use crate::probe::exec::split_sections;
use crate::probe::snapshot::{ExecRecord, Snapshot, Window};
use crate::probe::{
    step, ExecProbe, ProbeError, ProbeSet as Probes, TaskDiscovery, TaskTarget, TierTargets,
    TierTasks,
};
use crate::report::{Step, StepOutcome};
use crate::timing::Deadline;

/// One command to run over ECS Exec on some tiers (from configuration only).
#[derive(Debug, Clone)]
pub struct ExecPlan {
    /// The record name in the snapshot (`mailq`, `virtusertable`).
    pub probe: &'static str,
    pub command: String,
    pub tiers: Vec<String>,
    /// The command also prints this probe's section after `probe::exec::SECTION_MARK`
    /// (`probe::exec::with_section`): its output is recorded as that probe's own record.
    pub section: Option<&'static str>,
}

/// What the probes saw and how each step went.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub snapshot: Snapshot,
    pub steps: Vec<Step>,
}

/// Time kept back from the budget to build and store the report.
pub const REPORT_MARGIN: Duration = Duration::from_millis(500);

/// A deadline of `own` from now, never past `overall`.
fn within(own: Duration, overall: &Deadline) -> Deadline {
    Deadline::after(own.min(overall.remaining()))
}

/// Runs every probe for `window` and the exec `plans`, within `budget`.
pub async fn gather(
    probes: &Probes,
    config: &Config,
    plans: &[ExecPlan],
    window: Window,
    captured_at: OffsetDateTime,
    budget: Duration,
) -> Gathered {
    let overall = Deadline::after(budget.saturating_sub(REPORT_MARGIN));
    let overall = &overall;
    // Per tier: discovery, then that tier's commands at once (a slow tier holds up no other).
    let discovery_deadline = within(config.probes.task_discovery_deadline(), overall);
    let exec_chain = async {
        let per_tier = probes.tasks.tiers().into_iter().map(|tier| async move {
            let found = probes.tasks.discover_tier(&tier, discovery_deadline).await;
            let runs = plans.iter().enumerate().flat_map(|(plan_index, plan)| {
                let position = plan.tiers.iter().position(|t| *t == tier);
                let found = &found;
                position.map(|position| async move {
                    let run =
                        run_plan(probes.exec.as_ref(), config, plan, found.clone(), overall).await;
                    ((plan_index, position), run)
                })
            });
            let runs = join_all(runs).await;
            (found, runs)
        });
        let per_tier = join_all(per_tier).await;
        let mut runs = Vec::new();
        let mut tiers = Vec::new();
        for (found, tier_runs) in per_tier {
            tiers.push(found);
            runs.extend(tier_runs);
        }
        // The report lists the runs plan by plan, each in the plan's tier order.
        runs.sort_by_key(|(order, _)| *order);
        let runs: Vec<PlanRun> = runs.into_iter().map(|(_, run)| run).collect();
        (TaskDiscovery { tiers }, runs)
    };
    let log_chain = probes
        .logs
        .scan(window, within(config.probes.log_scan_deadline(), overall));
    let nat_chain = async {
        let nat = probes
            .nat
            .describe(within(config.probes.nat_deadline(), overall))
            .await;
        let ips = nat_public_ips(&nat.nat);
        let started = Instant::now();
        let dnsbl = if ips.is_empty() {
            None
        } else {
            Some(
                probes
                    .dnsbl
                    .check(&ips, within(config.dnsbl.timeout(), overall))
                    .await,
            )
        };
        (nat, dnsbl, started.elapsed())
    };
    let ((discovery, runs), logs, (nat, dnsbl, dnsbl_elapsed)) =
        tokio::join!(exec_chain, log_chain, nat_chain);

    let mut snapshot = Snapshot::new(captured_at);
    let mut steps = discovery.steps();
    discovery.record(&mut snapshot);
    for run in runs {
        steps.push(run.step);
        let tier = snapshot.tier_mut(&run.tier);
        tier.exec.get_or_insert_with(Vec::new).extend(run.records);
    }
    steps.extend(logs.steps());
    logs.record(&mut snapshot);
    steps.push(nat.step());
    nat.record(&mut snapshot);
    match dnsbl {
        None => steps.push(Step {
            name: "dnsbl".into(),
            outcome: StepOutcome::Skipped,
            ms: 0,
            error: Some("no NAT public IP to check".into()),
        }),
        Some(outcome) => {
            let mut problems: Vec<String> = outcome
                .errors
                .iter()
                .flat_map(|(ip, zones)| {
                    zones
                        .iter()
                        .map(move |(zone, error)| format!("{ip} in {zone}: {error}"))
                })
                .collect();
            problems.extend(
                outcome
                    .skipped
                    .iter()
                    .map(|(ip, why)| format!("{ip} skipped: {why}")),
            );
            let error = (!outcome.errors.is_empty()).then(|| ProbeError {
                timed_out: outcome
                    .errors
                    .values()
                    .flat_map(|z| z.values())
                    .all(|e| e.contains("timed out")),
                message: problems.join("; "),
            });
            steps.push(step("dnsbl".into(), dnsbl_elapsed, error.as_ref()));
            snapshot.dnsbl = Some(outcome.answers);
        }
    }
    Gathered { snapshot, steps }
}

/// The public IPs of the NAT instances and gateways, then the NATs' Elastic IPs (a stopped NAT
/// instance shows none, its address is still ours), in order, without repeats.
pub fn nat_public_ips(nat: &crate::probe::snapshot::NatSnapshot) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = Vec::new();
    let texts = nat
        .instances
        .iter()
        .chain(nat.gateways.iter())
        .filter_map(|e| e.public_ip.as_deref())
        .chain(nat.addresses.iter().flatten().map(|a| a.public_ip.as_str()));
    for text in texts {
        if let Ok(ip) = text.parse() {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }
    ips
}

struct PlanRun {
    tier: String,
    records: Vec<ExecRecord>,
    step: Step,
}

/// One command on one tier: every ready task in parallel; tasks ECS Exec cannot reach are
/// recorded with the reason, and make the step fail (the operator can fix them).
async fn run_plan(
    exec: &dyn ExecProbe,
    config: &Config,
    plan: &ExecPlan,
    found: TierTasks,
    overall: &Deadline,
) -> PlanRun {
    let started = Instant::now();
    let name = format!("{} {}", plan.probe, found.tier);
    let targets = TierTargets {
        tier: found.tier.clone(),
        cluster: config.cabalmail.cluster.clone(),
        container: found.container.clone(),
        tasks: found
            .exec_ready()
            .map(|task| TaskTarget {
                task: task.arn.clone(),
                exec_enabled: true,
            })
            .collect(),
    };
    let mut records: Vec<ExecRecord> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for task in &found.tasks {
        if let Some(problem) = crate::probe::tasks::readiness_problem(
            &found.tier,
            &found.service,
            task,
            &found.container,
        ) {
            records.push(ExecRecord {
                task: task.id.clone(),
                probe: plan.probe.to_string(),
                output: None,
                exit_status: None,
                error: Some(problem.clone()),
            });
            problems.push(problem);
        }
    }
    let readiness_problems = problems.len();
    let mut exec_errors = 0usize;
    let mut exec_timeouts = 0usize;
    if !targets.tasks.is_empty() {
        let results = exec
            .run(
                plan.probe,
                &plan.command,
                &targets,
                within(config.exec.task_deadline(), overall),
            )
            .await;
        for result in results {
            if let Some(error) = &result.error {
                exec_errors += 1;
                exec_timeouts += usize::from(result.timed_out);
                problems.push(format!("task {}: {error}", result.task));
            }
            let sections =
                plan.section
                    .zip(result.output.as_deref())
                    .and_then(|(section, output)| {
                        split_sections(output).filter(|parts| parts.probe == section)
                    });
            match sections {
                // One session, two records: the first command's and the section's.
                Some(parts) => {
                    records.push(ExecRecord {
                        task: result.task.clone(),
                        probe: result.probe,
                        output: Some(parts.first),
                        exit_status: parts.first_status.or(result.exit_status),
                        error: None,
                    });
                    records.push(ExecRecord {
                        task: result.task,
                        probe: parts.probe,
                        output: Some(parts.second),
                        exit_status: result.exit_status,
                        error: result.error,
                    });
                }
                None => records.push(ExecRecord {
                    task: result.task,
                    probe: result.probe,
                    output: result.output,
                    exit_status: result.exit_status,
                    error: result.error,
                }),
            }
        }
    }
    let elapsed = started.elapsed();
    let step = if found.tasks.is_empty() {
        Step {
            name,
            outcome: if found.error.is_some() {
                StepOutcome::Failed
            } else {
                StepOutcome::Skipped
            },
            ms: 0,
            error: Some(match &found.error {
                Some(e) => format!("task discovery failed: {e}"),
                None => format!("no running task of {} found", found.service),
            }),
        }
    } else if problems.is_empty() {
        step(name, elapsed, None)
    } else {
        step(
            name,
            elapsed,
            Some(&ProbeError {
                timed_out: readiness_problems == 0
                    && exec_errors > 0
                    && exec_timeouts == exec_errors,
                message: problems.join("; "),
            }),
        )
    };
    PlanRun {
        tier: found.tier,
        records,
        step,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::probe::exec::{join_sections, ExecProbeResult};
    use crate::probe::snapshot::{ContainerInfo, TaskInfo};

    /// Answers each task with what the test gives it, and keeps the commands it was asked.
    struct Answers {
        by_task: Vec<(&'static str, Option<&'static str>, Option<&'static str>)>,
        commands: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl ExecProbe for Answers {
        async fn run(
            &self,
            probe: &str,
            command: &str,
            tier: &TierTargets,
            _deadline: Deadline,
        ) -> Vec<ExecProbeResult> {
            self.commands.lock().unwrap().push(command.to_string());
            tier.tasks
                .iter()
                .filter_map(|t| {
                    let id = crate::probe::tasks::task_id(&t.task);
                    let (_, output, error) =
                        self.by_task.iter().find(|(task, _, _)| *task == id)?;
                    Some(ExecProbeResult {
                        task: id.to_string(),
                        probe: probe.to_string(),
                        output: output.map(str::to_string),
                        exit_status: output.map(|_| 0),
                        error: error.map(str::to_string),
                        truncated: false,
                        timed_out: false,
                    })
                })
                .collect()
        }
    }

    fn ready(id: &str) -> TaskInfo {
        TaskInfo {
            id: id.into(),
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/{id}"),
            last_status: Some("RUNNING".into()),
            exec_enabled: true,
            started_at: None,
            containers: vec![ContainerInfo {
                name: "smtp-out".into(),
                last_status: Some("RUNNING".into()),
                exec_agent: Some("RUNNING".into()),
            }],
            availability_zone: None,
        }
    }

    #[tokio::test]
    async fn a_section_is_recorded_as_its_own_probe_and_an_error_as_mailq_only() {
        let combined = join_sections(
            "Total requests: 7\r\n",
            Some(0),
            "egress",
            "dns=ok 142.250.31.27\r\ntcp=timeout\r\n",
        );
        let combined: &'static str = Box::leak(combined.into_boxed_str());
        let exec = Answers {
            by_task: vec![
                ("a1", Some(combined), None),
                ("a2", None, Some("ECS Exec in task a2 did not finish")),
                // No section line (the mailq command ended the shell): all of it is mailq's.
                ("a3", Some("Total requests: 7\r\n"), None),
            ],
            commands: Mutex::new(Vec::new()),
        };
        let plan = ExecPlan {
            probe: "mailq",
            command: crate::probe::exec::with_section("mailq | tail -1", "egress", "check"),
            tiers: vec!["smtp-out".into()],
            section: Some("egress"),
        };
        let found = TierTasks {
            tier: "smtp-out".into(),
            service: "cabal-smtp-out".into(),
            container: "smtp-out".into(),
            tasks: vec![ready("a1"), ready("a2"), ready("a3")],
            error: None,
            elapsed: Duration::ZERO,
        };
        let run = run_plan(
            &exec,
            &Config::default(),
            &plan,
            found,
            &Deadline::after(Duration::from_secs(5)),
        )
        .await;
        assert_eq!(
            *exec.commands.lock().unwrap(),
            vec![plan.command.clone()],
            "one session: mailq and its section"
        );
        let records: Vec<(&str, &str, Option<&str>)> = run
            .records
            .iter()
            .map(|r| (r.task.as_str(), r.probe.as_str(), r.output.as_deref()))
            .collect();
        assert_eq!(
            records,
            [
                ("a1", "mailq", Some("Total requests: 7\r\n")),
                (
                    "a1",
                    "egress",
                    Some("dns=ok 142.250.31.27\r\ntcp=timeout\r\n")
                ),
                ("a2", "mailq", None),
                ("a3", "mailq", Some("Total requests: 7\r\n")),
            ]
        );
        assert_eq!(run.step.name, "mailq smtp-out");
        assert_eq!(
            run.step.outcome,
            StepOutcome::Failed,
            "a2's error fails the step"
        );
    }
}
