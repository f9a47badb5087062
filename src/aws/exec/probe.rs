//! The mail-queue probe over ECS Exec: the configured command (`[exec] mailq_command`, never an
//! alert field) in every running task of every tier, all in parallel, each under its own
//! deadline. Returns the raw output per task in the replay-snapshot shape of `design.md`
//! (`{"task", "probe": "mailq", "output", "exit_status", "error"}`); parsing the `mailq` text is
//! the `sendmail` module's job.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::operation::{exec, ExecOptions, ExecRequest};
use super::starter::ExecSessionStarter;
use crate::config::ExecConfig;

/// The probe name in the snapshot.
pub const MAILQ_PROBE: &str = "mailq";

/// One running task, as task discovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTarget {
    /// Task ARN or id.
    pub task: String,
    /// `enableExecuteCommand` on the task: without it ECS refuses, so the call is not made.
    pub exec_enabled: bool,
}

/// The tasks of one tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierTargets {
    pub tier: String,
    pub cluster: String,
    pub container: String,
    pub tasks: Vec<TaskTarget>,
}

/// One task's result, in the replay-snapshot shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecProbeResult {
    /// The task id (the last part of an ARN).
    pub task: String,
    pub probe: String,
    /// Raw output as received (CR LF and all), without the exit-status line; `None` on error.
    pub output: Option<String>,
    /// `None` when unknown (error, or the session ended without the exit-status line).
    pub exit_status: Option<i32>,
    /// Operator-readable text when ECS Exec failed.
    pub error: Option<String>,
    /// The output went past `exec.output_cap_bytes` and was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// The deadline ended it (for the report's `timed_out` step outcome).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
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
    let options = ExecOptions {
        deadline: config.task_deadline(),
        output_cap: config.output_cap_bytes,
        ..ExecOptions::default()
    };
    let options = &options;
    let jobs = tiers.iter().flat_map(|tier| {
        tier.tasks.iter().map(move |target| async move {
            let result = run_one(starter, tier, target, command, probe, options).await;
            (tier.tier.clone(), result)
        })
    });
    let mut by_tier: BTreeMap<String, Vec<ExecProbeResult>> = tiers
        .iter()
        .map(|tier| (tier.tier.clone(), Vec::new()))
        .collect();
    for (tier, result) in join_all(jobs).await {
        by_tier.entry(tier).or_default().push(result);
    }
    by_tier
}

async fn run_one(
    starter: &dyn ExecSessionStarter,
    tier: &TierTargets,
    target: &TaskTarget,
    command: &str,
    probe: &str,
    options: &ExecOptions,
) -> ExecProbeResult {
    let mut result = ExecProbeResult {
        task: task_id(&target.task).to_string(),
        probe: probe.to_string(),
        output: None,
        exit_status: None,
        error: None,
        truncated: false,
        timed_out: false,
    };
    if !target.exec_enabled {
        result.error = Some(format!(
            "ECS Exec is not enabled on task {}: start the tier's tasks with enableExecuteCommand=true",
            result.task
        ));
        return result;
    }
    let request = ExecRequest {
        cluster: tier.cluster.clone(),
        task: target.task.clone(),
        container: tier.container.clone(),
        command: command.to_string(),
    };
    // A second, slightly longer bound in case a step inside ignores its own deadline.
    let outer = options.deadline + Duration::from_secs(2);
    match tokio::time::timeout(outer, exec(starter, &request, options)).await {
        Ok(Ok(output)) => {
            result.output = Some(String::from_utf8_lossy(&output.raw).into_owned());
            result.exit_status = output.exit_status;
            result.truncated = output.truncated;
        }
        Ok(Err(error)) => {
            result.timed_out = error.is_deadline();
            result.error = Some(error.to_string());
        }
        Err(_) => {
            result.timed_out = true;
            result.error = Some(format!(
                "the command did not finish within its deadline of {:?}",
                options.deadline
            ));
        }
    }
    result
}

/// `arn:aws:ecs:...:task/cluster/0a1b` -> `0a1b`; an id stays as it is.
pub fn task_id(task: &str) -> &str {
    task.rsplit('/').next().unwrap_or(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_from_arns() {
        assert_eq!(
            task_id("arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b"),
            "0a1b"
        );
        assert_eq!(task_id("0a1b"), "0a1b");
    }

    #[test]
    fn snapshot_shape() {
        let result = ExecProbeResult {
            task: "0a1b".into(),
            probe: "mailq".into(),
            output: Some("Total requests: 42\r\n".into()),
            exit_status: Some(0),
            error: None,
            truncated: false,
            timed_out: false,
        };
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            serde_json::json!({"task": "0a1b", "probe": "mailq",
                "output": "Total requests: 42\r\n", "exit_status": 0, "error": null})
        );
    }
}
