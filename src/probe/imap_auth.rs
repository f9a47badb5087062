//! The IMAP login probe (`ImapAuthProbe`): what the IMAPAuthFailureSpike runbook asks of AWS.
//! The imap log group's `imap-login` and `[sync-users]` lines in the window (CloudWatch Logs);
//! the network interface holding each failing source address (EC2 DescribeNetworkInterfaces:
//! a Lambda's VPC ENI has `InterfaceType: lambda`); the master-password parameter's metadata
//! (SSM DescribeParameters: last modified time and version, never the value). The AWS
//! implementation is `aws::probes::imap_auth`; the replay one answers from the snapshot.

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;

use super::snapshot::{LogEvent, NetworkInterfaceSnapshot, ParameterSnapshot, Window};
use super::ProbeError;
use crate::timing::Deadline;

pub const LOGIN_LINES_STEP: &str = "login-lines imap";
pub const NETWORK_INTERFACES_STEP: &str = "network-interfaces";
pub const PARAMETER_STEP: &str = "master-password-parameter";

/// CloudWatch Logs pattern: the login process's lines and the user sync's markers.
pub const LOGIN_FILTER_PATTERN: &str = r#"?"imap-login" ?"[sync-users]""#;

#[async_trait]
pub trait ImapAuthProbe: Send + Sync {
    /// The login lines of `log_group` in the window, oldest first, at most `max_events`.
    async fn login_lines(
        &self,
        log_group: &str,
        window: Window,
        max_events: usize,
        deadline: Deadline,
    ) -> Result<Vec<LogEvent>, ProbeError>;

    /// The interface holding each address (addresses no interface holds are absent).
    async fn network_interfaces(
        &self,
        ips: &[IpAddr],
        deadline: Deadline,
    ) -> Result<BTreeMap<String, NetworkInterfaceSnapshot>, ProbeError>;

    /// The parameter's metadata; None when it does not exist.
    async fn parameter(
        &self,
        name: &str,
        deadline: Deadline,
    ) -> Result<Option<ParameterSnapshot>, ProbeError>;
}
