//! Gathering for the restart-loop runbook: four chains side by side, each under its own deadline
//! cut to the overall budget, recorded into the replay snapshot (errors under `probe_errors`):
//!
//! - DescribeServices (every configured service), then the current and previous task
//!   definition revisions of the alerting service, both at once;
//! - ListTasks (stopped) then DescribeTasks of the alerting service;
//! - ListContainerInstances then DescribeContainerInstances;
//! - the alerting service's error lines (FilterLogEvents).

use std::time::Duration;

use time::OffsetDateTime;
use tokio::time::Instant;

use crate::config::{Config, ServiceConfig};
use crate::probe::service::{
    error_logs_step, family_revision, previous_revision, stopped_tasks_step, task_definition_step,
    ErrorLogQuery, CONTAINER_INSTANCES_STEP, DESCRIBE_SERVICES_STEP,
};
use crate::probe::snapshot::{Snapshot, Window};
use crate::probe::{step, ProbeError, ProbeSet};
use crate::report::Step;
use crate::runbook::gather::{Gathered, REPORT_MARGIN};
use crate::timing::Deadline;

fn within(own: Duration, overall: &Deadline) -> Deadline {
    Deadline::after(own.min(overall.remaining()))
}

/// The chain critical path, as the benchmark lists it.
pub const CHAINS: &str = "DescribeServices -> DescribeTaskDefinition x2 | ListTasks(STOPPED) -> DescribeTasks | ListContainerInstances -> DescribeContainerInstances | FilterLogEvents";

pub async fn gather(
    probes: &ProbeSet,
    config: &Config,
    service: &ServiceConfig,
    captured_at: OffsetDateTime,
    budget: Duration,
) -> Gathered {
    let overall = Deadline::after(budget.saturating_sub(REPORT_MARGIN));
    let overall = &overall;
    let ecs_deadline = || within(config.probes.task_discovery_deadline(), overall);
    let rl = &config.restart_loop;
    let window = Window {
        from: captured_at - Duration::from_secs(rl.log_window_secs),
        to: captured_at,
    };
    let names = config.services.names();
    let services_chain = async {
        let started = Instant::now();
        let described = probes
            .services
            .describe_services(&names, ecs_deadline())
            .await;
        let describe_elapsed = started.elapsed();
        let current = described.as_ref().ok().and_then(|all| {
            let s = all.get(&service.name)?;
            s.deployments
                .iter()
                .find(|d| d.status.as_deref() == Some("PRIMARY"))
                .or(s.deployments.first())
                .and_then(|d| family_revision(&d.task_definition))
        });
        let revisions: Vec<String> = current
            .iter()
            .cloned()
            .chain(current.as_deref().and_then(previous_revision))
            .collect();
        let definitions = futures::future::join_all(revisions.iter().map(|revision| async {
            let started = Instant::now();
            let answer = probes
                .services
                .task_definition(revision, ecs_deadline())
                .await;
            (revision.clone(), answer, started.elapsed())
        }))
        .await;
        (described, describe_elapsed, definitions)
    };
    let stopped_chain = async {
        let started = Instant::now();
        let answer = probes
            .services
            .stopped_tasks(&service.name, rl.stopped_tasks, ecs_deadline())
            .await;
        (answer, started.elapsed())
    };
    let instances_chain = async {
        let started = Instant::now();
        let answer = probes.services.container_instances(ecs_deadline()).await;
        (answer, started.elapsed())
    };
    let logs_chain = async {
        let started = Instant::now();
        let answer = probes
            .services
            .error_lines(
                ErrorLogQuery {
                    service: &service.name,
                    log_group: &service.log_group,
                    window,
                    filter_pattern: &rl.log_filter_pattern,
                    max_events: rl.log_max_events,
                },
                within(config.probes.log_scan_deadline(), overall),
            )
            .await;
        (answer, started.elapsed())
    };
    let ((described, describe_elapsed, definitions), stopped, instances, logs) =
        tokio::join!(services_chain, stopped_chain, instances_chain, logs_chain);

    let mut snapshot = Snapshot::new(captured_at);
    snapshot.window = Some(window);
    let mut steps: Vec<Step> = Vec::new();
    let record_error = |snapshot: &mut Snapshot, name: String, error: Option<&ProbeError>| {
        if let Some(e) = error {
            snapshot.probe_errors.insert(name, e.message.clone());
        }
    };
    match described {
        Ok(found) => {
            steps.push(step(DESCRIBE_SERVICES_STEP.into(), describe_elapsed, None));
            snapshot.services = Some(found);
        }
        Err(e) => {
            steps.push(step(
                DESCRIBE_SERVICES_STEP.into(),
                describe_elapsed,
                Some(&e),
            ));
            record_error(&mut snapshot, DESCRIBE_SERVICES_STEP.into(), Some(&e));
        }
    }
    for (revision, answer, elapsed) in definitions {
        let name = task_definition_step(&revision);
        match answer {
            Ok(definition) => {
                steps.push(step(name, elapsed, None));
                snapshot
                    .task_definitions
                    .get_or_insert_with(Default::default)
                    .insert(revision, definition);
            }
            Err(e) => {
                steps.push(step(name.clone(), elapsed, Some(&e)));
                record_error(&mut snapshot, name, Some(&e));
            }
        }
    }
    let (stopped, elapsed) = stopped;
    let name = stopped_tasks_step(&service.name);
    match stopped {
        Ok(tasks) => {
            steps.push(step(name, elapsed, None));
            snapshot
                .stopped_tasks
                .get_or_insert_with(Default::default)
                .insert(service.name.clone(), tasks);
        }
        Err(e) => {
            steps.push(step(name.clone(), elapsed, Some(&e)));
            record_error(&mut snapshot, name, Some(&e));
        }
    }
    let (instances, elapsed) = instances;
    match instances {
        Ok(found) => {
            steps.push(step(CONTAINER_INSTANCES_STEP.into(), elapsed, None));
            snapshot.container_instances = Some(found);
        }
        Err(e) => {
            steps.push(step(CONTAINER_INSTANCES_STEP.into(), elapsed, Some(&e)));
            record_error(&mut snapshot, CONTAINER_INSTANCES_STEP.into(), Some(&e));
        }
    }
    let (logs, elapsed) = logs;
    let name = error_logs_step(&service.name);
    let entry = snapshot
        .services
        .get_or_insert_with(Default::default)
        .entry(service.name.clone())
        .or_default();
    match logs {
        Ok(events) => {
            entry.log_events = Some(events);
            steps.push(step(name, elapsed, None));
        }
        Err(e) => {
            entry.log_error = Some(e.message.clone());
            steps.push(step(name, elapsed, Some(&e)));
        }
    }
    Gathered { snapshot, steps }
}
