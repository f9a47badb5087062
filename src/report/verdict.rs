//! A verdict per runbook. Every verdict has `action`, `confidence`, `summary` and `next_command`;
//! each runbook adds its own fields (the sendmail runbooks the offending tier, DSN class and NAT
//! state; `imap-auth-failure-spike` the cause and a severity hint; `container-restart-loop` the
//! service, the cause, exit codes and images). The report's `verdict` is one of them, told apart
//! on the wire by the fields it carries (`docs/contracts.md`, "Report"), and the renderings show
//! each one's own fields through `fields`.

use serde::{Deserialize, Serialize};

use super::{Action, Confidence, OffendingTier, Verdict};

/// Why the imap tier refuses logins (`imap-auth-failure-spike`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImapAuthCause {
    /// The API Lambdas' master logins fail for every user: the master password differs.
    MasterCredential,
    /// Logins fail for one account (or a few) that has no OS user.
    AccountMissing,
    /// A source inside the VPC that is not a Lambda ENI is logging in.
    InVpcSource,
    /// A client speaks LOGIN before STARTTLS and is refused.
    PlaintextClient,
    Unknown,
}

/// How bad an episode is, whatever the alert's own severity label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeverityHint {
    Critical,
    Warning,
}

/// Why a service stays below its desired count (`container-restart-loop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartLoopCause {
    /// The tasks crash since the service moved to a new image.
    ImageRegression,
    /// The tasks crash, and the image did not change.
    CrashLoop,
    /// ECS cannot place the tasks: no instance has the CPU or memory.
    Capacity,
    /// The container cannot chown its EFS access point.
    EfsPermission,
    /// Several configured services are below their desired count at once.
    ClusterWide,
    Unknown,
}

/// `IMAPAuthFailureSpike`'s verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImapAuthVerdict {
    /// Always `imap`: the only tier that logs Dovecot logins.
    pub offending_tier: OffendingTier,
    pub cause: ImapAuthCause,
    pub action: Action,
    /// `critical` when every user fails or a non-Lambda source is involved.
    pub severity_hint: SeverityHint,
    pub confidence: Confidence,
    pub summary: String,
    #[serde(default)]
    pub next_command: Option<String>,
}

/// `ContainerRestartLoop`'s verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestartLoopVerdict {
    /// The configured service the alert names (never an unconfigured label's text).
    pub service: String,
    pub cause: RestartLoopCause,
    pub action: Action,
    pub confidence: Confidence,
    pub summary: String,
    /// `rollback`: the configured deploy command with the previous image's tag.
    #[serde(default)]
    pub next_command: Option<String>,
    /// The last stopped tasks' non-zero exit codes, newest first, without repeats.
    #[serde(default)]
    pub exit_codes: Vec<i64>,
    /// The newest stopped task's reason (ECS's text).
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// The image of the service's current task definition, and of the revision before it.
    #[serde(default)]
    pub image_now: Option<String>,
    #[serde(default)]
    pub image_before: Option<String>,
}

/// The report's verdict: one runbook's. Untagged on the wire: the variants are tried in this
/// order, and each needs fields the later ones lack (`severity_hint`, then `service`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ReportVerdict {
    ImapAuth(ImapAuthVerdict),
    RestartLoop(RestartLoopVerdict),
    Sendmail(Verdict),
}

impl From<Verdict> for ReportVerdict {
    fn from(v: Verdict) -> Self {
        ReportVerdict::Sendmail(v)
    }
}

impl From<ImapAuthVerdict> for ReportVerdict {
    fn from(v: ImapAuthVerdict) -> Self {
        ReportVerdict::ImapAuth(v)
    }
}

impl From<RestartLoopVerdict> for ReportVerdict {
    fn from(v: RestartLoopVerdict) -> Self {
        ReportVerdict::RestartLoop(v)
    }
}

/// One of a verdict's own fields, for the renderings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictField {
    /// The Slack field's title (`Offending tier`).
    pub title: &'static str,
    /// The short name in one-line renderings (`tier`, `NAT`).
    pub short: &'static str,
    /// The value as the contract spells it; untrusted when it came from outside (a DSN class
    /// read from logs): renderings escape every value.
    pub value: String,
}

fn wire<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => "unknown".to_string(),
    }
}

fn field(title: &'static str, short: &'static str, value: String) -> VerdictField {
    VerdictField {
        title,
        short,
        value,
    }
}

impl ReportVerdict {
    pub fn action(&self) -> Action {
        match self {
            ReportVerdict::Sendmail(v) => v.action,
            ReportVerdict::ImapAuth(v) => v.action,
            ReportVerdict::RestartLoop(v) => v.action,
        }
    }

    pub fn confidence(&self) -> Confidence {
        match self {
            ReportVerdict::Sendmail(v) => v.confidence,
            ReportVerdict::ImapAuth(v) => v.confidence,
            ReportVerdict::RestartLoop(v) => v.confidence,
        }
    }

    pub fn summary(&self) -> &str {
        match self {
            ReportVerdict::Sendmail(v) => &v.summary,
            ReportVerdict::ImapAuth(v) => &v.summary,
            ReportVerdict::RestartLoop(v) => &v.summary,
        }
    }

    pub fn next_command(&self) -> Option<&str> {
        match self {
            ReportVerdict::Sendmail(v) => v.next_command.as_deref(),
            ReportVerdict::ImapAuth(v) => v.next_command.as_deref(),
            ReportVerdict::RestartLoop(v) => v.next_command.as_deref(),
        }
    }

    pub fn summary_mut(&mut self) -> &mut String {
        match self {
            ReportVerdict::Sendmail(v) => &mut v.summary,
            ReportVerdict::ImapAuth(v) => &mut v.summary,
            ReportVerdict::RestartLoop(v) => &mut v.summary,
        }
    }

    pub fn next_command_mut(&mut self) -> &mut Option<String> {
        match self {
            ReportVerdict::Sendmail(v) => &mut v.next_command,
            ReportVerdict::ImapAuth(v) => &mut v.next_command,
            ReportVerdict::RestartLoop(v) => &mut v.next_command,
        }
    }

    /// The sendmail verdict, when it is one.
    pub fn sendmail(&self) -> Option<&Verdict> {
        match self {
            ReportVerdict::Sendmail(v) => Some(v),
            _ => None,
        }
    }

    /// The runbook's own fields, in display order.
    pub fn fields(&self) -> Vec<VerdictField> {
        match self {
            ReportVerdict::Sendmail(v) => vec![
                field("Offending tier", "tier", wire(&v.offending_tier)),
                field(
                    "DSN class",
                    "DSN class",
                    v.dsn_class.clone().unwrap_or_else(|| "none".into()),
                ),
                field("NAT", "NAT", wire(&v.nat_state)),
            ],
            ReportVerdict::ImapAuth(v) => vec![
                field("Offending tier", "tier", wire(&v.offending_tier)),
                field("Cause", "cause", wire(&v.cause)),
                field("Severity hint", "severity", wire(&v.severity_hint)),
            ],
            ReportVerdict::RestartLoop(v) => {
                let mut fields = vec![
                    field("Service", "service", v.service.clone()),
                    field("Cause", "cause", wire(&v.cause)),
                ];
                if !v.exit_codes.is_empty() {
                    let codes: Vec<String> = v.exit_codes.iter().map(i64::to_string).collect();
                    fields.push(field("Exit codes", "exit codes", codes.join(" ")));
                }
                if let Some(reason) = &v.stopped_reason {
                    fields.push(field("Stopped reason", "stopped", reason.clone()));
                }
                if let Some(image) = &v.image_now {
                    fields.push(field("Image now", "image now", image.clone()));
                }
                if let Some(image) = &v.image_before {
                    fields.push(field("Image before", "image before", image.clone()));
                }
                fields
            }
        }
    }

    /// The two fields a one-line rendering (Slack's notification text) shows.
    pub fn headline_fields(&self) -> Vec<VerdictField> {
        let mut fields = self.fields();
        match self {
            // tier and NAT, as the sendmail runbooks always said.
            ReportVerdict::Sendmail(_) => {
                fields.remove(1);
            }
            ReportVerdict::ImapAuth(_) => {
                fields.remove(0);
            }
            ReportVerdict::RestartLoop(_) => {}
        }
        fields.truncate(2);
        fields
    }
}

/// One way a fresh verdict differs from the one it replaces (`changes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictChange {
    /// The field's title (`Action`, `Confidence`, `Offending tier`, ...).
    pub title: &'static str,
    /// The values as the contract spells them; `none` when the verdict had no such field.
    /// Untrusted when they came from outside: renderings escape them.
    pub before: String,
    pub after: String,
}

impl ReportVerdict {
    /// What differs between `before` (the verdict a re-triage replaces) and this one: the
    /// action, the confidence and the runbook's own fields (`fields`), in display order. The
    /// summary and the next command are left out: they carry counts and identifiers that differ
    /// at every triage, so comparing them would call every fresh verdict "changed". Empty:
    /// unchanged.
    pub fn changes(&self, before: &ReportVerdict) -> Vec<VerdictChange> {
        let headline = |v: &ReportVerdict| {
            vec![
                field("Action", "action", wire(&v.action())),
                field("Confidence", "confidence", wire(&v.confidence())),
            ]
        };
        let old: Vec<VerdictField> = headline(before)
            .into_iter()
            .chain(before.fields())
            .collect();
        let new: Vec<VerdictField> = headline(self).into_iter().chain(self.fields()).collect();
        let value_in = |fields: &[VerdictField], title: &str| {
            fields
                .iter()
                .find(|f| f.title == title)
                .map_or_else(|| "none".to_string(), |f| f.value.clone())
        };
        let mut titles: Vec<&'static str> = new.iter().map(|f| f.title).collect();
        for f in &old {
            if !titles.contains(&f.title) {
                titles.push(f.title);
            }
        }
        titles
            .into_iter()
            .filter_map(|title| {
                let (before, after) = (value_in(&old, title), value_in(&new, title));
                (before != after).then_some(VerdictChange {
                    title,
                    before,
                    after,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NatState;

    fn sendmail() -> Verdict {
        Verdict {
            offending_tier: OffendingTier::SmtpOut,
            dsn_class: Some("4.7".into()),
            nat_state: NatState::Running,
            action: Action::BlocklistCheck,
            confidence: Confidence::High,
            summary: "s".into(),
            next_command: None,
        }
    }

    fn imap() -> ImapAuthVerdict {
        ImapAuthVerdict {
            offending_tier: OffendingTier::Imap,
            cause: ImapAuthCause::MasterCredential,
            action: Action::MasterPasswordSync,
            severity_hint: SeverityHint::Critical,
            confidence: Confidence::High,
            summary: "every user fails".into(),
            next_command: None,
        }
    }

    fn restart() -> RestartLoopVerdict {
        RestartLoopVerdict {
            service: "cabal-imap".into(),
            cause: RestartLoopCause::ImageRegression,
            action: Action::Rollback,
            confidence: Confidence::Medium,
            summary: "crashes since the push".into(),
            next_command: Some("deploy imap sha-1".into()),
            exit_codes: vec![1, 137],
            stopped_reason: Some("Essential container in task exited".into()),
            image_now: Some("repo/cabal-imap:sha-2".into()),
            image_before: Some("repo/cabal-imap:sha-1".into()),
        }
    }

    #[test]
    fn each_runbook_writes_its_own_fields_and_reads_back_as_itself() {
        for verdict in [
            ReportVerdict::from(sendmail()),
            ReportVerdict::from(imap()),
            ReportVerdict::from(restart()),
        ] {
            let json = serde_json::to_value(&verdict).unwrap();
            for common in ["action", "confidence", "summary", "next_command"] {
                assert!(json.get(common).is_some(), "{common} missing in {json}");
            }
            let back: ReportVerdict = serde_json::from_value(json).unwrap();
            assert_eq!(back, verdict);
        }
        let json = serde_json::to_value(ReportVerdict::from(imap())).unwrap();
        assert_eq!(json["cause"], "master-credential");
        assert_eq!(json["severity_hint"], "critical");
        assert_eq!(json["offending_tier"], "imap");
        assert!(json.get("nat_state").is_none());
        let json = serde_json::to_value(ReportVerdict::from(restart())).unwrap();
        assert_eq!(json["service"], "cabal-imap");
        assert_eq!(json["cause"], "image-regression");
        assert_eq!(json["action"], "rollback");
        assert!(json.get("offending_tier").is_none());
        let json = serde_json::to_value(ReportVerdict::from(sendmail())).unwrap();
        assert_eq!(json["nat_state"], "running");
        assert!(json.get("cause").is_none());
    }

    #[test]
    fn a_verdict_of_no_known_shape_is_an_error() {
        for text in [
            r#"{"action": "rollback", "confidence": "high", "summary": ""}"#,
            r#"{"service": "x", "cause": "no-such-cause", "action": "rollback", "confidence": "high", "summary": ""}"#,
            r#"{"offending_tier": "imap", "cause": "unknown", "action": "investigate", "severity_hint": "panic", "confidence": "low", "summary": ""}"#,
        ] {
            assert!(
                serde_json::from_str::<ReportVerdict>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn fields_per_runbook() {
        let shorts = |v: ReportVerdict| -> Vec<&'static str> {
            v.fields().into_iter().map(|f| f.short).collect()
        };
        assert_eq!(shorts(sendmail().into()), ["tier", "DSN class", "NAT"]);
        assert_eq!(shorts(imap().into()), ["tier", "cause", "severity"]);
        assert_eq!(
            shorts(restart().into()),
            [
                "service",
                "cause",
                "exit codes",
                "stopped",
                "image now",
                "image before"
            ]
        );
        let headline: Vec<String> = ReportVerdict::from(sendmail())
            .headline_fields()
            .into_iter()
            .map(|f| format!("{} {}", f.short, f.value))
            .collect();
        assert_eq!(headline, ["tier smtp-out", "NAT running"]);
    }

    #[test]
    fn changes_name_the_fields_that_differ_and_nothing_else() {
        let before = ReportVerdict::from(sendmail());
        let mut same = sendmail();
        same.summary = "other counts".into();
        same.next_command = Some("aws ec2 describe-nat-gateways".into());
        assert!(
            ReportVerdict::from(same).changes(&before).is_empty(),
            "summary and next command do not make a verdict changed"
        );
        let mut after = sendmail();
        after.action = Action::NatReplace;
        after.nat_state = NatState::Missing;
        after.dsn_class = None;
        let changes = ReportVerdict::from(after).changes(&before);
        let titles: Vec<&str> = changes.iter().map(|c| c.title).collect();
        assert_eq!(titles, ["Action", "DSN class", "NAT"]);
        assert_eq!(changes[0].before, "blocklist-check");
        assert_eq!(changes[0].after, "nat-replace");
        assert_eq!(changes[1].after, "none");
        // Another runbook's verdict: the fields only one of them has are changes too.
        let changes = ReportVerdict::from(imap()).changes(&before);
        assert!(changes
            .iter()
            .any(|c| c.title == "Cause" && c.before == "none"));
        assert!(changes
            .iter()
            .any(|c| c.title == "NAT" && c.after == "none"));
        let mut restarted = restart();
        restarted.exit_codes = vec![139];
        let changes = ReportVerdict::from(restarted).changes(&ReportVerdict::from(restart()));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].before, "1 137");
    }
}
