//! ECS adapter: the running tasks of a service, and whether ECS Exec can reach them.

use aws_sdk_ecs::types::DesiredStatus;
use aws_sdk_ecs::Client;
use time::OffsetDateTime;

use super::error::{classify, AwsError, CallContext};
use super::retry;
use crate::timing::{Backoff, Deadline};

pub const LIST_TASKS: &str = "ecs:ListTasks";
pub const DESCRIBE_TASKS: &str = "ecs:DescribeTasks";
/// DescribeTasks accepts at most this many tasks per call.
pub const DESCRIBE_TASKS_MAX: usize = 100;
/// Name of the managed agent that ECS Exec needs.
pub const EXEC_AGENT: &str = "ExecuteCommandAgent";

/// A task as DescribeTasks reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTask {
    pub arn: String,
    pub last_status: Option<String>,
    pub desired_status: Option<String>,
    pub enable_execute_command: bool,
    pub group: Option<String>,
    pub containers: Vec<RawContainer>,
    pub availability_zone: Option<String>,
    pub task_definition: Option<String>,
    pub started_at: Option<OffsetDateTime>,
    pub stopped_at: Option<OffsetDateTime>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
}

/// An SDK time as the snapshot keeps it.
pub fn offset_time(t: Option<&aws_smithy_types::DateTime>) -> Option<OffsetDateTime> {
    t.and_then(|t| OffsetDateTime::from_unix_timestamp_nanos(t.as_nanos()).ok())
}

/// A container of a task, with the status of its ExecuteCommandAgent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawContainer {
    pub name: String,
    pub last_status: Option<String>,
    /// `lastStatus` of the `ExecuteCommandAgent` managed agent; None when the agent is absent.
    pub exec_agent_status: Option<String>,
    pub exit_code: Option<i64>,
    pub reason: Option<String>,
    pub image: Option<String>,
}

/// One page of ListTasks for a service, desired status RUNNING.
pub async fn list_tasks_page(
    client: &Client,
    endpoint: Option<&str>,
    cluster: &str,
    service: &str,
    next_token: Option<String>,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    let resource = format!("service {service} in cluster {cluster}");
    let ctx = CallContext {
        iam_action: LIST_TASKS,
        resource: Some(&resource),
        endpoint,
    };
    let output = client
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(DesiredStatus::Running)
        .set_next_token(next_token)
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    Ok((
        output.task_arns().to_vec(),
        output.next_token().map(str::to_string),
    ))
}

/// The first running task of a service (the ARNs of ListTasks' first page sorted, so the
/// choice is stable), None when it has none; throttling retried within `deadline`. For an
/// operator who names no task (`cabal-triage exec`); the runbooks discover every task.
pub async fn first_running_task(
    client: &Client,
    endpoint: Option<&str>,
    cluster: &str,
    service: &str,
    deadline: Deadline,
    backoff: Backoff,
) -> Result<Option<String>, AwsError> {
    let action = format!("{LIST_TASKS} on service {service} in cluster {cluster}");
    let (mut tasks, _) = retry::call(&action, deadline, backoff, || {
        list_tasks_page(client, endpoint, cluster, service, None)
    })
    .await?;
    tasks.sort();
    Ok(tasks.into_iter().next())
}

/// DescribeTasks for up to 100 task ARNs. Tasks ECS could not describe come back as failures
/// (`arn: reason`).
pub async fn describe_tasks(
    client: &Client,
    endpoint: Option<&str>,
    cluster: &str,
    arns: &[String],
) -> Result<(Vec<RawTask>, Vec<String>), AwsError> {
    let resource = format!("cluster {cluster}");
    let ctx = CallContext {
        iam_action: DESCRIBE_TASKS,
        resource: Some(&resource),
        endpoint,
    };
    let output = client
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    let tasks = output
        .tasks()
        .iter()
        .map(|t| RawTask {
            arn: t.task_arn().unwrap_or("").to_string(),
            last_status: t.last_status().map(str::to_string),
            desired_status: t.desired_status().map(str::to_string),
            enable_execute_command: t.enable_execute_command(),
            group: t.group().map(str::to_string),
            availability_zone: t.availability_zone().map(str::to_string),
            task_definition: t.task_definition_arn().map(str::to_string),
            started_at: offset_time(t.started_at()),
            stopped_at: offset_time(t.stopped_at()),
            stop_code: t.stop_code().map(|c| c.as_str().to_string()),
            stopped_reason: t.stopped_reason().map(str::to_string),
            containers: t
                .containers()
                .iter()
                .map(|c| RawContainer {
                    name: c.name().unwrap_or("").to_string(),
                    last_status: c.last_status().map(str::to_string),
                    exec_agent_status: c
                        .managed_agents()
                        .iter()
                        .find(|a| a.name().map(|n| n.as_str()) == Some(EXEC_AGENT))
                        .map(|a| a.last_status().unwrap_or("UNKNOWN").to_string()),
                    exit_code: c.exit_code().map(i64::from),
                    reason: c.reason().map(str::to_string),
                    image: c.image().map(str::to_string),
                })
                .collect(),
        })
        .collect();
    let failures = output
        .failures()
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f.arn().unwrap_or("(no arn)"),
                f.reason().unwrap_or("(no reason)")
            )
        })
        .collect();
    Ok((tasks, failures))
}
