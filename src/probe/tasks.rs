//! ECS task discovery: every running task of each tier's service (all pages, not only
//! `taskArns[0]`: smtp-in and smtp-out scale out), and per task whether ECS Exec can reach the
//! tier's container: `enableExecuteCommand` on the task and the container's
//! `ExecuteCommandAgent` RUNNING. The mail-queue probe runs `mailq` only on ready tasks and the
//! report says why the others were skipped ("ECS Exec not enabled on smtp-in").
//!
//! This file holds the result and the pure readiness rules; the ECS implementation is
//! `aws::probes::tasks`.

use std::time::Duration;

use crate::report::Step;

use super::snapshot::{Snapshot, TaskInfo};
use super::{step, ProbeError};

/// Whether ECS Exec can run a command in a task's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecReadiness {
    Ready,
    /// The task was started without `enableExecuteCommand`.
    NotEnabled,
    /// The container has no `ExecuteCommandAgent` (the task predates enabling ECS Exec).
    NoAgent,
    /// The agent exists but is not RUNNING (its `lastStatus`, e.g. PENDING or STOPPED).
    AgentNotRunning(String),
    /// The task has no container of the configured name.
    ContainerMissing,
}

/// The readiness of one task for the tier's container (pure).
pub fn exec_readiness(task: &TaskInfo, container: &str) -> ExecReadiness {
    if !task.exec_enabled {
        return ExecReadiness::NotEnabled;
    }
    let Some(c) = task.containers.iter().find(|c| c.name == container) else {
        return ExecReadiness::ContainerMissing;
    };
    match c.exec_agent.as_deref() {
        None => ExecReadiness::NoAgent,
        Some("RUNNING") => ExecReadiness::Ready,
        Some(other) => ExecReadiness::AgentNotRunning(other.to_string()),
    }
}

/// The sentence for a task that ECS Exec cannot reach; None when it can.
pub fn readiness_problem(
    tier: &str,
    service: &str,
    task: &TaskInfo,
    container: &str,
) -> Option<String> {
    let id = &task.id;
    match exec_readiness(task, container) {
        ExecReadiness::Ready => None,
        ExecReadiness::NotEnabled => Some(format!(
            "ECS Exec not enabled on {tier} (task {id}): set enable_execute_command = true on service {service} and force a new deployment"
        )),
        ExecReadiness::NoAgent => Some(format!(
            "ECS Exec agent missing in container {container} on {tier} (task {id}): the task started before ECS Exec was enabled; force a new deployment of {service}"
        )),
        ExecReadiness::AgentNotRunning(status) => Some(format!(
            "ECS Exec agent in container {container} on {tier} (task {id}) is {status}, not RUNNING: check the task role's ssmmessages permissions and the SSM endpoint"
        )),
        ExecReadiness::ContainerMissing => Some(format!(
            "task {id} of {tier} has no container named {container}: check cabalmail.tiers.{tier}.container"
        )),
    }
}

/// One tier's tasks and how discovery went.
#[derive(Debug, Clone, PartialEq)]
pub struct TierTasks {
    pub tier: String,
    pub service: String,
    pub container: String,
    pub tasks: Vec<TaskInfo>,
    pub error: Option<ProbeError>,
    pub elapsed: Duration,
}

impl TierTasks {
    /// The answer for a tier missing from `[cabalmail.tiers]`.
    pub fn not_configured(tier: &str) -> TierTasks {
        TierTasks {
            tier: tier.to_string(),
            service: String::new(),
            container: String::new(),
            tasks: Vec::new(),
            error: Some(ProbeError {
                message: format!("tier {tier} is not configured in [cabalmail.tiers]"),
                timed_out: false,
            }),
            elapsed: Duration::ZERO,
        }
    }

    /// Tasks that ECS Exec can reach.
    pub fn exec_ready(&self) -> impl Iterator<Item = &TaskInfo> {
        self.tasks
            .iter()
            .filter(|t| exec_readiness(t, &self.container) == ExecReadiness::Ready)
    }

    /// One sentence per task that ECS Exec cannot reach.
    pub fn exec_problems(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter_map(|t| readiness_problem(&self.tier, &self.service, t, &self.container))
            .collect()
    }

    pub fn step(&self) -> Step {
        step(
            format!("tasks {}", self.tier),
            self.elapsed,
            self.error.as_ref(),
        )
    }
}

/// Discovery of every tier.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDiscovery {
    /// In report order.
    pub tiers: Vec<TierTasks>,
}

impl TaskDiscovery {
    pub fn tier(&self, tier: &str) -> Option<&TierTasks> {
        self.tiers.iter().find(|t| t.tier == tier)
    }

    pub fn steps(&self) -> Vec<Step> {
        self.tiers.iter().map(TierTasks::step).collect()
    }

    pub fn record(&self, snapshot: &mut Snapshot) {
        for t in &self.tiers {
            let tier = snapshot.tier_mut(&t.tier);
            tier.tasks = Some(t.tasks.iter().map(|task| task.arn.clone()).collect());
            tier.task_details = Some(t.tasks.clone());
            tier.tasks_error = t.error.as_ref().map(|e| e.message.clone());
        }
    }
}

/// The last part of a task ARN (`arn:...:task/cabal-mail/0a1b` -> `0a1b`).
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::ContainerInfo;

    fn task(exec: bool, agent: Option<&str>) -> TaskInfo {
        TaskInfo {
            arn: "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b".into(),
            id: "0a1b".into(),
            last_status: Some("RUNNING".into()),
            exec_enabled: exec,
            started_at: None,
            containers: vec![ContainerInfo {
                name: "smtp-in".into(),
                last_status: Some("RUNNING".into()),
                exec_agent: agent.map(str::to_string),
            }],
            availability_zone: None,
        }
    }

    #[test]
    fn readiness_names_the_reason() {
        assert_eq!(
            exec_readiness(&task(true, Some("RUNNING")), "smtp-in"),
            ExecReadiness::Ready
        );
        assert_eq!(
            exec_readiness(&task(false, Some("RUNNING")), "smtp-in"),
            ExecReadiness::NotEnabled
        );
        assert_eq!(
            exec_readiness(&task(true, None), "smtp-in"),
            ExecReadiness::NoAgent
        );
        assert_eq!(
            exec_readiness(&task(true, Some("PENDING")), "smtp-in"),
            ExecReadiness::AgentNotRunning("PENDING".into())
        );
        assert_eq!(
            exec_readiness(&task(true, Some("RUNNING")), "imap"),
            ExecReadiness::ContainerMissing
        );
        let sentence =
            readiness_problem("smtp-in", "cabal-smtp-in", &task(false, None), "smtp-in").unwrap();
        assert!(sentence.starts_with("ECS Exec not enabled on smtp-in (task 0a1b)"));
    }

    #[test]
    fn task_ids_are_the_last_arn_part() {
        assert_eq!(
            task_id("arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b"),
            "0a1b"
        );
        assert_eq!(task_id("0a1b"), "0a1b");
        assert_eq!(task_id(""), "");
    }
}
