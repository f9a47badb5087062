//! The replay snapshot (`docs/contracts.md`, "Replay snapshot"): what the probes saw, so a
//! triage can be replayed without AWS. Pure data with serde, and its parsing (`parse`), so that
//! the CLI, the demo and the replay tests read snapshots the same way; a missing key means the
//! probe was not run, which replays treat like a probe that returned nothing.
//!
//! Beyond the contract's fields the types carry a few extras that replays need to reproduce a
//! report exactly (`log_truncated`, `task_details`, the NAT's AZ and launch time); they are
//! skipped when empty so a contract-only snapshot round-trips unchanged.

use std::borrow::Cow;
mod ecs;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use ecs::{
    ContainerInstanceSnapshot, DeploymentSnapshot, NetworkInterfaceSnapshot, ParameterSnapshot,
    Resources, ServiceEvent, ServiceSnapshot, StoppedContainer, StoppedTask,
    TaskDefinitionSnapshot,
};

/// A text that is not a replay snapshot.
#[derive(Debug, thiserror::Error)]
#[error("{origin}:{line}: not a replay snapshot: {source}")]
pub struct SnapshotError {
    /// What the text was (a file name, "bundled snapshot").
    pub origin: String,
    /// The line of the first error, from 1.
    pub line: usize,
    pub source: serde_json::Error,
}

/// Parses a replay snapshot's text; `origin` names it in the error, with the line.
pub fn parse(text: &str, origin: &str) -> Result<Snapshot, SnapshotError> {
    serde_json::from_str(text).map_err(|source| SnapshotError {
        origin: origin.to_string(),
        line: source.line(),
        source,
    })
}

/// The whole snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    #[serde(with = "time::serde::rfc3339")]
    pub captured_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    #[serde(default)]
    pub tiers: BTreeMap<String, TierSnapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatSnapshot>,
    /// IP -> zone -> answers (empty: not listed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnsbl: Option<BTreeMap<String, BTreeMap<String, Vec<String>>>>,
    /// IMAPAuthFailureSpike: private IP -> the network interface holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_interfaces: Option<BTreeMap<String, NetworkInterfaceSnapshot>>,
    /// IMAPAuthFailureSpike: SSM parameter name -> its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, ParameterSnapshot>>,
    /// ContainerRestartLoop: service name -> what DescribeServices said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<BTreeMap<String, ServiceSnapshot>>,
    /// ContainerRestartLoop: service name -> its last stopped tasks, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_tasks: Option<BTreeMap<String, Vec<StoppedTask>>>,
    /// ContainerRestartLoop: `family:revision` -> its images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definitions: Option<BTreeMap<String, TaskDefinitionSnapshot>>,
    /// ContainerRestartLoop: the cluster's container instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instances: Option<Vec<ContainerInstanceSnapshot>>,
    /// Why a step of those runbooks failed, by step name (extra field): a replay fails the same
    /// step with the same text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub probe_errors: BTreeMap<String, String>,
    /// The alert's history as the ledger answered during the triage (`report::history`); absent
    /// when not asked (a one-shot triage, an older snapshot): a replay then knows no history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<crate::report::history::AlertHistory>,
}

impl Snapshot {
    pub fn new(captured_at: OffsetDateTime) -> Snapshot {
        Snapshot {
            captured_at,
            window: None,
            tiers: BTreeMap::new(),
            nat: None,
            dnsbl: None,
            network_interfaces: None,
            parameters: None,
            services: None,
            stopped_tasks: None,
            task_definitions: None,
            container_instances: None,
            probe_errors: BTreeMap::new(),
            history: None,
        }
    }

    /// The tier's entry, created empty when absent.
    pub fn tier_mut(&mut self, tier: &str) -> &mut TierSnapshot {
        self.tiers.entry(tier.to_string()).or_default()
    }

    /// Cuts every email local part in the snapshot's free text (log lines, command output,
    /// error texts) to its first character with [`crate::report::redact`]: what is stored and
    /// served when `privacy.show_local_parts` is off. The evidence keeps what the rules read
    /// (recipient domains, DSN codes, relays, queue counts), so a replay of the redacted
    /// snapshot reaches the verdict of the original (the examples' tests hold that).
    ///
    /// Dovecot's login names (`user=<…>` of `imap-login` lines) become pseudonyms keyed with
    /// `user_key` (`dovecot::pseudonymize_users`): distinct names stay distinct, so a replay of the
    /// stored snapshot counts the same users, but the names are not stored.
    pub fn redact_local_parts(&mut self, user_key: &[u8]) {
        for tier in self.tiers.values_mut() {
            for event in tier.log_events.iter_mut().flatten() {
                if let Cow::Owned(named) =
                    crate::dovecot::pseudonymize_users(&event.message, user_key)
                {
                    event.message = named;
                }
                redact_in_place(&mut event.message);
            }
            for record in tier.exec.iter_mut().flatten() {
                redact_option(&mut record.output);
                redact_option(&mut record.error);
            }
            redact_option(&mut tier.log_error);
            redact_option(&mut tier.tasks_error);
            redact_option(&mut tier.newest_log_event_error);
        }
        if let Some(nat) = &mut self.nat {
            redact_option(&mut nat.error);
        }
        // The other runbooks' free text: service events and error lines quote task output.
        for service in self.services.iter_mut().flat_map(|s| s.values_mut()) {
            for event in &mut service.events {
                redact_in_place(&mut event.message);
            }
            for event in service.log_events.iter_mut().flatten() {
                redact_in_place(&mut event.message);
            }
            redact_option(&mut service.log_error);
        }
        for task in self
            .stopped_tasks
            .iter_mut()
            .flat_map(|s| s.values_mut().flatten())
        {
            redact_option(&mut task.stopped_reason);
            for container in &mut task.containers {
                redact_option(&mut container.reason);
            }
        }
        for error in self.probe_errors.values_mut() {
            redact_in_place(error);
        }
    }
}

fn redact_in_place(text: &mut String) {
    if let Cow::Owned(redacted) = crate::report::redact::redact_addresses(text) {
        *text = redacted;
    }
}

fn redact_option(text: &mut Option<String>) {
    if let Some(text) = text {
        redact_in_place(text);
    }
}

/// The log-scan window, `from` .. `to` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
}

impl Window {
    /// Epoch milliseconds of `from`, as CloudWatch wants it.
    pub fn from_ms(&self) -> i64 {
        epoch_ms(self.from)
    }
    /// Epoch milliseconds of `to`.
    pub fn to_ms(&self) -> i64 {
        epoch_ms(self.to)
    }
}

fn epoch_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// What was seen on one tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TierSnapshot {
    /// ARNs of the tier's running tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<String>>,
    /// Per task: whether ECS Exec is enabled and its agent running (extra field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_details: Option<Vec<TaskInfo>>,
    /// Why task discovery failed on this tier (extra field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks_error: Option<String>,
    /// One entry per task and command run over ECS Exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<ExecRecord>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_events: Option<Vec<LogEvent>>,
    /// Why the log scan failed or stopped early, when it did.
    #[serde(default)]
    pub log_error: Option<String>,
    /// The per-tier cap stopped the scan: more matching events exist (extra field).
    #[serde(default, skip_serializing_if = "is_false")]
    pub log_truncated: bool,
    /// Epoch milliseconds of the newest event of the tier's log group, any line; null or absent
    /// when unknown (not read, the read failed, or the group holds no event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_log_event_ms: Option<i64>,
    /// Why the newest event could not be read, when it could not (extra field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest_log_event_error: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One CloudWatch Logs event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Epoch milliseconds (CloudWatch's time, the authoritative one).
    pub timestamp: i64,
    /// The syslog line, as written by remote servers: untrusted text.
    pub message: String,
    pub log_stream: String,
}

/// One command run over ECS Exec (filled by the mail-queue probe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    /// Task id (the last part of the ARN).
    pub task: String,
    /// `mailq` or `virtusertable`.
    pub probe: String,
    /// Raw output as received.
    #[serde(default)]
    pub output: Option<String>,
    #[serde(default)]
    pub exit_status: Option<i32>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A running task of a tier, and whether ECS Exec can reach its container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub arn: String,
    /// The last part of the ARN, as ECS Exec targets it.
    pub id: String,
    #[serde(default)]
    pub last_status: Option<String>,
    /// `enableExecuteCommand` of the task.
    pub exec_enabled: bool,
    pub containers: Vec<ContainerInfo>,
    /// The task's availability zone (`DescribeTasks` `availabilityZone`): which zone's NAT its
    /// mail, logs and ECS Exec agent leave through. Absent in older snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// When the task started (`startedAt`), RFC 3339; absent when unknown.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub started_at: Option<OffsetDateTime>,
}

/// A container of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub name: String,
    #[serde(default)]
    pub last_status: Option<String>,
    /// `lastStatus` of its `ExecuteCommandAgent` (`RUNNING` when ECS Exec works); null when the
    /// task has no such agent.
    #[serde(default)]
    pub exec_agent: Option<String>,
}

/// The NAT in front of smtp-out: instances and/or gateways whose Name tag matches the pattern.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NatSnapshot {
    #[serde(default)]
    pub instances: Vec<NatEntry>,
    #[serde(default)]
    pub gateways: Vec<NatEntry>,
    /// Why (part of) the NAT lookup failed.
    #[serde(default)]
    pub error: Option<String>,
    /// The private route tables (`nat.route_table_pattern`) and their default routes; absent
    /// when not read (older snapshots): the zones are then judged by their NATs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_tables: Option<Vec<RouteTableEntry>>,
    /// The NATs' Elastic IPs (`nat.address_pattern`), associated or not: a stopped NAT instance
    /// shows no public IP, its Elastic IP is still ours to check. Absent when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<AddressEntry>>,
}

/// An Elastic IP of the NAT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressEntry {
    pub public_ip: String,
    #[serde(default)]
    pub allocation_id: Option<String>,
    /// The instance it is associated with (a NAT instance), when any.
    #[serde(default)]
    pub instance_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    /// The interface it is associated with (a NAT gateway's, or an instance's; extra field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_interface_id: Option<String>,
}

/// A private route table: the zones of the subnets associated with it, and its default route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTableEntry {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub availability_zones: Vec<String>,
    /// The `0.0.0.0/0` route; null when the table has none.
    #[serde(default)]
    pub default_route: Option<DefaultRoute>,
}

/// A default route: its target (`i-…` NAT instance, `nat-…` gateway, `eni-…` interface) and
/// EC2's state (`active`, or `blackhole` when the target is gone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRoute {
    pub target: String,
    pub state: String,
}

/// A NAT instance or gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatEntry {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// EC2's state name: `running`, `stopped`, ... for instances; `available`, `pending`,
    /// `deleting`, `deleted`, `failed` for gateways.
    pub state: String,
    #[serde(default)]
    pub public_ip: Option<String>,
    /// Instances only: gateways report a subnet, not an AZ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// Gateways only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_id: Option<String>,
    /// RFC 3339: an instance's launch time, a gateway's creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_time: Option<String>,
    /// Instances only: EC2's source/destination check; a NAT instance forwards nothing while it
    /// is on (true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dest_check: Option<bool>,
    /// Instances only: the ids of its network interfaces, so a default route that targets an
    /// interface (`eni-…`, as Cabalmail's does) finds its NAT (extra field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_interfaces: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTRACT_EXAMPLE: &str = r#"{"captured_at": "2026-11-28T20:15:00Z",
     "window": {"from": "2026-11-28T19:43:30Z", "to": "2026-11-28T20:15:00Z"},
     "tiers": {"smtp-out": {"tasks": ["arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b"],
                            "exec": [{"task": "0a1b", "probe": "mailq",
                                      "output": "Total requests: 42\r\n",
                                      "exit_status": 0, "error": null}],
                            "log_events": [{"timestamp": 1764360843000, "message": "<syslog line>",
                                            "log_stream": "smtp-out/smtp-out/0a1b"}],
                            "log_error": null, "newest_log_event_ms": 1764360843000},
               "smtp-in": {"newest_log_event_ms": null}, "imap": {"log_error": "timed out"}},
     "nat": {"instances": [{"id": "i-0abc", "name": "cabal-nat-0", "state": "running", "public_ip": "203.0.113.7"}],
             "gateways": [{"id": "nat-0abc", "name": "cabal-nat-0", "state": "available", "public_ip": "198.51.100.1"}],
             "error": null},
     "dnsbl": {"203.0.113.7": {"zen.spamhaus.org": ["127.0.0.2"], "bl.spamcop.net": []}}}"#;

    #[test]
    fn the_contract_example_reads_and_round_trips() {
        let snapshot: Snapshot = serde_json::from_str(CONTRACT_EXAMPLE).unwrap();
        let out = &snapshot.tiers["smtp-out"];
        assert_eq!(out.tasks.as_ref().unwrap().len(), 1);
        assert_eq!(out.exec.as_ref().unwrap()[0].exit_status, Some(0));
        assert_eq!(out.log_events.as_ref().unwrap()[0].timestamp, 1764360843000);
        assert!(snapshot.tiers["smtp-in"].log_events.is_none());
        assert_eq!(out.newest_log_event_ms, Some(1764360843000));
        // null (unknown) and absent (not read: an older snapshot) read alike.
        assert_eq!(snapshot.tiers["smtp-in"].newest_log_event_ms, None);
        assert_eq!(snapshot.tiers["imap"].newest_log_event_ms, None);
        let nat = snapshot.nat.as_ref().unwrap();
        assert_eq!(nat.instances[0].public_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(nat.gateways[0].state, "available");
        let window = snapshot.window.unwrap();
        assert_eq!(window.to_ms() - window.from_ms(), 1_890_000);

        let text = serde_json::to_string(&snapshot).unwrap();
        let again: Snapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(again, snapshot);
        assert!(!text.contains("log_truncated"));
        assert!(!text.contains("task_details"));
    }

    #[test]
    fn redaction_cuts_local_parts_in_every_free_text_and_keeps_the_rest() {
        let mut snapshot: Snapshot = serde_json::from_str(CONTRACT_EXAMPLE).unwrap();
        let out = snapshot.tiers.get_mut("smtp-out").unwrap();
        out.log_events.as_mut().unwrap()[0].message =
            "sm-mta[1]: Q1: to=<jane.doe@gmail.com>, ctladdr=<bob@example.org> (1/1), relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, reply=421 4.7.28 <jane.doe@gmail.com> rate limited, stat=Deferred".into();
        out.exec.as_mut().unwrap()[0].output =
            Some("Q1  1234 Mon Nov 28 20:00 <sender@example.org>\r\n   <jürgen@bücher.de>\r\nTotal requests: 1\r\n".into());
        out.exec.as_mut().unwrap()[0].error = Some("\"john doe\"@example.com refused".into());
        out.log_error = Some("carol@localhost".into());
        out.tasks_error = Some("dave%40example.com".into());
        out.newest_log_event_error = Some("erin&#64;example.com".into());
        snapshot.nat.as_mut().unwrap().error = Some("frank@[192.0.2.1]".into());
        let before = snapshot.clone();

        snapshot.redact_local_parts(b"test-key");
        let text = serde_json::to_string(&snapshot).unwrap();
        for whole in [
            "jane.doe@",
            "bob@",
            "sender@",
            "jürgen@",
            "john doe",
            "carol@",
            "dave%40",
            "erin&#64;",
            "frank@",
        ] {
            assert!(!text.contains(whole), "{whole} in {text}");
        }
        let out = &snapshot.tiers["smtp-out"];
        let message = &out.log_events.as_ref().unwrap()[0].message;
        assert!(message.contains("to=<j***@gmail.com>"), "{message}");
        assert!(message.contains("relay=gmail-smtp-in.l.google.com. [142.250.31.27]"));
        assert!(message.contains("dsn=4.7.28"));
        let output = out.exec.as_ref().unwrap()[0].output.as_deref().unwrap();
        assert!(output.contains("<j***@bücher.de>"), "{output}");
        assert!(output.ends_with("Total requests: 1\r\n"));
        // Nothing but the free text changed; a second pass changes nothing.
        assert_eq!(snapshot.captured_at, before.captured_at);
        assert_eq!(snapshot.dnsbl, before.dnsbl);
        assert_eq!(
            snapshot.nat.as_ref().unwrap().instances,
            before.nat.as_ref().unwrap().instances
        );
        let once = snapshot.clone();
        snapshot.redact_local_parts(b"test-key");
        assert_eq!(snapshot, once);
    }

    #[test]
    fn parse_errors_name_the_origin_and_line() {
        assert_eq!(parse(CONTRACT_EXAMPLE, "contract").unwrap().tiers.len(), 3);
        let error = parse("{\n\"captured_at\": 3}", "incident.json").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(
            error
                .to_string()
                .starts_with("incident.json:2: not a replay snapshot: "),
            "{error}"
        );
    }

    #[test]
    fn hostile_snapshots_are_errors_not_panics() {
        for text in [
            "",
            "{}",
            r#"{"captured_at": "yesterday"}"#,
            r#"{"captured_at": "2026-11-28T20:15:00Z", "tiers": {"imap": {"log_events": [{"timestamp": "x"}]}}}"#,
            r#"{"captured_at": "2026-11-28T20:15:00Z", "nat": {"instances": [{"state": 1}]}}"#,
        ] {
            assert!(serde_json::from_str::<Snapshot>(text).is_err(), "{text}");
        }
    }
}
