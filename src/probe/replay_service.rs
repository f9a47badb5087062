//! The replay implementation of `ServiceProbe`: the snapshot's `services`, `stopped_tasks`,
//! `task_definitions` and `container_instances`, and the step errors it recorded
//! (`probe_errors`), so a replay fails the steps the triage failed, with the same words.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::replay::{recorded_error, ReplayProbes};
use super::service::{
    error_logs_step, stopped_tasks_step, task_definition_step, ErrorLogQuery, ServiceProbe,
    CONTAINER_INSTANCES_STEP, DESCRIBE_SERVICES_STEP,
};
use super::snapshot::{
    ContainerInstanceSnapshot, LogEvent, ServiceSnapshot, StoppedTask, TaskDefinitionSnapshot,
};
use super::ProbeError;
use crate::timing::Deadline;

impl ReplayProbes {
    fn recorded_failure(&self, step: &str) -> Result<(), ProbeError> {
        match self.snapshot().probe_errors.get(step) {
            Some(message) => Err(recorded_error(message)),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl ServiceProbe for ReplayProbes {
    async fn describe_services(
        &self,
        names: &[String],
        _deadline: Deadline,
    ) -> Result<BTreeMap<String, ServiceSnapshot>, ProbeError> {
        self.recorded_failure(DESCRIBE_SERVICES_STEP)?;
        let Some(services) = &self.snapshot().services else {
            return Ok(BTreeMap::new());
        };
        Ok(names
            .iter()
            .filter_map(|name| {
                let mut service = services.get(name)?.clone();
                service.log_events = None;
                service.log_error = None;
                Some((name.clone(), service))
            })
            .collect())
    }

    async fn stopped_tasks(
        &self,
        service: &str,
        limit: usize,
        _deadline: Deadline,
    ) -> Result<Vec<StoppedTask>, ProbeError> {
        self.recorded_failure(&stopped_tasks_step(service))?;
        let mut tasks = self
            .snapshot()
            .stopped_tasks
            .as_ref()
            .and_then(|all| all.get(service))
            .cloned()
            .unwrap_or_default();
        tasks.truncate(limit);
        Ok(tasks)
    }

    async fn task_definition(
        &self,
        family_revision: &str,
        _deadline: Deadline,
    ) -> Result<TaskDefinitionSnapshot, ProbeError> {
        self.recorded_failure(&task_definition_step(family_revision))?;
        self.snapshot()
            .task_definitions
            .as_ref()
            .and_then(|all| all.get(family_revision))
            .cloned()
            .ok_or_else(|| ProbeError {
                message: format!(
                    "the replay snapshot has no task definition {family_revision} (the probe was not run)"
                ),
                timed_out: false,
            })
    }

    async fn container_instances(
        &self,
        _deadline: Deadline,
    ) -> Result<Vec<ContainerInstanceSnapshot>, ProbeError> {
        self.recorded_failure(CONTAINER_INSTANCES_STEP)?;
        Ok(self
            .snapshot()
            .container_instances
            .clone()
            .unwrap_or_default())
    }

    async fn error_lines(
        &self,
        query: ErrorLogQuery<'_>,
        _deadline: Deadline,
    ) -> Result<Vec<LogEvent>, ProbeError> {
        self.recorded_failure(&error_logs_step(query.service))?;
        let service = self
            .snapshot()
            .services
            .as_ref()
            .and_then(|all| all.get(query.service));
        if let Some(error) = service.and_then(|s| s.log_error.as_deref()) {
            return Err(recorded_error(error));
        }
        let mut events = service
            .and_then(|s| s.log_events.clone())
            .unwrap_or_default();
        events.truncate(query.max_events);
        Ok(events)
    }
}
