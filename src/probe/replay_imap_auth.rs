//! The replay implementation of `ImapAuthProbe`: the imap tier's `log_events`, the snapshot's
//! `network_interfaces` and `parameters`, and the step errors it recorded (`probe_errors`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;

use super::imap_auth::{ImapAuthProbe, LOGIN_LINES_STEP, NETWORK_INTERFACES_STEP, PARAMETER_STEP};
use super::replay::{recorded_error, ReplayProbes};
use super::snapshot::{LogEvent, NetworkInterfaceSnapshot, ParameterSnapshot, Window};
use super::ProbeError;
use crate::timing::Deadline;

fn failure(replay: &ReplayProbes, step: &str) -> Result<(), ProbeError> {
    match replay.snapshot().probe_errors.get(step) {
        Some(message) => Err(recorded_error(message)),
        None => Ok(()),
    }
}

#[async_trait]
impl ImapAuthProbe for ReplayProbes {
    async fn login_lines(
        &self,
        _log_group: &str,
        _window: Window,
        max_events: usize,
        _deadline: Deadline,
    ) -> Result<Vec<LogEvent>, ProbeError> {
        failure(self, LOGIN_LINES_STEP)?;
        let tier = self.snapshot().tiers.get("imap");
        if let Some(error) = tier.and_then(|t| t.log_error.as_deref()) {
            return Err(recorded_error(error));
        }
        let mut events = tier.and_then(|t| t.log_events.clone()).unwrap_or_default();
        events.truncate(max_events);
        Ok(events)
    }

    async fn network_interfaces(
        &self,
        ips: &[IpAddr],
        _deadline: Deadline,
    ) -> Result<BTreeMap<String, NetworkInterfaceSnapshot>, ProbeError> {
        failure(self, NETWORK_INTERFACES_STEP)?;
        let recorded = self
            .snapshot()
            .network_interfaces
            .clone()
            .unwrap_or_default();
        Ok(ips
            .iter()
            .filter_map(|ip| {
                let key = ip.to_string();
                recorded.get(&key).map(|eni| (key, eni.clone()))
            })
            .collect())
    }

    async fn parameter(
        &self,
        name: &str,
        _deadline: Deadline,
    ) -> Result<Option<ParameterSnapshot>, ProbeError> {
        failure(self, PARAMETER_STEP)?;
        Ok(self
            .snapshot()
            .parameters
            .as_ref()
            .and_then(|p| p.get(name))
            .cloned())
    }
}
