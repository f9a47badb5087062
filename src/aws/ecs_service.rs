//! ECS adapter for the ContainerRestartLoop runbook: services (counts, events, deployments), the
//! stopped tasks of a service, task definitions' images, the cluster's container instances. One
//! call per function; paging, retries and deadlines are the probe's (`probes::ecs_service`).

use std::collections::BTreeMap;

use aws_sdk_ecs::types::DesiredStatus;
use aws_sdk_ecs::Client;

use super::ecs::offset_time;
use super::error::{classify, AwsError, CallContext};
use crate::probe::snapshot::{
    ContainerInstanceSnapshot, DeploymentSnapshot, Resources, ServiceEvent, ServiceSnapshot,
    TaskDefinitionSnapshot,
};

pub const DESCRIBE_SERVICES: &str = "ecs:DescribeServices";
pub const DESCRIBE_TASK_DEFINITION: &str = "ecs:DescribeTaskDefinition";
pub const LIST_CONTAINER_INSTANCES: &str = "ecs:ListContainerInstances";
pub const DESCRIBE_CONTAINER_INSTANCES: &str = "ecs:DescribeContainerInstances";
/// DescribeServices accepts at most ten services per call.
pub const DESCRIBE_SERVICES_MAX: usize = 10;
/// DescribeContainerInstances accepts at most a hundred per call.
pub const DESCRIBE_CONTAINER_INSTANCES_MAX: usize = 100;
/// The service events kept (ECS returns up to a hundred, newest first).
pub const SERVICE_EVENTS_KEPT: usize = 10;

/// DescribeServices for up to ten names: (name, service) pairs, and the names ECS reported as
/// failures (`name: reason`).
pub async fn describe_services(
    client: &Client,
    endpoint: Option<&str>,
    cluster: &str,
    names: &[String],
) -> Result<(Vec<(String, ServiceSnapshot)>, Vec<String>), AwsError> {
    let resource = format!("cluster {cluster}");
    let ctx = CallContext {
        iam_action: DESCRIBE_SERVICES,
        resource: Some(&resource),
        endpoint,
    };
    let output = client
        .describe_services()
        .cluster(cluster)
        .set_services(Some(names.to_vec()))
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    let services = output
        .services()
        .iter()
        .map(|s| {
            let service = ServiceSnapshot {
                desired: Some(i64::from(s.desired_count())),
                running: Some(i64::from(s.running_count())),
                pending: Some(i64::from(s.pending_count())),
                events: s
                    .events()
                    .iter()
                    .take(SERVICE_EVENTS_KEPT)
                    .map(|e| ServiceEvent {
                        created_at: offset_time(e.created_at()),
                        message: e.message().unwrap_or("").to_string(),
                    })
                    .collect(),
                deployments: s
                    .deployments()
                    .iter()
                    .map(|d| DeploymentSnapshot {
                        task_definition: d.task_definition().unwrap_or("").to_string(),
                        status: d.status().map(str::to_string),
                        rollout_state: d.rollout_state().map(|r| r.as_str().to_string()),
                        created_at: offset_time(d.created_at()),
                    })
                    .collect(),
                log_events: None,
                log_error: None,
            };
            (s.service_name().unwrap_or("").to_string(), service)
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
    Ok((services, failures))
}

/// One page of ListTasks for a service's stopped tasks (ECS keeps them about an hour).
pub async fn list_stopped_tasks_page(
    client: &Client,
    endpoint: Option<&str>,
    cluster: &str,
    service: &str,
    limit: i32,
) -> Result<Vec<String>, AwsError> {
    let resource = format!("service {service} in cluster {cluster}");
    let ctx = CallContext {
        iam_action: super::ecs::LIST_TASKS,
        resource: Some(&resource),
        endpoint,
    };
    let output = client
        .list_tasks()
        .cluster(cluster)
        .service_name(service)
        .desired_status(DesiredStatus::Stopped)
        .max_results(limit)
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    Ok(output.task_arns().to_vec())
}

/// DescribeTaskDefinition: each container's image and the registration time.
pub async fn describe_task_definition(
    client: &Client,
    endpoint: Option<&str>,
    family_revision: &str,
) -> Result<TaskDefinitionSnapshot, AwsError> {
    let ctx = CallContext {
        iam_action: DESCRIBE_TASK_DEFINITION,
        resource: Some(family_revision),
        endpoint,
    };
    let output = client
        .describe_task_definition()
        .task_definition(family_revision)
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    let Some(definition) = output.task_definition() else {
        return Ok(TaskDefinitionSnapshot::default());
    };
    Ok(TaskDefinitionSnapshot {
        images: definition
            .container_definitions()
            .iter()
            .filter_map(|c| Some((c.name()?.to_string(), c.image()?.to_string())))
            .collect::<BTreeMap<_, _>>(),
        registered_at: offset_time(definition.registered_at()),
    })
}

/// One page of ListContainerInstances.
pub async fn list_container_instances_page(
    client: &Client,
    endpoint: Option<&str>,
    cluster: &str,
    next_token: Option<String>,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    let resource = format!("cluster {cluster}");
    let ctx = CallContext {
        iam_action: LIST_CONTAINER_INSTANCES,
        resource: Some(&resource),
        endpoint,
    };
    let output = client
        .list_container_instances()
        .cluster(cluster)
        .set_next_token(next_token)
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    Ok((
        output.container_instance_arns().to_vec(),
        output.next_token().map(str::to_string),
    ))
}

fn resources(list: &[aws_sdk_ecs::types::Resource]) -> Resources {
    let of = |name: &str| {
        list.iter()
            .find(|r| r.name() == Some(name))
            .map(|r| i64::from(r.integer_value()))
    };
    Resources {
        cpu: of("CPU"),
        memory: of("MEMORY"),
    }
}

/// DescribeContainerInstances for up to a hundred ARNs.
pub async fn describe_container_instances(
    client: &Client,
    endpoint: Option<&str>,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<ContainerInstanceSnapshot>, AwsError> {
    let resource = format!("cluster {cluster}");
    let ctx = CallContext {
        iam_action: DESCRIBE_CONTAINER_INSTANCES,
        resource: Some(&resource),
        endpoint,
    };
    let output = client
        .describe_container_instances()
        .cluster(cluster)
        .set_container_instances(Some(arns.to_vec()))
        .send()
        .await
        .map_err(|e| classify(ctx, e))?;
    Ok(output
        .container_instances()
        .iter()
        .map(|c| ContainerInstanceSnapshot {
            id: crate::probe::tasks::task_id(c.container_instance_arn().unwrap_or("")).to_string(),
            ec2_instance_id: c.ec2_instance_id().map(str::to_string),
            status: c.status().map(str::to_string),
            agent_connected: Some(c.agent_connected()),
            remaining: resources(c.remaining_resources()),
            registered: resources(c.registered_resources()),
        })
        .collect())
}
