//! The AWS implementation of `probe::ServiceProbe`: DescribeServices in chunks of ten, the
//! stopped tasks (ListTasks then DescribeTasks), DescribeTaskDefinition, the container instances
//! (every ListContainerInstances page, then DescribeContainerInstances in chunks of a hundred),
//! and the service's error lines (FilterLogEvents pages up to the cap). Every call is retried on
//! throttling within its deadline.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::aws::ecs::{describe_tasks, DESCRIBE_TASKS, LIST_TASKS};
use crate::aws::ecs_service::{
    describe_container_instances, describe_services, describe_task_definition,
    list_container_instances_page, list_stopped_tasks_page, DESCRIBE_CONTAINER_INSTANCES,
    DESCRIBE_CONTAINER_INSTANCES_MAX, DESCRIBE_SERVICES, DESCRIBE_SERVICES_MAX,
    DESCRIBE_TASK_DEFINITION, LIST_CONTAINER_INSTANCES,
};
use crate::aws::logs::{filter_log_events_page, FilterQuery, FILTER_LOG_EVENTS};
use crate::aws::{retry, AwsClients};
use crate::config::Config;
use crate::probe::service::{ErrorLogQuery, ServiceProbe};
use crate::probe::snapshot::{
    ContainerInstanceSnapshot, LogEvent, ServiceSnapshot, StoppedContainer, StoppedTask,
    TaskDefinitionSnapshot,
};
use crate::probe::tasks::task_id;
use crate::probe::ProbeError;
use crate::timing::{Backoff, Deadline};

/// FilterLogEvents page size for error lines.
const ERROR_PAGE_LIMIT: i32 = 100;

#[derive(Debug, Clone)]
pub struct AwsServiceProbe {
    ecs: aws_sdk_ecs::Client,
    ecs_endpoint: Option<String>,
    logs: aws_sdk_cloudwatchlogs::Client,
    logs_endpoint: Option<String>,
    cluster: String,
    backoff: Backoff,
}

impl AwsServiceProbe {
    pub fn new(clients: &AwsClients, config: &Config) -> AwsServiceProbe {
        AwsServiceProbe {
            ecs: clients.ecs.clone(),
            ecs_endpoint: clients.endpoints.ecs.clone(),
            logs: clients.logs.clone(),
            logs_endpoint: clients.endpoints.logs.clone(),
            cluster: config.cabalmail.cluster.clone(),
            backoff: config.probes.throttle_backoff(),
        }
    }
}

#[async_trait]
impl ServiceProbe for AwsServiceProbe {
    async fn describe_services(
        &self,
        names: &[String],
        deadline: Deadline,
    ) -> Result<BTreeMap<String, ServiceSnapshot>, ProbeError> {
        let action = format!("{DESCRIBE_SERVICES} on cluster {}", self.cluster);
        let chunks = names.chunks(DESCRIBE_SERVICES_MAX).map(|chunk| {
            retry::call(&action, deadline, self.backoff, move || {
                describe_services(
                    &self.ecs,
                    self.ecs_endpoint.as_deref(),
                    &self.cluster,
                    chunk,
                )
            })
        });
        let mut found = BTreeMap::new();
        for answer in futures::future::join_all(chunks).await {
            let (services, _missing) = answer?;
            found.extend(services);
        }
        Ok(found)
    }

    async fn stopped_tasks(
        &self,
        service: &str,
        limit: usize,
        deadline: Deadline,
    ) -> Result<Vec<StoppedTask>, ProbeError> {
        let endpoint = self.ecs_endpoint.as_deref();
        let action = format!(
            "{LIST_TASKS} (stopped) on service {service} in cluster {}",
            self.cluster
        );
        let page = i32::try_from(limit.clamp(1, 100)).unwrap_or(100);
        let arns = retry::call(&action, deadline, self.backoff, || {
            list_stopped_tasks_page(&self.ecs, endpoint, &self.cluster, service, page)
        })
        .await?;
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let action = format!("{DESCRIBE_TASKS} on cluster {}", self.cluster);
        let (described, _failures) = retry::call(&action, deadline, self.backoff, || {
            describe_tasks(&self.ecs, endpoint, &self.cluster, &arns)
        })
        .await?;
        // ECS gives a service's tasks the group `service:<name>`; ListTasks already filters on
        // the service, the group check keeps another service's task out of the evidence should
        // an endpoint not (moto does not).
        let group = format!("service:{service}");
        let mut tasks: Vec<StoppedTask> = described
            .into_iter()
            .filter(|t| t.group.as_deref().is_none_or(|g| g == group))
            .map(|t| StoppedTask {
                id: task_id(&t.arn).to_string(),
                task_definition: t.task_definition,
                stopped_at: t.stopped_at,
                stop_code: t.stop_code,
                stopped_reason: t.stopped_reason,
                containers: t
                    .containers
                    .into_iter()
                    .map(|c| StoppedContainer {
                        name: c.name,
                        exit_code: c.exit_code,
                        reason: c.reason,
                        image: c.image,
                    })
                    .collect(),
            })
            .collect();
        // Newest first; tasks without a stop time last.
        tasks.sort_by_key(|t| std::cmp::Reverse(t.stopped_at));
        tasks.truncate(limit);
        Ok(tasks)
    }

    async fn task_definition(
        &self,
        family_revision: &str,
        deadline: Deadline,
    ) -> Result<TaskDefinitionSnapshot, ProbeError> {
        let action = format!("{DESCRIBE_TASK_DEFINITION} of {family_revision}");
        Ok(retry::call(&action, deadline, self.backoff, || {
            describe_task_definition(&self.ecs, self.ecs_endpoint.as_deref(), family_revision)
        })
        .await?)
    }

    async fn container_instances(
        &self,
        deadline: Deadline,
    ) -> Result<Vec<ContainerInstanceSnapshot>, ProbeError> {
        let endpoint = self.ecs_endpoint.as_deref();
        let action = format!("{LIST_CONTAINER_INSTANCES} on cluster {}", self.cluster);
        let mut arns: Vec<String> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = retry::call(&action, deadline, self.backoff, || {
                list_container_instances_page(&self.ecs, endpoint, &self.cluster, token.clone())
            })
            .await?;
            arns.extend(page);
            match next {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        let action = format!("{DESCRIBE_CONTAINER_INSTANCES} on cluster {}", self.cluster);
        let mut instances = Vec::new();
        for chunk in arns.chunks(DESCRIBE_CONTAINER_INSTANCES_MAX) {
            instances.extend(
                retry::call(&action, deadline, self.backoff, || {
                    describe_container_instances(&self.ecs, endpoint, &self.cluster, chunk)
                })
                .await?,
            );
        }
        Ok(instances)
    }

    async fn error_lines(
        &self,
        query: ErrorLogQuery<'_>,
        deadline: Deadline,
    ) -> Result<Vec<LogEvent>, ProbeError> {
        let filter = FilterQuery {
            log_group: query.log_group,
            start_ms: query.window.from_ms(),
            end_ms: query.window.to_ms(),
            filter_pattern: query.filter_pattern,
            limit: ERROR_PAGE_LIMIT,
        };
        let action = format!("{FILTER_LOG_EVENTS} on {}", query.log_group);
        let mut events = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = retry::call(&action, deadline, self.backoff, || {
                filter_log_events_page(
                    &self.logs,
                    self.logs_endpoint.as_deref(),
                    &filter,
                    token.clone(),
                )
            })
            .await?;
            events.extend(page.events.into_iter().map(|e| LogEvent {
                timestamp: e.timestamp,
                message: e.message,
                log_stream: e.log_stream,
            }));
            if events.len() >= query.max_events {
                events.truncate(query.max_events);
                break;
            }
            match page.next_token {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        Ok(events)
    }
}
