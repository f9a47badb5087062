//! The IMAPAuthFailureSpike verdict, pure, on typed evidence (`docs/runbooks.md` states each
//! rule in words). In order:
//!
//! 1. The login lines are unknown -> `unknown`, `investigate`.
//! 2. A failing source that is not a Lambda ENI -> `in-vpc-source`, `compromise-investigation`,
//!    severity critical (successes from such a source are said: a credential works for it).
//! 3. Plaintext refusals are most of the failures -> `plaintext-client`, `consumer-fix`.
//! 4. Failures for accounts the user database lacks (internal login failures), or for one or two
//!    accounts while others log in -> `account-missing`, `user-sync`.
//! 5. Failures and no success at all (every login through the Lambdas fails; a wrong master
//!    password logs the master user's own name), or the parameter changed after the task
//!    started -> `master-credential`, `master-password-sync`.
//! 6. Otherwise `unknown`, `investigate`.
//!
//! Severity is critical when nothing logs in (every client is locked out) or a non-Lambda
//! source is involved, warning otherwise.

use super::evidence::ImapAuthEvidence;
use crate::config::ImapAuthConfig;
use crate::report::{
    Action, Confidence, ImapAuthCause, ImapAuthVerdict, OffendingTier, SeverityHint,
};

fn time_text(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_else(|| "unknown".into())
}

pub fn verdict(e: &ImapAuthEvidence, t: &ImapAuthConfig) -> ImapAuthVerdict {
    let failures_all = e.failures + e.plaintext_refusals + e.internal_failures;
    let strangers = e.non_lambda_failing();
    let nobody_logs_in = failures_all > 0 && e.successes == 0;
    let changed = e.parameter_changed_after_start();
    let (cause, action, mut summary) = if !e.logs_known {
        (
            ImapAuthCause::Unknown,
            Action::Investigate,
            "The imap tier's login lines could not be read.".to_string(),
        )
    } else if !strangers.is_empty() {
        let (ip, source) = strangers
            .iter()
            .max_by_key(|(_, s)| s.failures + s.plaintext + s.internal)
            .copied()
            .unwrap_or_else(|| strangers[0]);
        let what = source
            .interface
            .as_ref()
            .map(|i| {
                format!(
                    "{} ({}, {})",
                    i.id,
                    i.interface_type.as_deref().unwrap_or("?"),
                    i.description.as_deref().unwrap_or("no description")
                )
            })
            .unwrap_or_else(|| "no network interface of this account".into());
        let guessing = if source.users.len() >= t.guessing_min_users {
            format!(", guessing {} user names", source.users.len())
        } else {
            String::new()
        };
        let logged_in = if source.successes > 0 {
            format!(
                " It also logged in {} time(s): a credential works for it.",
                source.successes
            )
        } else {
            String::new()
        };
        (
            ImapAuthCause::InVpcSource,
            Action::CompromiseInvestigation,
            format!(
                "{ip}, which is not a Lambda ENI ({what}), failed {} login(s){guessing}.{logged_in} Something inside the VPC is logging in: investigate it as a compromise; narrowing the imap security group's 143 ingress to the Lambda subnets cuts it off.",
                source.failures + source.plaintext + source.internal
            ),
        )
    } else if e.plaintext_refusals * 2 > failures_all {
        (
            ImapAuthCause::PlaintextClient,
            Action::ConsumerFix,
            format!(
                "{} of {failures_all} failures are LOGIN before STARTTLS, refused by disable_plaintext_auth: a client regressed off STARTTLS. Fix the client; do not relax ssl or login_trusted_networks.",
                e.plaintext_refusals
            ),
        )
    } else if e.internal_failures > 0
        || (e.successes > 0 && !e.failing_users.is_empty() && e.failing_users.len() <= 2)
    {
        (
            ImapAuthCause::AccountMissing,
            Action::UserSync,
            format!(
                "Logins fail for {} account(s) while {} login(s) succeed ({} with no OS account): the user sync did not create them. {} [sync-users] line(s) in the window.",
                e.failing_users.len(),
                e.successes,
                e.internal_failures,
                e.sync_users_lines
            ),
        )
    } else if nobody_logs_in || changed == Some(true) {
        let when = match changed {
            Some(true) => format!(
                " The master-password parameter changed at {}, after the imap task started at {}: Dovecot still has the old one.",
                time_text(e.parameter.as_ref().and_then(|p| p.last_modified)),
                time_text(e.task_started_at)
            ),
            Some(false) => " The parameter has not changed since the task started: check what Dovecot's master userdb was built with.".to_string(),
            None => String::new(),
        };
        (
            ImapAuthCause::MasterCredential,
            Action::MasterPasswordSync,
            format!(
                "{failures_all} failure(s) for {} name(s) and no login succeeds: the API Lambdas' master login fails, every client is locked out.{when}",
                e.failing_users.len()
            ),
        )
    } else {
        (
            ImapAuthCause::Unknown,
            Action::Investigate,
            format!(
                "{failures_all} failure(s) for {} account(s), {} success(es): no pattern stands out.",
                e.failing_users.len(),
                e.successes
            ),
        )
    };
    let missing = e.failed.len();
    if missing > 0 {
        summary.push_str(&format!(" {missing} piece(s) of evidence missing."));
    }
    let severity_hint = if cause == ImapAuthCause::InVpcSource || nobody_logs_in {
        SeverityHint::Critical
    } else {
        SeverityHint::Warning
    };
    let confidence = match cause {
        ImapAuthCause::Unknown => Confidence::Low,
        _ if missing == 0 => Confidence::High,
        _ if missing >= 2 => Confidence::Low,
        _ => Confidence::Medium,
    };
    ImapAuthVerdict {
        offending_tier: OffendingTier::Imap,
        cause,
        action,
        severity_hint,
        confidence,
        summary,
        next_command: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::{NetworkInterfaceSnapshot, ParameterSnapshot};
    use crate::runbook::imap_auth::evidence::SourceFacts;
    use std::collections::BTreeSet;

    fn eni(kind: &str) -> Option<NetworkInterfaceSnapshot> {
        Some(NetworkInterfaceSnapshot {
            id: "eni-0a1b".into(),
            interface_type: Some(kind.into()),
            description: Some("AWS Lambda VPC ENI-cabal-list_messages".into()),
            requester_id: None,
            groups: vec![],
        })
    }

    fn source(failures: u64, successes: u64, users: &[&str], kind: &str) -> SourceFacts {
        SourceFacts {
            failures,
            successes,
            users: users.iter().map(|u| u.to_string()).collect(),
            interface: eni(kind),
            ..SourceFacts::default()
        }
    }

    fn base() -> ImapAuthEvidence {
        ImapAuthEvidence {
            logs_known: true,
            interfaces_known: true,
            parameter_known: true,
            ..ImapAuthEvidence::default()
        }
    }

    fn users(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|u| u.to_string()).collect()
    }

    fn t() -> ImapAuthConfig {
        ImapAuthConfig::default()
    }

    #[test]
    fn a_non_lambda_source_is_a_compromise_and_critical() {
        let mut e = base();
        e.sources.insert(
            "10.64.3.7".parse().unwrap(),
            source(3, 5, &["alice"], "lambda"),
        );
        e.sources.insert(
            "10.64.9.9".parse().unwrap(),
            source(
                40,
                1,
                &["admin", "root", "test", "info", "sales"],
                "interface",
            ),
        );
        e.failures = 43;
        e.successes = 6;
        let v = verdict(&e, &t());
        assert_eq!(
            (v.cause, v.action, v.severity_hint),
            (
                ImapAuthCause::InVpcSource,
                Action::CompromiseInvestigation,
                SeverityHint::Critical
            )
        );
        assert!(
            v.summary.contains("10.64.9.9") && v.summary.contains("guessing 5"),
            "{}",
            v.summary
        );
        assert!(v.summary.contains("logged in 1 time"), "{}", v.summary);
        // Unknown interfaces decide nothing about strangers.
        e.interfaces_known = false;
        assert_ne!(verdict(&e, &t()).cause, ImapAuthCause::InVpcSource);
    }

    #[test]
    fn every_login_failing_from_lambdas_is_the_master_credential() {
        let mut e = base();
        e.sources.insert(
            "10.64.3.7".parse().unwrap(),
            source(30, 0, &["admin"], "lambda"),
        );
        e.failures = 30;
        e.failing_users = users(&["admin"]);
        e.task_started_at = Some(time::macros::datetime!(2026-12-01 01:00 UTC));
        e.parameter = Some(ParameterSnapshot {
            last_modified: Some(time::macros::datetime!(2026-12-01 02:00 UTC)),
            version: Some(4),
        });
        let v = verdict(&e, &t());
        assert_eq!(
            (v.cause, v.action, v.severity_hint, v.confidence),
            (
                ImapAuthCause::MasterCredential,
                Action::MasterPasswordSync,
                SeverityHint::Critical,
                Confidence::High
            )
        );
        assert!(
            v.summary.contains("after the imap task started"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn one_account_failing_while_others_log_in_is_the_user_sync() {
        let mut e = base();
        e.sources
            .insert("10.64.3.7".parse().unwrap(), source(0, 20, &[], "lambda"));
        e.sources
            .get_mut(&"10.64.3.7".parse().unwrap())
            .unwrap()
            .internal = 26;
        e.internal_failures = 26;
        e.successes = 20;
        e.failing_users = users(&["carol"]);
        let v = verdict(&e, &t());
        assert_eq!(
            (v.cause, v.action, v.severity_hint),
            (
                ImapAuthCause::AccountMissing,
                Action::UserSync,
                SeverityHint::Warning
            )
        );
    }

    #[test]
    fn plaintext_refusals_are_a_consumer_fix() {
        let mut e = base();
        let mut s = source(0, 0, &[], "lambda");
        s.plaintext = 30;
        e.sources.insert("10.64.3.7".parse().unwrap(), s);
        e.plaintext_refusals = 30;
        let v = verdict(&e, &t());
        assert_eq!(
            (v.cause, v.action, v.severity_hint),
            (
                ImapAuthCause::PlaintextClient,
                Action::ConsumerFix,
                SeverityHint::Critical
            )
        );
    }

    #[test]
    fn unknown_logs_or_no_pattern_is_low_confidence() {
        let mut e = base();
        e.logs_known = false;
        e.failed = vec![("login-lines imap".into(), "AccessDenied".into())];
        let v = verdict(&e, &t());
        assert_eq!(
            (v.cause, v.confidence),
            (ImapAuthCause::Unknown, Confidence::Low)
        );
        let mut e = base();
        e.failures = 30;
        e.successes = 30;
        e.failing_users = users(&["a", "b", "c", "d"]);
        assert_eq!(verdict(&e, &t()).cause, ImapAuthCause::Unknown);
    }
}
