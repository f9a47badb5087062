//! The probes: what the runbooks ask of the outside world, behind traits so that a replay
//! implementation can stand in for AWS. Each probe gets a deadline, never fails as a whole
//! (its errors are part of its result, next to whatever it gathered before failing), and
//! reports one `Step` per unit of work for the report's step list.
//!
//! - `LogScanProbe`: delivery lines (`stat=Deferred`, `dsn=5`) per tier from CloudWatch Logs.
//! - `NatProbe`: the NAT instances / gateways in front of smtp-out, and their state.
//! - `TaskDiscoveryProbe`: each tier's running ECS tasks and whether ECS Exec can reach them.
//! - `ExecProbe`: a command from configuration (`mailq`, the virtusertable check) in every
//!   ready task of a tier, over ECS Exec.
//! - `DnsblCheck`: the NAT public IPs looked up in DNS blocklists (`dnsbl`).
//!
//! The traits speak probe types only (this module imports no I/O module): the AWS
//! implementations are `aws::probes`, the resolver's is `dns`; `replay` holds the
//! implementation of all five backed by a replay snapshot (`triage --replay`, `demo`), and
//! `snapshot` the snapshot itself and its parsing.

pub mod dnsbl;
pub mod exec;
pub mod imap_auth;
pub mod logs;
pub mod nat;
pub mod replay;
mod replay_imap_auth;
mod replay_service;
pub mod service;
pub mod snapshot;
pub mod tasks;
pub mod window;
pub mod zones;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::report::{Step, StepOutcome};
use crate::timing::Deadline;

pub use dnsbl::DnsblOutcome;
pub use exec::{ExecProbeResult, TaskTarget, TierTargets};
pub use imap_auth::ImapAuthProbe;
pub use logs::{LogScan, TierLogScan};
pub use nat::{nat_state, NatProbeResult};
pub use replay::ReplayProbes;
pub use service::ServiceProbe;
pub use snapshot::Snapshot;
pub use tasks::{ExecReadiness, TaskDiscovery, TierTasks};
pub use window::log_window;
pub use zones::{zone_egress, ZoneEgress};

/// Why a probe (or one tier of it) failed: the operator-readable sentence, and whether the
/// deadline was the cause (the report says "timed out" then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeError {
    pub message: String,
    #[serde(default)]
    pub timed_out: bool,
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A report step from a name, its duration and its error.
pub fn step(name: String, elapsed: Duration, error: Option<&ProbeError>) -> Step {
    Step {
        name,
        outcome: match error {
            None => StepOutcome::Ok,
            Some(e) if e.timed_out => StepOutcome::TimedOut,
            Some(_) => StepOutcome::Failed,
        },
        ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        error: error.map(|e| e.message.clone()),
    }
}

/// Delivery lines of every tier within a window.
#[async_trait]
pub trait LogScanProbe: Send + Sync {
    async fn scan(&self, window: snapshot::Window, deadline: Deadline) -> LogScan;
}

/// The NAT's instances and gateways.
#[async_trait]
pub trait NatProbe: Send + Sync {
    async fn describe(&self, deadline: Deadline) -> NatProbeResult;
}

/// Each tier's running tasks and their ECS Exec readiness. Tiers are discovered one by one so
/// that a runbook can start a tier's ECS Exec commands as soon as that tier's tasks are known.
#[async_trait]
pub trait TaskDiscoveryProbe: Send + Sync {
    /// The configured tiers, in report order.
    fn tiers(&self) -> Vec<String>;

    /// One tier's tasks (a tier that is not configured: no tasks, and an error saying so).
    async fn discover_tier(&self, tier: &str, deadline: Deadline) -> TierTasks;

    /// Every tier, concurrently, in report order.
    async fn discover(&self, deadline: Deadline) -> TaskDiscovery {
        let tiers = self.tiers();
        let found =
            futures::future::join_all(tiers.iter().map(|tier| self.discover_tier(tier, deadline)))
                .await;
        TaskDiscovery { tiers: found }
    }
}

/// A command from configuration in every given task of one tier, over ECS Exec. `probe` names the
/// records (`mailq`, `virtusertable`); `command` never comes from an alert.
#[async_trait]
pub trait ExecProbe: Send + Sync {
    async fn run(
        &self,
        probe: &str,
        command: &str,
        tier: &TierTargets,
        deadline: Deadline,
    ) -> Vec<ExecProbeResult>;
}

/// The DNSBL lookups of some IPs in the configured zones.
#[async_trait]
pub trait DnsblCheck: Send + Sync {
    async fn check(&self, ips: &[IpAddr], deadline: Deadline) -> DnsblOutcome;
}

/// Every probe a runbook uses, behind its trait: AWS (`aws::probes::probe_set`), a replay snapshot
/// (`ProbeSet::replay`), or test fakes.
#[derive(Clone)]
pub struct ProbeSet {
    pub tasks: Arc<dyn TaskDiscoveryProbe>,
    pub exec: Arc<dyn ExecProbe>,
    pub logs: Arc<dyn LogScanProbe>,
    pub nat: Arc<dyn NatProbe>,
    pub dnsbl: Arc<dyn DnsblCheck>,
    /// ContainerRestartLoop: ECS services, tasks, task definitions, instances, error lines.
    pub services: Arc<dyn ServiceProbe>,
    /// IMAPAuthFailureSpike: login lines, the sources' network interfaces, the parameter.
    pub imap_auth: Arc<dyn ImapAuthProbe>,
    /// The alert's history a replayed snapshot recorded (`report::history`); None live (the
    /// worker hands in the ledger's lookup with the request) and for older snapshots.
    pub recorded_history: Option<crate::report::history::AlertHistory>,
}

impl ProbeSet {
    /// Every probe answered from a replay snapshot.
    pub fn replay(snapshot: snapshot::Snapshot, config: &crate::config::Config) -> ProbeSet {
        let recorded_history = snapshot.history.clone();
        let replay = Arc::new(ReplayProbes::new(snapshot, &config.cabalmail));
        ProbeSet {
            tasks: replay.clone(),
            exec: replay.clone(),
            logs: replay.clone(),
            nat: replay.clone(),
            dnsbl: replay.clone(),
            services: replay.clone(),
            imap_auth: replay,
            recorded_history,
        }
    }
}
