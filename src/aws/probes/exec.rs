//! The ECS Exec implementation of `probe::ExecProbe`: the configured command (`[exec]
//! mailq_command` and the like, never an alert field) in every given task over `aws::exec`, all
//! in parallel (`probe::exec::fan_out`), each task under its own deadline cut to what the
//! runbook has left. Each task's answer stands on its own: a task whose agent never answers (its
//! zone's egress down) times out alone, and the answers of the others are kept.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::aws::exec::{exec, ExecOptions, ExecRequest, ExecSessionStarter};
use crate::config::ExecConfig;
use crate::probe::exec::{fan_out, ExecProbeResult, TaskTarget, TierTargets, MAILQ_PROBE};
use crate::probe::tasks::task_id;
use crate::probe::ExecProbe;
use crate::timing::Deadline;

/// ECS Exec in every given task, in parallel.
pub struct AwsExecProbe {
    starter: Arc<dyn ExecSessionStarter>,
    config: ExecConfig,
}

impl AwsExecProbe {
    pub fn new(starter: Arc<dyn ExecSessionStarter>, config: ExecConfig) -> AwsExecProbe {
        AwsExecProbe { starter, config }
    }
}

#[async_trait]
impl ExecProbe for AwsExecProbe {
    async fn run(
        &self,
        probe: &str,
        command: &str,
        tier: &TierTargets,
        deadline: Deadline,
    ) -> Vec<ExecProbeResult> {
        // Each task's own deadline is the configured one, cut to what the runbook has left.
        let mut config = self.config.clone();
        let remaining_secs = deadline.remaining().as_secs_f64().ceil() as u64;
        config.task_deadline_secs = config.task_deadline_secs.min(remaining_secs.max(1));
        let options = exec_options(&config);
        let options = &options;
        let starter = self.starter.as_ref();
        // The triage's deadline bounds each task, not the tier: one task that hangs costs only
        // its own answer.
        let mut by_tier = fan_out(
            std::slice::from_ref(tier),
            probe,
            |tier, target| async move {
                let one = run_one(starter, tier, target, command, probe, options);
                match tokio::time::timeout(deadline.remaining(), one).await {
                    Ok(result) => result,
                    Err(_) => ExecProbeResult::failed(
                        &target.task,
                        probe,
                        format!(
                        "ECS Exec in task {} did not finish within the triage's remaining {} ms",
                        task_id(&target.task),
                        deadline.budget.as_millis()
                    ),
                        true,
                    ),
                }
            },
        )
        .await;
        by_tier.remove(&tier.tier).unwrap_or_default()
    }
}

fn exec_options(config: &ExecConfig) -> ExecOptions {
    ExecOptions {
        deadline: config.task_deadline(),
        output_cap: config.output_cap_bytes,
        ..ExecOptions::default()
    }
}

/// `mailq` in every task of every tier; the map is keyed by tier, tasks in the order given.
pub async fn probe_mail_queues(
    starter: &dyn ExecSessionStarter,
    config: &ExecConfig,
    tiers: &[TierTargets],
) -> BTreeMap<String, Vec<ExecProbeResult>> {
    run_everywhere(starter, &config.mailq_command, MAILQ_PROBE, config, tiers).await
}

/// `command` (from configuration) in every task of every tier, under `probe`'s name.
pub async fn run_everywhere(
    starter: &dyn ExecSessionStarter,
    command: &str,
    probe: &str,
    config: &ExecConfig,
    tiers: &[TierTargets],
) -> BTreeMap<String, Vec<ExecProbeResult>> {
    let options = exec_options(config);
    let options = &options;
    fan_out(tiers, probe, |tier, target| {
        run_one(starter, tier, target, command, probe, options)
    })
    .await
}

async fn run_one(
    starter: &dyn ExecSessionStarter,
    tier: &TierTargets,
    target: &TaskTarget,
    command: &str,
    probe: &str,
    options: &ExecOptions,
) -> ExecProbeResult {
    let request = ExecRequest {
        cluster: tier.cluster.clone(),
        task: target.task.clone(),
        container: tier.container.clone(),
        command: command.to_string(),
    };
    // A second, slightly longer bound in case a step inside ignores its own deadline.
    let outer = options.deadline + Duration::from_secs(2);
    match tokio::time::timeout(outer, exec(starter, &request, options)).await {
        Ok(Ok(output)) => ExecProbeResult {
            task: task_id(&target.task).to_string(),
            probe: probe.to_string(),
            output: Some(String::from_utf8_lossy(&output.raw).into_owned()),
            exit_status: output.exit_status,
            error: None,
            truncated: output.truncated,
            timed_out: false,
        },
        Ok(Err(error)) => {
            ExecProbeResult::failed(&target.task, probe, error.to_string(), error.is_deadline())
        }
        Err(_) => ExecProbeResult::failed(
            &target.task,
            probe,
            format!(
                "the command did not finish within its deadline of {:?}",
                options.deadline
            ),
            true,
        ),
    }
}
