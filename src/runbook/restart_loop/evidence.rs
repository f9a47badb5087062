//! The restart-loop runbook's evidence, typed, from the replay snapshot alone (so a replay
//! decides exactly as the triage did): the service's counts and events, which configured
//! services are below their desired count, the last stopped tasks, the images of the current and
//! previous task definition revisions, the container instances, the error lines, and which
//! probes failed.

use crate::config::Config;
use crate::probe::service::{
    error_logs_step, family_revision, previous_revision, stopped_tasks_step, task_definition_step,
    CONTAINER_INSTANCES_STEP, DESCRIBE_SERVICES_STEP,
};
use crate::probe::snapshot::{
    ContainerInstanceSnapshot, LogEvent, ServiceSnapshot, Snapshot, StoppedTask,
};

#[derive(Debug, Clone, Default)]
pub struct RestartEvidence {
    /// The configured service the alert names.
    pub service: String,
    /// Its `tier` (the deploy script's argument).
    pub tier: String,
    /// What DescribeServices said of it (None: unknown, or ECS does not know it).
    pub state: Option<ServiceSnapshot>,
    pub services_known: bool,
    /// Configured services with fewer running tasks than desired (this one included).
    pub below_desired: Vec<String>,
    pub stopped: Vec<StoppedTask>,
    pub stopped_known: bool,
    /// `family:revision` of the PRIMARY deployment, and the revision before it.
    pub current_revision: Option<String>,
    pub previous_revision: Option<String>,
    /// The image that differs between the two revisions (else the first container's).
    pub image_now: Option<String>,
    pub image_before: Option<String>,
    /// Both revisions were read.
    pub images_known: bool,
    pub instances: Vec<ContainerInstanceSnapshot>,
    pub instances_known: bool,
    pub error_lines: Vec<LogEvent>,
    pub logs_known: bool,
    /// Failed steps, by name, with their errors.
    pub failed: Vec<(String, String)>,
}

/// The evidence about `service` (a configured one) in `snapshot`.
pub fn build(snapshot: &Snapshot, config: &Config, service: &str) -> RestartEvidence {
    let mut failed: Vec<(String, String)> = Vec::new();
    let note = |failed: &mut Vec<(String, String)>, step: String| -> bool {
        match snapshot.probe_errors.get(&step) {
            Some(error) => {
                failed.push((step, error.clone()));
                false
            }
            None => true,
        }
    };
    let services_known =
        note(&mut failed, DESCRIBE_SERVICES_STEP.into()) && snapshot.services.is_some();
    let stopped_known =
        note(&mut failed, stopped_tasks_step(service)) && snapshot.stopped_tasks.is_some();
    let instances_known = note(&mut failed, CONTAINER_INSTANCES_STEP.into())
        && snapshot.container_instances.is_some();
    let state = snapshot
        .services
        .as_ref()
        .and_then(|all| all.get(service))
        .cloned();
    let mut logs_known = note(&mut failed, error_logs_step(service))
        && state
            .as_ref()
            .is_some_and(|s| s.log_events.is_some() && s.log_error.is_none());
    if let Some(error) = state.as_ref().and_then(|s| s.log_error.clone()) {
        if !failed
            .iter()
            .any(|(step, _)| *step == error_logs_step(service))
        {
            failed.push((error_logs_step(service), error));
        }
        logs_known = false;
    }
    let below_desired = snapshot
        .services
        .iter()
        .flatten()
        .filter(|(name, s)| {
            config.services.get(name).is_some()
                && matches!((s.running, s.desired), (Some(r), Some(d)) if r < d)
        })
        .map(|(name, _)| name.clone())
        .collect();
    let current_revision = state.as_ref().and_then(|s| {
        s.deployments
            .iter()
            .find(|d| d.status.as_deref() == Some("PRIMARY"))
            .or(s.deployments.first())
            .and_then(|d| family_revision(&d.task_definition))
    });
    let previous = current_revision.as_deref().and_then(previous_revision);
    let definitions = snapshot.task_definitions.as_ref();
    let now = current_revision
        .as_ref()
        .and_then(|r| definitions.and_then(|d| d.get(r)));
    let before = previous
        .as_ref()
        .and_then(|r| definitions.and_then(|d| d.get(r)));
    for revision in [&current_revision, &previous].into_iter().flatten() {
        note(&mut failed, task_definition_step(revision));
    }
    let (image_now, image_before) = match (now, before) {
        (Some(now), Some(before)) => {
            let changed = now
                .images
                .iter()
                .find(|(name, image)| before.images.get(*name) != Some(*image));
            match changed {
                Some((name, image)) => (Some(image.clone()), before.images.get(name).cloned()),
                None => {
                    let first = now.images.iter().next();
                    (
                        first.map(|(_, i)| i.clone()),
                        first.and_then(|(n, _)| before.images.get(n).cloned()),
                    )
                }
            }
        }
        (Some(now), None) => (now.images.values().next().cloned(), None),
        _ => (None, None),
    };
    RestartEvidence {
        service: service.to_string(),
        tier: config
            .services
            .get(service)
            .map(|s| s.tier.clone())
            .unwrap_or_default(),
        state: state.clone(),
        services_known,
        below_desired,
        stopped: snapshot
            .stopped_tasks
            .as_ref()
            .and_then(|all| all.get(service))
            .cloned()
            .unwrap_or_default(),
        stopped_known,
        images_known: now.is_some() && before.is_some(),
        current_revision,
        previous_revision: previous,
        image_now,
        image_before,
        instances: snapshot.container_instances.clone().unwrap_or_default(),
        instances_known,
        error_lines: state.and_then(|s| s.log_events).unwrap_or_default(),
        logs_known,
        failed,
    }
}
