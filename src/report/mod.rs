//! The report: what a triage found and concluded. Its JSON field names are a contract
//! (`docs/contracts.md`, "Report"): the API, the replay tools and the notifiers read them. Pure data, no I/O.

pub mod fit;
pub mod history;
pub mod redact;
pub mod render;
pub mod sanitize;
pub mod verdict;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use verdict::{
    ImapAuthCause, ImapAuthVerdict, ReportVerdict, RestartLoopCause, RestartLoopVerdict,
    SeverityHint, VerdictChange, VerdictField,
};

/// The outcome of one triage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub episode: String,
    pub alertname: String,
    pub runbook: String,
    /// The runbook's verdict: the common fields and the runbook's own (`verdict.rs`).
    pub verdict: ReportVerdict,
    pub evidence: Evidence,
    pub steps: Vec<Step>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    /// What the probes saw (`docs/contracts.md`, "Replay snapshot"), so the triage can be replayed;
    /// `GET /api/v1/episodes/{id}` shows it as `evidence_snapshot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_snapshot: Option<serde_json::Value>,
    /// What was cut from the stored report to fit the ledger (`fit::fit_report_json`); absent
    /// when nothing was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trimmed: Option<String>,
}

/// The sendmail runbooks' conclusion (`SendmailDeferredSpike`, `SendmailBouncedSpike`): the
/// common fields plus the offending tier, the DSN class and the NAT's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub offending_tier: OffendingTier,
    /// The dominant DSN class on the offending tier ("4.7"), when there is one.
    pub dsn_class: Option<String>,
    pub nat_state: NatState,
    pub action: Action,
    pub confidence: Confidence,
    pub summary: String,
    /// The operator's next step as a command line with the evidence's own identifiers (printed,
    /// never executed); null when the action has none.
    #[serde(default)]
    pub next_command: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffendingTier {
    Imap,
    SmtpIn,
    SmtpOut,
    Multiple,
    None,
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatState {
    Running,
    /// The egress of a zone where a task of the offending tier (or, when nothing offends, of any
    /// mail tier) runs is broken, while another zone's works.
    Degraded,
    Pending,
    Stopping,
    Stopped,
    Terminated,
    Missing,
    Unknown,
}

/// The escalation branch of the runbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    GreylistingTransient,
    BlocklistCheck,
    NatReplace,
    ImapLocalDelivery,
    InboundRelay,
    /// SendmailDeferredSpike: smtp-out's 4.4 deferrals with the name lookup failing inside its
    /// tasks (the follow-up check): DNS, not the NAT.
    OutboundDns,
    RemoteCongestion,
    Deliverability,
    AddressMapStale,
    Investigate,
    /// IMAPAuthFailureSpike: the master password differs between SSM and Dovecot.
    MasterPasswordSync,
    /// IMAPAuthFailureSpike: an account has no OS user (the user sync did not run).
    UserSync,
    /// IMAPAuthFailureSpike: something inside the VPC that is not a Lambda is logging in.
    CompromiseInvestigation,
    /// IMAPAuthFailureSpike: a client regressed to plaintext LOGIN before STARTTLS.
    ConsumerFix,
    /// ContainerRestartLoop: the new image crashes; roll back to the previous tag.
    Rollback,
    /// ContainerRestartLoop: no container instance has room for the task.
    ScaleCluster,
    /// ContainerRestartLoop: the container cannot chown its EFS access point.
    FixEfsOwnership,
    /// ContainerRestartLoop: several services loop at once (instance role, EFS, network).
    InvestigateCluster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// What the probes saw, summarised per tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    #[serde(default)]
    pub tiers: BTreeMap<String, TierEvidence>,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub nat: serde_json::Value,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub dnsbl: serde_json::Value,
    /// Per tier, what backs the numbers: top DSN codes, domains, relays, replies, queue
    /// answers, the virtusertable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tier_details: BTreeMap<String, serde_json::Value>,
    /// The runbook's own evidence (runbooks other than the sendmail ones: the service and its
    /// tasks; the login sources), as JSON.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
    /// A few lines that back the verdict, for the renderings (untrusted text: escaped there).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub highlights: Vec<String>,
    /// The alert's earlier episodes as the ledger counted them (`history`); absent when not
    /// asked (a one-shot triage without a recorded history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<history::AlertHistory>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TierEvidence {
    pub queue_requests: Option<u64>,
    pub deferred_lines: Option<u64>,
    pub bounced_lines: Option<u64>,
    #[serde(default)]
    pub dsn_classes: BTreeMap<String, u64>,
    #[serde(default)]
    pub top_providers: Vec<serde_json::Value>,
    #[serde(default)]
    pub samples: Vec<String>,
}

/// One diagnostic step and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub outcome: StepOutcome,
    pub ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Ok,
    Failed,
    TimedOut,
    Skipped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_follow_the_contract() {
        let report = Report {
            episode: "ep-1".into(),
            alertname: "SendmailDeferredSpike".into(),
            runbook: "sendmail-deferred-spike".into(),
            verdict: Verdict {
                offending_tier: OffendingTier::SmtpOut,
                dsn_class: Some("4.7".into()),
                nat_state: NatState::Running,
                action: Action::BlocklistCheck,
                confidence: Confidence::High,
                summary: "s".into(),
                next_command: Some("aws ec2 start-instances --instance-ids i-0f9e8d7c".into()),
            }
            .into(),
            evidence: Evidence::default(),
            steps: vec![Step {
                name: "mailq smtp-out".into(),
                outcome: StepOutcome::TimedOut,
                ms: 812,
                error: None,
            }],
            started_at: OffsetDateTime::UNIX_EPOCH,
            finished_at: OffsetDateTime::UNIX_EPOCH,
            evidence_snapshot: None,
            trimmed: None,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["verdict"]["offending_tier"], "smtp-out");
        assert_eq!(json["verdict"]["action"], "blocklist-check");
        assert_eq!(json["verdict"]["nat_state"], "running");
        assert_eq!(json["verdict"]["confidence"], "high");
        assert_eq!(
            json["verdict"]["next_command"],
            "aws ec2 start-instances --instance-ids i-0f9e8d7c"
        );
        assert_eq!(json["steps"][0]["outcome"], "timed_out");
        assert_eq!(json["started_at"], "1970-01-01T00:00:00Z");
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
