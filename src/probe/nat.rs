//! The NAT probe: the EC2 instances and NAT gateways whose `Name` tag matches `nat.tag_pattern`
//! (default `cabal-nat-*`: the runbook's `Values=cabal-nat` matches neither `cabal-nat-0` nor a
//! gateway), and the NAT state the verdict uses. Finding nothing is `missing`, not an error.
//!
//! This file holds the result and the pure NAT state; the EC2 implementation is
//! `aws::probes::nat`.

use std::time::Duration;

use crate::report::{NatState, Step};

use super::snapshot::{NatSnapshot, Snapshot};
use super::{step, ProbeError};

/// What the NAT probe found, and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct NatProbeResult {
    pub nat: NatSnapshot,
    pub error: Option<ProbeError>,
    pub elapsed: Duration,
}

impl NatProbeResult {
    pub fn state(&self) -> NatState {
        nat_state(&self.nat)
    }

    pub fn step(&self) -> Step {
        step("nat".to_string(), self.elapsed, self.error.as_ref())
    }

    pub fn record(&self, snapshot: &mut Snapshot) {
        snapshot.nat = Some(self.nat.clone());
    }
}

/// Maps one instance state or gateway state to the report's NAT state.
fn entry_state(state: &str, gateway: bool) -> NatState {
    match (gateway, state) {
        (false, "running") | (true, "available") => NatState::Running,
        (_, "pending") => NatState::Pending,
        (false, "stopping") | (false, "shutting-down") | (true, "deleting") => NatState::Stopping,
        (false, "stopped") | (true, "failed") => NatState::Stopped,
        (false, "terminated") | (true, "deleted") => NatState::Terminated,
        _ => NatState::Unknown,
    }
}

/// The NAT state for the verdict (pure): `running` when any NAT instance runs or any gateway
/// is available (one per AZ; one working NAT keeps mail flowing through its AZ); else the
/// most hopeful state found (pending, stopping, stopped, terminated); `missing` when nothing
/// matches; `unknown` when nothing was found because the lookup failed.
pub fn nat_state(nat: &NatSnapshot) -> NatState {
    let states: Vec<NatState> = nat
        .instances
        .iter()
        .map(|i| entry_state(&i.state, false))
        .chain(nat.gateways.iter().map(|g| entry_state(&g.state, true)))
        .collect();
    if states.is_empty() {
        return if nat.error.is_some() {
            NatState::Unknown
        } else {
            NatState::Missing
        };
    }
    [
        NatState::Running,
        NatState::Pending,
        NatState::Stopping,
        NatState::Stopped,
        NatState::Terminated,
    ]
    .into_iter()
    .find(|wanted| states.contains(wanted))
    .unwrap_or(NatState::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::NatEntry;

    fn entry(state: &str) -> NatEntry {
        NatEntry {
            id: "i-1".into(),
            name: Some("cabal-nat-0".into()),
            state: state.into(),
            public_ip: None,
            availability_zone: None,
            subnet_id: None,
            launch_time: None,
            source_dest_check: None,
            network_interfaces: Vec::new(),
        }
    }

    #[test]
    fn nat_state_prefers_a_working_nat_and_says_missing_when_none() {
        let mut nat = NatSnapshot::default();
        assert_eq!(nat_state(&nat), NatState::Missing);
        nat.error = Some("ec2:DescribeInstances: access denied".into());
        assert_eq!(nat_state(&nat), NatState::Unknown);
        nat.instances = vec![entry("terminated"), entry("stopped")];
        assert_eq!(nat_state(&nat), NatState::Stopped);
        nat.instances.push(entry("running"));
        assert_eq!(nat_state(&nat), NatState::Running);
        let gateways_only = NatSnapshot {
            gateways: vec![entry("deleting"), entry("available")],
            ..NatSnapshot::default()
        };
        assert_eq!(nat_state(&gateways_only), NatState::Running);
        let failed = NatSnapshot {
            gateways: vec![entry("failed")],
            ..NatSnapshot::default()
        };
        assert_eq!(nat_state(&failed), NatState::Stopped);
        let odd = NatSnapshot {
            instances: vec![entry("exploded")],
            ..NatSnapshot::default()
        };
        assert_eq!(nat_state(&odd), NatState::Unknown);
    }
}
