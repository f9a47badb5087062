//! The ECS Exec probe's own types: the targets (every task of a tier, as task discovery found
//! it), the result per task in the replay-snapshot shape (`docs/contracts.md`, "Replay
//! snapshot": `{"task", "probe", "output", "exit_status", "error"}`), and the fan-out that runs
//! one command in every task of every tier at once. How one command runs in one task is the
//! `ExecProbe` implementation's business (ECS Exec in `aws::probes`, the snapshot in `replay`);
//! parsing the `mailq` text is the `sendmail` module's.

use std::collections::BTreeMap;
use std::future::Future;

use futures::future::join_all;
use serde::{Deserialize, Serialize};

use super::tasks::task_id;

/// The probe name of the mail-queue command in the snapshot.
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

impl ExecProbeResult {
    /// A result for `task` (an ARN or id) that failed with `error`.
    pub fn failed(task: &str, probe: &str, error: String, timed_out: bool) -> ExecProbeResult {
        ExecProbeResult {
            task: task_id(task).to_string(),
            probe: probe.to_string(),
            output: None,
            exit_status: None,
            error: Some(error),
            truncated: false,
            timed_out,
        }
    }
}

/// Runs `run_one` in every task of every tier at once and collects the results keyed by tier,
/// tasks in the order given. A task without ECS Exec enabled gets its error without a call.
pub async fn fan_out<'a, F, Fut>(
    tiers: &'a [TierTargets],
    probe: &str,
    run_one: F,
) -> BTreeMap<String, Vec<ExecProbeResult>>
where
    F: Fn(&'a TierTargets, &'a TaskTarget) -> Fut,
    Fut: Future<Output = ExecProbeResult>,
{
    let run_one = &run_one;
    let jobs = tiers.iter().flat_map(|tier| {
        tier.tasks.iter().map(move |target| async move {
            let result = if target.exec_enabled {
                run_one(tier, target).await
            } else {
                ExecProbeResult::failed(
                    &target.task,
                    probe,
                    format!(
                        "ECS Exec is not enabled on task {}: start the tier's tasks with enableExecuteCommand=true",
                        task_id(&target.task)
                    ),
                    false,
                )
            };
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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn tier(name: &str, tasks: &[(&str, bool)]) -> TierTargets {
        TierTargets {
            tier: name.into(),
            cluster: "cabal-mail".into(),
            container: name.into(),
            tasks: tasks
                .iter()
                .map(|(id, exec_enabled)| TaskTarget {
                    task: format!("arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/{id}"),
                    exec_enabled: *exec_enabled,
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn fan_out_runs_every_enabled_task_and_keeps_the_order() {
        let tiers = [
            tier("smtp-out", &[("a1", true), ("off", false), ("a2", true)]),
            tier("imap", &[]),
        ];
        let ran = std::sync::Mutex::new(Vec::new());
        let results = fan_out(&tiers, "mailq", |tier, target| {
            ran.lock().unwrap().push(task_id(&target.task).to_string());
            let task = task_id(&target.task).to_string();
            let tier = tier.tier.clone();
            async move {
                ExecProbeResult {
                    task,
                    probe: "mailq".into(),
                    output: Some(format!("from {tier}")),
                    exit_status: Some(0),
                    error: None,
                    truncated: false,
                    timed_out: false,
                }
            }
        })
        .await;
        assert_eq!(
            *ran.lock().unwrap(),
            ["a1", "a2"],
            "no call for the task without exec"
        );
        let out = &results["smtp-out"];
        assert_eq!(
            out.iter().map(|r| r.task.as_str()).collect::<Vec<_>>(),
            ["a1", "off", "a2"]
        );
        assert_eq!(out[0].output.as_deref(), Some("from smtp-out"));
        assert!(out[1]
            .error
            .as_deref()
            .unwrap()
            .contains("not enabled on task off"));
        assert!(!out[1].timed_out);
        assert!(
            results["imap"].is_empty(),
            "a tier without tasks is still listed"
        );
    }
}
