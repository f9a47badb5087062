//! The ECS implementation of `probe::TaskDiscoveryProbe`: every running task of each tier's
//! service (all ListTasks pages, DescribeTasks in chunks of 100), each call retried on
//! throttling within the deadline.

use async_trait::async_trait;
use tokio::time::Instant;

use crate::aws::ecs::{
    describe_tasks, list_tasks_page, RawTask, DESCRIBE_TASKS, DESCRIBE_TASKS_MAX, LIST_TASKS,
};
use crate::aws::{retry, AwsClients, AwsError};
use crate::config::Config;
use crate::probe::snapshot::{ContainerInfo, TaskInfo};
use crate::probe::tasks::{task_id, TierTasks};
use crate::probe::{ProbeError, TaskDiscoveryProbe};
use crate::timing::{Backoff, Deadline};

fn task_info(raw: RawTask) -> TaskInfo {
    TaskInfo {
        id: task_id(&raw.arn).to_string(),
        arn: raw.arn,
        last_status: raw.last_status,
        exec_enabled: raw.enable_execute_command,
        availability_zone: raw.availability_zone,
        started_at: raw.started_at,
        containers: raw
            .containers
            .into_iter()
            .map(|c| ContainerInfo {
                name: c.name,
                last_status: c.last_status,
                exec_agent: c.exec_agent_status,
            })
            .collect(),
    }
}

/// Task discovery against ECS.
#[derive(Debug, Clone)]
pub struct AwsTaskDiscovery {
    client: aws_sdk_ecs::Client,
    endpoint: Option<String>,
    cluster: String,
    /// (tier, service, container) in report order.
    tiers: Vec<(String, String, String)>,
    backoff: Backoff,
}

impl AwsTaskDiscovery {
    pub fn new(clients: &AwsClients, config: &Config) -> AwsTaskDiscovery {
        AwsTaskDiscovery {
            client: clients.ecs.clone(),
            endpoint: clients.endpoints.ecs.clone(),
            cluster: config.cabalmail.cluster.clone(),
            tiers: config
                .cabalmail
                .tiers_in_order()
                .map(|(name, t)| (name.to_string(), t.service.clone(), t.container.clone()))
                .collect(),
            backoff: config.probes.throttle_backoff(),
        }
    }

    async fn discover_configured(
        &self,
        tier: &str,
        service: &str,
        container: &str,
        deadline: Deadline,
    ) -> TierTasks {
        let started = Instant::now();
        let mut tasks = Vec::new();
        let error = self
            .collect(service, deadline, &mut tasks)
            .await
            .err()
            .map(ProbeError::from);
        if let Some(e) = &error {
            tracing::warn!(tier, service, error = %e, "task discovery failed");
        }
        TierTasks {
            tier: tier.to_string(),
            service: service.to_string(),
            container: container.to_string(),
            tasks,
            error,
            elapsed: started.elapsed(),
        }
    }

    /// Lists every page, then describes in chunks of 100; tasks described before a failure
    /// stay in `found`.
    async fn collect(
        &self,
        service: &str,
        deadline: Deadline,
        found: &mut Vec<TaskInfo>,
    ) -> Result<(), AwsError> {
        let endpoint = self.endpoint.as_deref();
        let list_action = format!(
            "{LIST_TASKS} on service {service} in cluster {}",
            self.cluster
        );
        let mut arns: Vec<String> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (page, next) = retry::call(&list_action, deadline, self.backoff, || {
                list_tasks_page(
                    &self.client,
                    endpoint,
                    &self.cluster,
                    service,
                    token.clone(),
                )
            })
            .await?;
            arns.extend(page);
            match next {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        arns.dedup();
        let describe_action = format!("{DESCRIBE_TASKS} on cluster {}", self.cluster);
        for chunk in arns.chunks(DESCRIBE_TASKS_MAX) {
            let (described, failures) =
                retry::call(&describe_action, deadline, self.backoff, || {
                    describe_tasks(&self.client, endpoint, &self.cluster, chunk)
                })
                .await?;
            if !failures.is_empty() {
                // A task that stopped between ListTasks and DescribeTasks is reported MISSING.
                tracing::info!(service, ?failures, "tasks not described");
            }
            // ECS gives a service's tasks the group `service:<name>`. ListTasks already filters
            // by service; the check keeps an endpoint that ignores `serviceName` (moto does)
            // from attributing another service's tasks to this tier.
            let group = format!("service:{service}");
            found.extend(
                described
                    .into_iter()
                    .filter(|t| t.group.as_deref().is_none_or(|g| g == group))
                    .map(task_info),
            );
        }
        Ok(())
    }
}

#[async_trait]
impl TaskDiscoveryProbe for AwsTaskDiscovery {
    fn tiers(&self) -> Vec<String> {
        self.tiers.iter().map(|(tier, _, _)| tier.clone()).collect()
    }

    async fn discover_tier(&self, tier: &str, deadline: Deadline) -> TierTasks {
        match self.tiers.iter().find(|(name, _, _)| name == tier) {
            Some((tier, service, container)) => {
                self.discover_configured(tier, service, container, deadline)
                    .await
            }
            None => TierTasks::not_configured(tier),
        }
    }
}
