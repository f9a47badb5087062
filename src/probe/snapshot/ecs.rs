//! The replay snapshot's fields for the ContainerRestartLoop and IMAPAuthFailureSpike runbooks
//! (`docs/contracts.md`, "Replay snapshot"): ECS services, their last stopped tasks, task
//! definitions and container instances; the network interfaces behind IMAP login sources and the
//! master password parameter's metadata (never its value). Every time is an RFC 3339 string (a
//! snapshot with any other text there does not parse); counts and exit codes are integers or null.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::LogEvent;

/// One ECS service as DescribeServices saw it, with its error log lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceSnapshot {
    #[serde(default)]
    pub desired: Option<i64>,
    #[serde(default)]
    pub running: Option<i64>,
    #[serde(default)]
    pub pending: Option<i64>,
    /// The service's last events, newest first.
    #[serde(default)]
    pub events: Vec<ServiceEvent>,
    #[serde(default)]
    pub deployments: Vec<DeploymentSnapshot>,
    /// The error lines of the service's log group (the alerting service only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_events: Option<Vec<LogEvent>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
}

/// A service event (`(service cabal-imap) has started 1 tasks: ...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEvent {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
    /// ECS's text, which quotes task and container output: untrusted.
    pub message: String,
}

/// A deployment of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentSnapshot {
    /// The task definition ARN.
    pub task_definition: String,
    /// `PRIMARY`, `ACTIVE`, `INACTIVE`.
    #[serde(default)]
    pub status: Option<String>,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED`.
    #[serde(default)]
    pub rollout_state: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_at: Option<OffsetDateTime>,
}

/// A stopped task of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedTask {
    /// The last part of the task ARN.
    pub id: String,
    #[serde(default)]
    pub task_definition: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub stopped_at: Option<OffsetDateTime>,
    /// `EssentialContainerExited`, `TaskFailedToStart`, ...
    #[serde(default)]
    pub stop_code: Option<String>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    #[serde(default)]
    pub containers: Vec<StoppedContainer>,
}

/// A container of a stopped task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedContainer {
    pub name: String,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
}

/// A task definition revision: its containers' images.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinitionSnapshot {
    /// Container name -> image.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub registered_at: Option<OffsetDateTime>,
}

/// CPU units and MiB of memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, rename = "CPU")]
    pub cpu: Option<i64>,
    #[serde(default, rename = "MEMORY")]
    pub memory: Option<i64>,
}

/// A container instance of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInstanceSnapshot {
    /// The last part of the container instance ARN.
    pub id: String,
    #[serde(default)]
    pub ec2_instance_id: Option<String>,
    /// `ACTIVE`, `DRAINING`, ...
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub agent_connected: Option<bool>,
    #[serde(default)]
    pub remaining: Resources,
    #[serde(default)]
    pub registered: Resources,
}

/// The network interface holding a private IP (an IMAP login source).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterfaceSnapshot {
    pub id: String,
    /// `lambda` for a Lambda's VPC ENI, `interface` for an instance's or a task's, ...
    #[serde(default)]
    pub interface_type: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub requester_id: Option<String>,
    /// Security group names.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An SSM parameter's metadata (never its value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterSnapshot {
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_modified: Option<OffsetDateTime>,
    #[serde(default)]
    pub version: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::super::Snapshot;

    const EXAMPLE: &str = r#"{"captured_at": "2026-12-01T03:00:00Z",
      "tiers": {"imap": {"task_details": [{"arn": "arn:aws:ecs:us-east-1:1:task/cabal-mail/0a1b", "id": "0a1b",
                 "exec_enabled": true, "containers": [], "started_at": "2026-12-01T02:10:00Z"}]}},
      "network_interfaces": {"10.64.3.7": {"id": "eni-0a", "interface_type": "lambda",
                             "description": "AWS Lambda VPC ENI-cabal-list", "requester_id": "AROA:x",
                             "groups": ["cabal-lambda-sg"]}},
      "parameters": {"/cabal/master_password": {"last_modified": "2026-12-01T02:00:00Z", "version": 4}},
      "services": {"cabal-imap": {"desired": 1, "running": 0, "pending": null,
                   "events": [{"created_at": "2026-12-01T02:59:00Z", "message": "(service cabal-imap) has started 1 tasks"}],
                   "deployments": [{"task_definition": "arn:aws:ecs:us-east-1:1:task-definition/cabal-imap:42",
                                    "status": "PRIMARY", "rollout_state": "IN_PROGRESS", "created_at": "2026-12-01T02:20:00Z"}],
                   "log_events": [], "log_error": null}},
      "stopped_tasks": {"cabal-imap": [{"id": "9f", "task_definition": "arn:aws:ecs:us-east-1:1:task-definition/cabal-imap:42",
                        "stopped_at": "2026-12-01T02:58:00Z", "stop_code": "EssentialContainerExited",
                        "stopped_reason": "Essential container in task exited",
                        "containers": [{"name": "imap", "exit_code": 1, "reason": null, "image": "r/cabal-imap:sha-2"}]}]},
      "task_definitions": {"cabal-imap:42": {"images": {"imap": "r/cabal-imap:sha-2"}, "registered_at": "2026-12-01T02:19:00Z"}},
      "container_instances": [{"id": "ci-1", "ec2_instance_id": "i-0abc", "status": "ACTIVE", "agent_connected": true,
                               "remaining": {"CPU": 512, "MEMORY": 700}, "registered": {"CPU": 2048, "MEMORY": 3800}}]}"#;

    #[test]
    fn the_contract_fields_read_and_round_trip() {
        let snapshot: Snapshot = serde_json::from_str(EXAMPLE).unwrap();
        let service = &snapshot.services.as_ref().unwrap()["cabal-imap"];
        assert_eq!(
            (service.desired, service.running, service.pending),
            (Some(1), Some(0), None)
        );
        let stopped = &snapshot.stopped_tasks.as_ref().unwrap()["cabal-imap"][0];
        assert_eq!(stopped.containers[0].exit_code, Some(1));
        let instance = &snapshot.container_instances.as_ref().unwrap()[0];
        assert_eq!(instance.remaining.memory, Some(700));
        assert_eq!(
            snapshot.network_interfaces.as_ref().unwrap()["10.64.3.7"]
                .interface_type
                .as_deref(),
            Some("lambda")
        );
        assert_eq!(
            snapshot.parameters.as_ref().unwrap()["/cabal/master_password"].version,
            Some(4)
        );
        assert!(snapshot.tiers["imap"].task_details.as_ref().unwrap()[0]
            .started_at
            .is_some());
        let text = serde_json::to_string(&snapshot).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["container_instances"][0]["remaining"]["CPU"], 512);
        assert_eq!(
            json["task_definitions"]["cabal-imap:42"]["registered_at"],
            "2026-12-01T02:19:00Z"
        );
        assert_eq!(serde_json::from_str::<Snapshot>(&text).unwrap(), snapshot);
    }

    #[test]
    fn times_that_are_not_rfc3339_and_counts_that_are_not_integers_are_refused() {
        for (from, to) in [
            (
                "\"stopped_at\": \"2026-12-01T02:58:00Z\"",
                "\"stopped_at\": \"yesterday\"",
            ),
            ("\"desired\": 1", "\"desired\": \"one\""),
            ("\"exit_code\": 1", "\"exit_code\": 1.5"),
            (
                "\"last_modified\": \"2026-12-01T02:00:00Z\"",
                "\"last_modified\": 1764554400",
            ),
        ] {
            let text = EXAMPLE.replace(from, to);
            assert_ne!(text, EXAMPLE);
            assert!(serde_json::from_str::<Snapshot>(&text).is_err(), "{to}");
        }
    }
}
