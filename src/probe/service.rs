//! The ECS service probe (`ServiceProbe`): what the ContainerRestartLoop runbook asks of ECS
//! and CloudWatch Logs, one call chain per method so the runbook can run them side by side:
//! DescribeServices; ListTasks (stopped) then DescribeTasks; DescribeTaskDefinition;
//! ListContainerInstances then DescribeContainerInstances; the service's error lines. Each method
//! answers within its deadline or with the error an operator can act on. The AWS implementation
//! is `aws::probes::ecs_service`; the replay one answers from the snapshot (`replay_service`).

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::snapshot::{
    ContainerInstanceSnapshot, LogEvent, ServiceSnapshot, StoppedTask, TaskDefinitionSnapshot,
    Window,
};
use super::ProbeError;
use crate::timing::Deadline;

/// Step names, also the keys of the snapshot's `probe_errors`.
pub const DESCRIBE_SERVICES_STEP: &str = "describe-services";
pub const CONTAINER_INSTANCES_STEP: &str = "container-instances";

pub fn stopped_tasks_step(service: &str) -> String {
    format!("stopped-tasks {service}")
}

pub fn task_definition_step(family_revision: &str) -> String {
    format!("task-definition {family_revision}")
}

pub fn error_logs_step(service: &str) -> String {
    format!("error-logs {service}")
}

/// The service's error lines in the window, with the filter pattern from configuration.
#[derive(Debug, Clone)]
pub struct ErrorLogQuery<'a> {
    /// The configured service the log group belongs to (replays file the lines under it).
    pub service: &'a str,
    pub log_group: &'a str,
    pub window: Window,
    pub filter_pattern: &'a str,
    pub max_events: usize,
}

#[async_trait]
pub trait ServiceProbe: Send + Sync {
    /// DescribeServices for every name (ten per call); a name ECS does not know is absent.
    async fn describe_services(
        &self,
        names: &[String],
        deadline: Deadline,
    ) -> Result<BTreeMap<String, ServiceSnapshot>, ProbeError>;

    /// The service's last `limit` stopped tasks, newest first.
    async fn stopped_tasks(
        &self,
        service: &str,
        limit: usize,
        deadline: Deadline,
    ) -> Result<Vec<StoppedTask>, ProbeError>;

    /// One task definition revision (`family:revision`), inactive ones included.
    async fn task_definition(
        &self,
        family_revision: &str,
        deadline: Deadline,
    ) -> Result<TaskDefinitionSnapshot, ProbeError>;

    /// Every container instance of the cluster.
    async fn container_instances(
        &self,
        deadline: Deadline,
    ) -> Result<Vec<ContainerInstanceSnapshot>, ProbeError>;

    /// The error lines of a log group in the window, newest last, at most `max_events`.
    async fn error_lines(
        &self,
        query: ErrorLogQuery<'_>,
        deadline: Deadline,
    ) -> Result<Vec<LogEvent>, ProbeError>;
}

/// `arn:aws:ecs:…:task-definition/cabal-imap:42` -> `cabal-imap:42`; a bare `family:revision`
/// stays as it is. None when the text is neither.
pub fn family_revision(task_definition: &str) -> Option<String> {
    let tail = task_definition
        .rsplit_once("task-definition/")
        .map_or(task_definition, |(_, tail)| tail);
    let (family, revision) = tail.rsplit_once(':')?;
    let revision: u32 = revision.parse().ok()?;
    (!family.is_empty() && !family.contains('/')).then(|| format!("{family}:{revision}"))
}

/// The revision before `family:revision` (None for revision 1 or a malformed name).
pub fn previous_revision(family_revision: &str) -> Option<String> {
    let (family, revision) = family_revision.rsplit_once(':')?;
    let revision: u32 = revision.parse().ok()?;
    (revision > 1).then(|| format!("{family}:{}", revision - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_revisions_from_arns_and_names() {
        assert_eq!(
            family_revision("arn:aws:ecs:us-east-1:1:task-definition/cabal-imap:42").as_deref(),
            Some("cabal-imap:42")
        );
        assert_eq!(
            family_revision("cabal-imap:7").as_deref(),
            Some("cabal-imap:7")
        );
        for bad in [
            "",
            "cabal-imap",
            ":3",
            "cabal-imap:x",
            "a/b:3",
            "cabal-imap:-1",
        ] {
            assert_eq!(family_revision(bad), None, "{bad}");
        }
        assert_eq!(
            previous_revision("cabal-imap:42").as_deref(),
            Some("cabal-imap:41")
        );
        assert_eq!(previous_revision("cabal-imap:1"), None);
    }
}
