//! The verdict rules of `SendmailBouncedSpike` (pure): the tier with most `dsn=5` lines offends,
//! its most frequent 5.x.y codes say why; smtp-out bounces are a deliverability question
//! (concentrated on one provider: that provider blocks us; spread: our reputation), smtp-in's
//! recipient-unknown bounces with a stale virtusertable mean the reconfigure loop is stuck, and
//! imap's mean local delivery fails.

use super::super::deferred::egress;
use super::super::evidence::{TierFacts, TriageEvidence};
use super::super::rules::{
    combine, concentration, confidence, count_measure, dominant_class, missing_pieces, offending,
    percent, summary_tail, ConfidenceInputs, TierStanding,
};
use crate::config::RunbooksConfig;
use crate::report::{Action, OffendingTier, Verdict};

/// A tier stands out when its bounced lines reach the threshold.
pub fn tier_standing(facts: &TierFacts, t: &RunbooksConfig) -> TierStanding {
    combine(&[count_measure(
        facts.bounced_lines(),
        !facts.logs_known(),
        t.bounced_threshold,
    )])
}

/// The most frequent 5.x.y codes of a tier, most frequent first.
pub fn top_codes(facts: &TierFacts, n: usize) -> Vec<(String, u64)> {
    let mut codes: Vec<(String, u64)> = facts
        .summary
        .dsn_codes
        .iter()
        .filter(|(code, _)| code.starts_with("5."))
        .map(|(code, count)| (code.clone(), *count))
        .collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    codes.truncate(n);
    codes
}

/// What the virtusertable says about smtp-in's recipient-unknown bounces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapAge {
    Stale(u64),
    Fresh(u64),
    Unknown,
}

pub fn map_age(facts: &TierFacts, t: &RunbooksConfig) -> MapAge {
    match facts.virtusertable {
        Some(v) if v.age_secs > t.virtusertable_max_age_secs => MapAge::Stale(v.age_secs),
        Some(v) => MapAge::Fresh(v.age_secs),
        None => MapAge::Unknown,
    }
}

fn hours(secs: u64) -> String {
    if secs >= 3600 {
        format!("{:.1} h", secs as f64 / 3600.0)
    } else {
        format!("{} min", secs / 60)
    }
}

/// The action for the tier with most bounces, with the reason in words.
pub fn action(
    offending: OffendingTier,
    primary: Option<&TierFacts>,
    evidence: &TriageEvidence,
    t: &RunbooksConfig,
) -> (Action, String) {
    let Some(primary) = primary else {
        return match offending {
            OffendingTier::None
                if evidence
                    .tiers
                    .iter()
                    .any(|f| f.summary.dsn5_deferred_lines > 0) =>
            {
                (
                    Action::Investigate,
                    "no tier's real bounces stand out: the alert's \"dsn=5\" lines include deferrals (stat=Deferred), which the deferred runbook covers".into(),
                )
            }
            OffendingTier::None => (
                Action::Investigate,
                "no tier's bounces stand out now: the spike has passed".into(),
            ),
            _ => (
                Action::Investigate,
                "the evidence needed to find the tier is missing".into(),
            ),
        };
    };
    let class = dominant_class(primary, 5).map(|c| c.0);
    match primary.tier.as_str() {
        "smtp-out" => {
            let listed = evidence.listed_ips();
            let mut reason = match concentration(primary, class.as_deref().unwrap_or("5.7")) {
                Some((provider, share, count))
                    if share >= t.provider_concentration && count >= t.provider_min_lines =>
                {
                    format!(
                        "bounces concentrate on {provider} ({count}, {}): that provider refuses our mail",
                        percent(share)
                    )
                }
                _ => "bounces are spread across providers: check SPF, DKIM and DMARC alignment and our reputation".into(),
            };
            if !listed.is_empty() {
                reason.push_str(&format!("; the NAT public IP {} is on a blocklist", listed.join(", ")));
            }
            reason.push_str(" (do not rotate the NAT IP: it resets reputation)");
            (Action::Deliverability, reason)
        }
        "smtp-in" if class.as_deref() == Some("5.1") => match map_age(primary, t) {
            MapAge::Stale(age) => (
                Action::AddressMapStale,
                format!(
                    "recipient unknown on smtp-in and the virtusertable is {} old: the reconfigure loop is stuck; force a new deployment of smtp-in",
                    hours(age)
                ),
            ),
            MapAge::Unknown => (
                Action::AddressMapStale,
                "recipient unknown on smtp-in, which usually means a stale address map; the virtusertable's age could not be read".into(),
            ),
            MapAge::Fresh(age) => (
                Action::Investigate,
                format!(
                    "recipient unknown on smtp-in but the virtusertable is fresh ({} old): the addresses do not exist (a removed address, or a dictionary attack)",
                    hours(age)
                ),
            ),
        },
        "smtp-in" => (
            Action::Investigate,
            "smtp-in bounces that are not recipient-unknown".into(),
        ),
        _ => (
            Action::ImapLocalDelivery,
            "imap bounces local delivery: the OS user and its Maildir must exist".into(),
        ),
    }
}

/// The lines the alert's filter (`"dsn=5"`) counted that `stat=` says were deferred, per tier,
/// said apart so the bounce counts above are read as real bounces.
pub fn deferrals_apart(evidence: &TriageEvidence) -> String {
    let parts: Vec<String> = evidence
        .tiers
        .iter()
        .filter(|f| f.summary.dsn5_deferred_lines > 0)
        .map(|f| format!("{} {}", f.tier, f.summary.dsn5_deferred_lines))
        .collect();
    if parts.is_empty() {
        return String::new();
    }
    format!(
        " Deferred, not bounced, though they carry dsn=5 from an earlier recipient (the alert counts them): {}.",
        parts.join(", ")
    )
}

/// The whole verdict.
pub fn verdict(evidence: &TriageEvidence, t: &RunbooksConfig) -> Verdict {
    let standings: Vec<(&str, TierStanding)> = evidence
        .tiers
        .iter()
        .map(|f| (f.tier.as_str(), tier_standing(f, t)))
        .collect();
    let (offending_tier, standing_out) = offending(&standings);
    let primary = standing_out
        .iter()
        .filter_map(|name| evidence.tier(name))
        .max_by_key(|f| f.summary.bounced_lines);
    let (action, reason) = action(offending_tier, primary, evidence, t);
    let class = primary.and_then(|f| dominant_class(f, 5));
    let partial = offending_tier == OffendingTier::Multiple
        || standings
            .iter()
            .any(|(name, s)| standing_out.contains(name) && s.partial);
    let mut missing = missing_pieces(evidence, false);
    if primary.is_some_and(|f| f.tier == "smtp-in")
        && action == Action::AddressMapStale
        && primary.is_some_and(|f| f.virtusertable.is_none())
    {
        missing += 1;
    }
    let confidence = confidence(ConfidenceInputs {
        tier_decided: offending_tier != OffendingTier::Unknown,
        conclusive: action != Action::Investigate || offending_tier == OffendingTier::None,
        partial,
        class_clear: primary.is_none() || class.as_ref().is_some_and(|c| c.1 >= t.dominant_share),
        missing,
    });
    let mut summary = match primary {
        Some(f) => {
            let codes: Vec<String> = top_codes(f, 3)
                .into_iter()
                .map(|(code, n)| format!("{code}×{n}"))
                .collect();
            format!(
                "{}: {} bounced{}. {reason}",
                f.tier,
                f.summary.bounced_lines,
                if codes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", codes.join(", "))
                }
            )
        }
        None => reason,
    };
    summary.push_str(&deferrals_apart(evidence));
    // Egress per zone, as in the deferred runbook: `degraded` when a zone where a task of the
    // offending tier (any tier when none offends) runs has broken egress while another's works,
    // and ECS Exec failures behind that zone attributed to it.
    let relevant = egress::relevant_tiers(evidence, &standing_out);
    let nat_state = egress::nat_state(evidence, &relevant);
    for attribution in egress::exec_attributions(evidence) {
        if !summary.ends_with('.') {
            summary.push('.');
        }
        summary.push_str(&attribution);
    }
    summary.push_str(&summary_tail(&standing_out, missing));
    Verdict {
        offending_tier,
        dsn_class: class.map(|c| c.0),
        nat_state,
        action,
        confidence,
        summary,
        next_command: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::NatSnapshot;
    use crate::report::{Confidence, NatState};
    use crate::runbook::evidence::Virtusertable;
    use crate::sendmail::NamedCount;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn t() -> RunbooksConfig {
        RunbooksConfig::default()
    }

    fn tier(name: &str, bounced: u64, codes: &[(&str, u64)]) -> TierFacts {
        let mut f = TierFacts {
            tier: name.into(),
            ..TierFacts::default()
        };
        f.summary.bounced_lines = bounced;
        for (code, n) in codes {
            f.summary.dsn_codes.insert(code.to_string(), *n);
            *f.summary
                .dsn_classes
                .entry(code[..3].to_string())
                .or_default() += n;
        }
        f
    }

    fn evidence(tiers: Vec<TierFacts>) -> TriageEvidence {
        TriageEvidence {
            captured_at: datetime!(2026-11-28 20:15 UTC),
            tiers,
            nat: NatSnapshot::default(),
            nat_state: NatState::Running,
            nat_ips: vec![],
            dnsbl: BTreeMap::new(),
            dnsbl_checked: true,
            zones: BTreeMap::new(),
            window: None,
            history: None,
        }
    }

    #[test]
    fn a_broken_zone_behind_the_offending_tier_is_degraded_and_named() {
        let zone = |works: bool, problem: Option<&str>| crate::probe::ZoneEgress {
            works: Some(works),
            problem: problem.map(str::to_string),
            ..Default::default()
        };
        let mut smtp_in = tier("smtp-in", 30, &[("5.1.1", 30)]);
        smtp_in.task_zones = BTreeMap::from([
            ("1a2b3c4d5e6f".to_string(), "us-east-1a".to_string()),
            ("2b3c4d5e6f7a".to_string(), "us-east-1b".to_string()),
        ]);
        smtp_in.exec_failed_tasks = vec!["2b3c4d5e6f7a".into()];
        let mut e = evidence(vec![
            tier("imap", 0, &[]),
            smtp_in,
            tier("smtp-out", 0, &[]),
        ]);
        e.zones = BTreeMap::from([
            ("us-east-1a".to_string(), zone(true, None)),
            (
                "us-east-1b".to_string(),
                zone(false, Some("NAT i-0b (cabal-nat-1) is stopped")),
            ),
        ]);
        let v = verdict(&e, &t());
        assert_eq!(v.offending_tier, OffendingTier::SmtpIn);
        assert_eq!(v.nat_state, NatState::Degraded, "{}", v.summary);
        assert!(
            v.summary
                .contains("ECS Exec failed on smtp-in task 2b3c4d5e behind zone us-east-1b"),
            "{}",
            v.summary
        );
        // Every zone broken: the NATs' own state, as before.
        e.zones.get_mut("us-east-1a").unwrap().works = Some(false);
        assert_eq!(verdict(&e, &t()).nat_state, NatState::Running);
    }

    #[test]
    fn the_largest_bouncing_tier_offends_with_its_top_codes() {
        let out = tier(
            "smtp-out",
            40,
            &[("5.7.1", 30), ("5.1.1", 6), ("5.7.26", 4)],
        );
        assert_eq!(
            top_codes(&out, 2),
            vec![("5.7.1".into(), 30), ("5.1.1".into(), 6)]
        );
        let e = evidence(vec![
            tier("imap", 0, &[]),
            tier("smtp-in", 2, &[("5.1.1", 2)]),
            out,
        ]);
        let v = verdict(&e, &t());
        assert_eq!(
            (v.offending_tier, v.action),
            (OffendingTier::SmtpOut, Action::Deliverability)
        );
        assert_eq!(v.dsn_class.as_deref(), Some("5.7"));
        assert!(v.summary.contains("5.7.1×30"), "{}", v.summary);
        assert!(v.summary.contains("spread"), "{}", v.summary);
    }

    #[test]
    fn deferrals_carrying_dsn5_are_not_bounces_and_are_said_apart() {
        // The alert's filter counted 14 lines; 12 of them are deferrals with a stale dsn=5.
        let mut out = tier("smtp-out", 2, &[("5.7.1", 2), ("4.2.0", 12)]);
        out.summary.deferred_lines = 12;
        out.summary.dsn5_deferred_lines = 12;
        let e = evidence(vec![tier("imap", 0, &[]), tier("smtp-in", 0, &[]), out]);
        let v = verdict(&e, &t());
        assert_eq!(v.offending_tier, OffendingTier::None);
        assert!(v.summary.contains("include deferrals"), "{}", v.summary);
        assert!(
            v.summary
                .contains("Deferred, not bounced, though they carry dsn=5 from an earlier recipient (the alert counts them): smtp-out 12."),
            "{}",
            v.summary
        );
        let e = evidence(vec![tier("smtp-out", 9, &[("5.7.1", 9)])]);
        assert!(!verdict(&e, &t()).summary.contains("Deferred, not bounced"));
    }

    #[test]
    fn smtp_out_bounces_concentrated_on_one_provider() {
        let mut out = tier("smtp-out", 20, &[("5.7.1", 20)]);
        out.summary.top_providers = vec![NamedCount {
            name: "microsoft".into(),
            lines: 18,
            bounced: 18,
            dsn_classes: BTreeMap::from([("5.7".to_string(), 18)]),
            ..NamedCount::default()
        }];
        let e = evidence(vec![tier("imap", 0, &[]), tier("smtp-in", 0, &[]), out]);
        let v = verdict(&e, &t());
        assert!(
            v.summary.contains("concentrate on microsoft"),
            "{}",
            v.summary
        );
        assert_eq!(v.confidence, Confidence::High);
    }

    #[test]
    fn recipient_unknown_on_smtp_in_with_the_map_age() {
        let mut smtp_in = tier("smtp-in", 30, &[("5.1.1", 30)]);
        smtp_in.virtusertable = Some(Virtusertable {
            lines: 120,
            modified_at: 0,
            age_secs: 5 * 3600,
        });
        let e = evidence(vec![
            tier("imap", 0, &[]),
            smtp_in.clone(),
            tier("smtp-out", 0, &[]),
        ]);
        let v = verdict(&e, &t());
        assert_eq!(v.action, Action::AddressMapStale);
        assert_eq!(v.confidence, Confidence::High);
        assert!(v.summary.contains("5.0 h"), "{}", v.summary);

        smtp_in.virtusertable = Some(Virtusertable {
            lines: 120,
            modified_at: 0,
            age_secs: 600,
        });
        let e = evidence(vec![
            tier("imap", 0, &[]),
            smtp_in.clone(),
            tier("smtp-out", 0, &[]),
        ]);
        assert_eq!(verdict(&e, &t()).action, Action::Investigate);

        smtp_in.virtusertable = None;
        let e = evidence(vec![
            tier("imap", 0, &[]),
            smtp_in,
            tier("smtp-out", 0, &[]),
        ]);
        let v = verdict(&e, &t());
        assert_eq!(v.action, Action::AddressMapStale);
        assert_eq!(v.confidence, Confidence::Medium);
    }

    #[test]
    fn imap_none_and_unknown() {
        let e = evidence(vec![
            tier("imap", 9, &[("5.2.0", 9)]),
            tier("smtp-in", 0, &[]),
            tier("smtp-out", 0, &[]),
        ]);
        assert_eq!(verdict(&e, &t()).action, Action::ImapLocalDelivery);
        let e = evidence(vec![
            tier("imap", 1, &[]),
            tier("smtp-in", 0, &[]),
            tier("smtp-out", 0, &[]),
        ]);
        let v = verdict(&e, &t());
        assert_eq!(
            (v.offending_tier, v.action),
            (OffendingTier::None, Action::Investigate)
        );
        let mut denied = tier("imap", 0, &[]);
        denied.log_error = Some("AccessDeniedException: logs:FilterLogEvents".into());
        let e = evidence(vec![
            denied,
            tier("smtp-in", 0, &[]),
            tier("smtp-out", 0, &[]),
        ]);
        let v = verdict(&e, &t());
        assert_eq!(
            (v.offending_tier, v.confidence),
            (OffendingTier::Unknown, Confidence::Low)
        );
    }
}
