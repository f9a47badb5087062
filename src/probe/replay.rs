//! The replay implementation of every probe trait, backed by a replay snapshot
//! (`docs/contracts.md`, "Replay snapshot"): what the probes saw during a real triage, or a hand-written incident.
//! The runbook runs unchanged on top of it, so a replay reaches the same verdict as the triage
//! that recorded the snapshot. No AWS, no network.
//!
//! A key missing from the snapshot means the probe was not run; each probe then returns nothing
//! (no tasks, no events, no exec output, no DNSBL answer). The NAT is the one exception worth
//! naming: "nothing found" would read as `missing` (and suggest replacing the NAT), so a snapshot
//! without `nat` replays as an unknown NAT state with the reason given.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::dnsbl::DnsblOutcome;
use super::exec::{ExecProbeResult, TierTargets};
use super::logs::{LogScan, TierLogScan};
use super::nat::NatProbeResult;
use super::snapshot::{ContainerInfo, NatSnapshot, Snapshot, TaskInfo, Window};
use super::tasks::task_id;
use super::tasks::TierTasks;
use super::{DnsblCheck, ExecProbe, LogScanProbe, NatProbe, ProbeError, TaskDiscoveryProbe};
use crate::config::CabalmailConfig;
use crate::timing::Deadline;

/// Why the NAT step of a replay has nothing.
pub const NAT_NOT_RECORDED: &str = "the replay snapshot has no nat record (the probe was not run)";

/// Every probe, answered from one snapshot.
#[derive(Debug, Clone)]
pub struct ReplayProbes {
    snapshot: Arc<Snapshot>,
    /// (tier, service, container, log group) in report order.
    tiers: Vec<(String, String, String, String)>,
}

impl ReplayProbes {
    pub fn new(snapshot: Snapshot, cabalmail: &CabalmailConfig) -> ReplayProbes {
        ReplayProbes {
            snapshot: Arc::new(snapshot),
            tiers: cabalmail
                .tiers_in_order()
                .map(|(name, tier)| {
                    (
                        name.to_string(),
                        tier.service.clone(),
                        tier.container.clone(),
                        tier.log_group.clone(),
                    )
                })
                .collect(),
        }
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

/// A snapshot's error text, with `timed_out` guessed from its words (snapshots keep the text).
pub(super) fn recorded_error(message: &str) -> ProbeError {
    let lower = message.to_ascii_lowercase();
    ProbeError {
        timed_out: lower.contains("timed out") || lower.contains("deadline"),
        message: message.to_string(),
    }
}

/// The tasks of a tier as recorded: full details when the snapshot has them, else the ARNs of
/// `tasks` (or the task ids of `exec` records) taken as ready for ECS Exec (a contract-only
/// snapshot does not say otherwise; the exec records carry any failure).
fn recorded_tasks(snapshot: &Snapshot, tier: &str, container: &str) -> Vec<TaskInfo> {
    let Some(recorded) = snapshot.tiers.get(tier) else {
        return Vec::new();
    };
    if let Some(details) = &recorded.task_details {
        return details.clone();
    }
    let arns: Vec<String> = match (&recorded.tasks, &recorded.exec) {
        (Some(tasks), _) => tasks.clone(),
        (None, Some(exec)) => {
            let mut ids: Vec<String> = exec.iter().map(|r| r.task.clone()).collect();
            ids.dedup();
            ids
        }
        (None, None) => Vec::new(),
    };
    arns.into_iter()
        .map(|arn| TaskInfo {
            id: task_id(&arn).to_string(),
            arn,
            last_status: Some("RUNNING".into()),
            exec_enabled: true,
            started_at: None,
            containers: vec![ContainerInfo {
                name: container.to_string(),
                last_status: Some("RUNNING".into()),
                exec_agent: Some("RUNNING".into()),
            }],
            availability_zone: None,
        })
        .collect()
}

#[async_trait]
impl TaskDiscoveryProbe for ReplayProbes {
    fn tiers(&self) -> Vec<String> {
        self.tiers.iter().map(|(tier, ..)| tier.clone()).collect()
    }

    async fn discover_tier(&self, tier: &str, _deadline: Deadline) -> TierTasks {
        let Some((tier, service, container, _)) = self.tiers.iter().find(|(t, ..)| t == tier)
        else {
            return TierTasks::not_configured(tier);
        };
        TierTasks {
            tier: tier.clone(),
            service: service.clone(),
            container: container.clone(),
            tasks: recorded_tasks(&self.snapshot, tier, container),
            error: self
                .snapshot
                .tiers
                .get(tier)
                .and_then(|t| t.tasks_error.as_deref())
                .map(recorded_error),
            elapsed: Duration::ZERO,
        }
    }
}

#[async_trait]
impl ExecProbe for ReplayProbes {
    async fn run(
        &self,
        probe: &str,
        command: &str,
        tier: &TierTargets,
        _deadline: Deadline,
    ) -> Vec<ExecProbeResult> {
        // A command with a section (mailq and a follow-up check in one session): the session's
        // output is rebuilt from the two records, as the live session printed it.
        let section = super::exec::section_of(command);
        let Some(records) = self
            .snapshot
            .tiers
            .get(&tier.tier)
            .and_then(|t| t.exec.as_ref())
        else {
            return Vec::new();
        };
        tier.tasks
            .iter()
            .filter_map(|target| {
                let id = task_id(&target.task);
                records
                    .iter()
                    .find(|r| r.probe == probe && task_id(&r.task) == id)
            })
            .map(|r| {
                let second = section.and_then(|section| {
                    records.iter().find(|s| {
                        s.probe == section
                            && task_id(&s.task) == task_id(&r.task)
                            && s.output.is_some()
                    })
                });
                (r, second)
            })
            .map(|(r, second)| ExecProbeResult {
                task: task_id(&r.task).to_string(),
                probe: r.probe.clone(),
                output: match (second, &r.output) {
                    (Some(second), Some(first)) => Some(super::exec::join_sections(
                        first,
                        r.exit_status,
                        &second.probe,
                        second.output.as_deref().unwrap_or_default(),
                    )),
                    _ => r.output.clone(),
                },
                exit_status: second.map_or(r.exit_status, |s| s.exit_status),
                timed_out: r
                    .error
                    .as_deref()
                    .is_some_and(|e| recorded_error(e).timed_out),
                error: r.error.clone(),
                truncated: false,
            })
            .collect()
    }
}

#[async_trait]
impl LogScanProbe for ReplayProbes {
    async fn scan(&self, window: Window, _deadline: Deadline) -> LogScan {
        let tiers = self
            .tiers
            .iter()
            .map(|(tier, _, _, log_group)| {
                let recorded = self.snapshot.tiers.get(tier);
                let events = recorded
                    .and_then(|t| t.log_events.clone())
                    .unwrap_or_default();
                TierLogScan {
                    tier: tier.clone(),
                    log_group: log_group.clone(),
                    bytes: events.iter().map(|e| e.message.len()).sum(),
                    events,
                    truncated: recorded.is_some_and(|t| t.log_truncated),
                    pages: 0,
                    error: recorded
                        .and_then(|t| t.log_error.as_deref())
                        .map(recorded_error),
                    elapsed: Duration::ZERO,
                    newest_event_ms: recorded.and_then(|t| t.newest_log_event_ms),
                    newest_error: recorded
                        .and_then(|t| t.newest_log_event_error.as_deref())
                        .map(recorded_error),
                }
            })
            .collect();
        LogScan {
            window: self.snapshot.window.unwrap_or(window),
            tiers,
        }
    }
}

#[async_trait]
impl NatProbe for ReplayProbes {
    async fn describe(&self, _deadline: Deadline) -> NatProbeResult {
        match &self.snapshot.nat {
            Some(nat) => NatProbeResult {
                nat: nat.clone(),
                error: nat.error.as_deref().map(recorded_error),
                elapsed: Duration::ZERO,
            },
            None => NatProbeResult {
                nat: NatSnapshot {
                    error: Some(NAT_NOT_RECORDED.into()),
                    ..NatSnapshot::default()
                },
                error: Some(recorded_error(NAT_NOT_RECORDED)),
                elapsed: Duration::ZERO,
            },
        }
    }
}

#[async_trait]
impl DnsblCheck for ReplayProbes {
    async fn check(&self, ips: &[IpAddr], _deadline: Deadline) -> DnsblOutcome {
        let mut outcome = DnsblOutcome::default();
        let Some(recorded) = &self.snapshot.dnsbl else {
            return outcome;
        };
        for ip in ips {
            if ip.is_ipv6() {
                outcome.skipped.insert(
                    ip.to_string(),
                    "IPv6 is not checked: the configured blocklists list IPv4 addresses".into(),
                );
                continue;
            }
            if let Some(zones) = recorded.get(&ip.to_string()) {
                outcome.answers.insert(ip.to_string(), zones.clone());
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::probe::exec::TaskTarget;

    const SNAPSHOT: &str = r#"{"captured_at": "2026-11-28T20:15:00Z",
     "window": {"from": "2026-11-28T19:43:30Z", "to": "2026-11-28T20:15:00Z"},
     "tiers": {"smtp-out": {"tasks": ["arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b"],
                            "exec": [{"task": "0a1b", "probe": "mailq", "output": "Total requests: 42\r\n",
                                      "exit_status": 0, "error": null}],
                            "log_events": [{"timestamp": 1764360843000, "message": "x stat=Deferred", "log_stream": "s"}],
                            "log_error": null},
               "imap": {"log_error": "FilterLogEvents timed out after 15 s"}},
     "dnsbl": {"203.0.113.7": {"zen.spamhaus.org": ["127.0.0.2"]}}}"#;

    fn probes() -> ReplayProbes {
        let snapshot: Snapshot = serde_json::from_str(SNAPSHOT).unwrap();
        ReplayProbes::new(snapshot, &Config::default().cabalmail)
    }

    #[tokio::test]
    async fn every_probe_answers_from_the_snapshot() {
        let probes = probes();
        let deadline = Deadline::after(Duration::from_secs(1));
        let discovery = probes.discover(deadline).await;
        assert_eq!(discovery.tier("smtp-out").unwrap().exec_ready().count(), 1);
        assert!(discovery.tier("imap").unwrap().tasks.is_empty());

        let targets = TierTargets {
            tier: "smtp-out".into(),
            cluster: "cabal-mail".into(),
            container: "smtp-out".into(),
            tasks: vec![TaskTarget {
                task: "arn:aws:ecs:us-east-1:123456789012:task/cabal-mail/0a1b".into(),
                exec_enabled: true,
            }],
        };
        let mailq = probes.run("mailq", "ignored", &targets, deadline).await;
        assert_eq!(mailq[0].output.as_deref(), Some("Total requests: 42\r\n"));
        assert!(probes
            .run("virtusertable", "ignored", &targets, deadline)
            .await
            .is_empty());

        let scan = probes
            .scan(probes.snapshot().window.unwrap(), deadline)
            .await;
        assert_eq!(scan.tier("smtp-out").unwrap().events.len(), 1);
        let imap = scan.tier("imap").unwrap();
        assert!(imap.events.is_empty() && imap.error.as_ref().unwrap().timed_out);
        assert!(scan.tier("smtp-in").unwrap().error.is_none());

        let nat = probes.describe(deadline).await;
        assert_eq!(nat.state(), crate::report::NatState::Unknown);

        let ips: Vec<IpAddr> = vec![
            "203.0.113.7".parse().unwrap(),
            "198.51.100.1".parse().unwrap(),
        ];
        let dnsbl = probes.check(&ips, deadline).await;
        assert_eq!(dnsbl.answers.len(), 1);
        assert_eq!(
            dnsbl.answers["203.0.113.7"]["zen.spamhaus.org"],
            vec!["127.0.0.2"]
        );
    }
}
