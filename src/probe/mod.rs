//! The probes: what the runbooks ask of the outside world, behind traits so that a replay
//! implementation can stand in for AWS. Each probe gets a deadline, never fails as a whole
//! (its errors are part of its result, next to whatever it gathered before failing), and
//! reports one `Step` per unit of work for the report's step list.
//!
//! - `LogScanProbe`: delivery lines (`stat=Deferred`, `dsn=5`) per tier from CloudWatch Logs.
//! - `NatProbe`: the NAT instances / gateways in front of smtp-out, and their state.
//! - `TaskDiscoveryProbe`: each tier's running ECS tasks and whether ECS Exec can reach them.
//! - `dnsbl`: the NAT public IPs looked up in DNS blocklists.

pub mod dnsbl;
pub mod logs;
pub mod nat;
pub mod snapshot;
pub mod tasks;
pub mod window;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::aws::{AwsError, Deadline};
use crate::report::{Step, StepOutcome};

pub use logs::{AwsLogScan, LogScan, TierLogScan};
pub use nat::{nat_state, AwsNatProbe, NatProbeResult};
pub use snapshot::Snapshot;
pub use tasks::{AwsTaskDiscovery, ExecReadiness, TaskDiscovery, TierTasks};
pub use window::log_window;

/// Why a probe (or one tier of it) failed: the operator-readable sentence, and whether the
/// deadline was the cause (the report says "timed out" then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeError {
    pub message: String,
    #[serde(default)]
    pub timed_out: bool,
}

impl From<AwsError> for ProbeError {
    fn from(e: AwsError) -> Self {
        ProbeError {
            timed_out: e.is_timeout(),
            message: e.to_string(),
        }
    }
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

/// Each tier's running tasks and their ECS Exec readiness.
#[async_trait]
pub trait TaskDiscoveryProbe: Send + Sync {
    async fn discover(&self, deadline: Deadline) -> TaskDiscovery;
}
