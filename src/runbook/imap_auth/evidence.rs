//! The IMAPAuthFailureSpike evidence, typed, from the replay snapshot alone: every failing or
//! succeeding source with its network interface, failures per account, successes, plaintext
//! refusals, internal failures (accounts the user database lacks), `[sync-users]` lines, and the
//! master-password parameter's change against the imap task's start.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::config::Config;
use crate::dovecot::{is_sync_users_line, parse_login, LoginOutcome};
use crate::probe::imap_auth::{LOGIN_LINES_STEP, NETWORK_INTERFACES_STEP, PARAMETER_STEP};
use crate::probe::snapshot::{NetworkInterfaceSnapshot, ParameterSnapshot, Snapshot};

/// One source address.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceFacts {
    pub failures: u64,
    pub successes: u64,
    pub plaintext: u64,
    pub internal: u64,
    /// Accounts it failed for.
    pub users: BTreeSet<String>,
    pub interface: Option<NetworkInterfaceSnapshot>,
}

impl SourceFacts {
    /// A Lambda's VPC ENI.
    pub fn is_lambda(&self) -> bool {
        self.interface
            .as_ref()
            .and_then(|i| i.interface_type.as_deref())
            == Some("lambda")
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImapAuthEvidence {
    pub sources: BTreeMap<IpAddr, SourceFacts>,
    /// auth failed over secured sessions.
    pub failures: u64,
    pub successes: u64,
    pub plaintext_refusals: u64,
    /// Internal login failures: the account is missing from the user database.
    pub internal_failures: u64,
    /// Accounts with a failure of any kind.
    pub failing_users: BTreeSet<String>,
    /// Accounts that logged in.
    pub succeeding_users: BTreeSet<String>,
    pub sync_users_lines: u64,
    pub logs_known: bool,
    pub interfaces_known: bool,
    pub parameter: Option<ParameterSnapshot>,
    pub parameter_known: bool,
    /// The newest imap task's start.
    pub task_started_at: Option<OffsetDateTime>,
    pub failed: Vec<(String, String)>,
}

impl ImapAuthEvidence {
    /// The parameter changed after the running task started: Dovecot's master userdb, built at
    /// start, holds the old password.
    pub fn parameter_changed_after_start(&self) -> Option<bool> {
        let modified = self.parameter.as_ref()?.last_modified?;
        Some(modified > self.task_started_at?)
    }

    /// Sources with a failure that are not Lambda ENIs (only when the interfaces are known).
    pub fn non_lambda_failing(&self) -> Vec<(&IpAddr, &SourceFacts)> {
        if !self.interfaces_known {
            return Vec::new();
        }
        self.sources
            .iter()
            .filter(|(_, s)| s.failures + s.plaintext + s.internal > 0 && !s.is_lambda())
            .collect()
    }
}

pub fn build(snapshot: &Snapshot, config: &Config) -> ImapAuthEvidence {
    let mut e = ImapAuthEvidence::default();
    for step in [LOGIN_LINES_STEP, NETWORK_INTERFACES_STEP, PARAMETER_STEP] {
        if let Some(error) = snapshot.probe_errors.get(step) {
            e.failed.push((step.to_string(), error.clone()));
        }
    }
    let imap = snapshot.tiers.get("imap");
    if let Some(error) = imap.and_then(|t| t.log_error.clone()) {
        if !e.failed.iter().any(|(s, _)| s == LOGIN_LINES_STEP) {
            e.failed.push((LOGIN_LINES_STEP.to_string(), error));
        }
    }
    e.logs_known = imap.is_some_and(|t| t.log_events.is_some() && t.log_error.is_none());
    for event in imap
        .and_then(|t| t.log_events.as_ref())
        .into_iter()
        .flatten()
    {
        if is_sync_users_line(&event.message) {
            e.sync_users_lines += 1;
            continue;
        }
        let Some(line) = parse_login(&event.message) else {
            continue;
        };
        let account = line.account().to_string();
        let source = line.rip.map(|ip| e.sources.entry(ip).or_default());
        match line.outcome {
            LoginOutcome::Success => {
                e.successes += 1;
                e.succeeding_users.insert(account);
                if let Some(s) = source {
                    s.successes += 1;
                }
            }
            LoginOutcome::AuthFailed => {
                e.failures += 1;
                e.failing_users.insert(account.clone());
                if let Some(s) = source {
                    s.failures += 1;
                    s.users.insert(account);
                }
            }
            LoginOutcome::PlaintextRefused => {
                e.plaintext_refusals += 1;
                if let Some(s) = source {
                    s.plaintext += 1;
                }
            }
            LoginOutcome::InternalFailure => {
                e.internal_failures += 1;
                e.failing_users.insert(account.clone());
                if let Some(s) = source {
                    s.internal += 1;
                    s.users.insert(account);
                }
            }
            LoginOutcome::NoAuth => {}
        }
    }
    let interfaces = snapshot.network_interfaces.as_ref();
    e.interfaces_known =
        interfaces.is_some() && !e.failed.iter().any(|(s, _)| s == NETWORK_INTERFACES_STEP);
    for (ip, source) in e.sources.iter_mut() {
        source.interface = interfaces.and_then(|i| i.get(&ip.to_string())).cloned();
    }
    let name = &config.imap_auth.master_password_parameter;
    e.parameter = snapshot
        .parameters
        .as_ref()
        .and_then(|p| p.get(name))
        .cloned();
    e.parameter_known =
        snapshot.parameters.is_some() && !e.failed.iter().any(|(s, _)| s == PARAMETER_STEP);
    e.task_started_at = imap
        .and_then(|t| t.task_details.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|t| t.started_at)
        .max();
    e
}
