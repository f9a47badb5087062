//! The deferred runbook's reading of time (pure): the ledger's history of the alert (greylisting
//! for the third time this week is not transient: the runbook calls it "concerning if
//! recurring") and the bounces in the same window (rising bounces are a second incident the
//! deferral verdict should not hide).

use super::super::evidence::TriageEvidence;
use crate::config::RunbooksConfig;
use crate::report::Action;

/// `greylisting-transient` once the ledger holds `recurring_episodes` earlier episodes with that
/// verdict in its look-back: `blocklist-check`, the reason saying which time this is. Anything
/// else, or history unknown, stays as it is.
pub fn recurring_greylisting(
    decided: (Action, String),
    evidence: &TriageEvidence,
    t: &RunbooksConfig,
) -> (Action, String) {
    let (action, reason) = decided;
    if action != Action::GreylistingTransient {
        return (action, reason);
    }
    let earlier = evidence
        .history
        .as_ref()
        .and_then(|h| h.with_action("greylisting-transient"))
        .unwrap_or(0);
    if earlier < t.recurring_episodes {
        return (action, reason);
    }
    (
        Action::BlocklistCheck,
        format!(
            "{reason}; but this is greylisting episode {} in 7 days: recurring greylisting is not transient (the runbook: \"concerning if recurring\"), check the NAT IP's reputation",
            earlier + 1
        ),
    )
}

/// The sentence for bounces rising in the same window: the window's later half holds more than
/// twice the bounces of its earlier half and at least `bounced_threshold`. None otherwise, or
/// when the window is unknown.
pub fn rising_bounces(evidence: &TriageEvidence, t: &RunbooksConfig) -> Option<String> {
    let window = evidence.window?;
    let middle_ms = i64::try_from(
        (window.from.unix_timestamp_nanos() + window.to.unix_timestamp_nanos()) / 2_000_000,
    )
    .ok()?;
    let mut earlier = 0u64;
    let mut later = 0u64;
    let mut tiers: Vec<String> = Vec::new();
    for facts in &evidence.tiers {
        let (before, after): (Vec<i64>, Vec<i64>) =
            facts.bounced_at_ms.iter().partition(|&&at| at < middle_ms);
        earlier += before.len() as u64;
        later += after.len() as u64;
        if !after.is_empty() {
            tiers.push(format!("{} {}", facts.tier, after.len()));
        }
    }
    (later >= t.bounced_threshold && later > earlier * 2).then(|| {
        format!(
            " Bounces are rising in the same window: {earlier} in its first half, {later} in its second ({}); the SendmailBouncedSpike runbook covers them.",
            tiers.join(", ")
        )
    })
}

/// The sentence on the alert's history, when known and not empty: how many earlier episodes of
/// the alert, and how many of them ended with this verdict's action.
pub fn history_sentence(
    evidence: &TriageEvidence,
    alertname: &str,
    action: Action,
) -> Option<String> {
    let history = evidence.history.as_ref()?;
    if !history.known() || history.episodes == 0 {
        return None;
    }
    let action = crate::report::render::kebab(&action);
    let same = history.by_action.get(&action).copied().unwrap_or(0);
    Some(format!(
        " The ledger holds {} earlier {alertname} episode{} from the last 7 days, {same} of them {action}.",
        history.episodes,
        if history.episodes == 1 { "" } else { "s" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::Window;
    use crate::report::history::AlertHistory;
    use crate::runbook::evidence::TierFacts;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn evidence(history: Option<AlertHistory>, bounced: &[(&str, Vec<i64>)]) -> TriageEvidence {
        TriageEvidence {
            captured_at: datetime!(2026-11-28 20:15 UTC),
            tiers: bounced
                .iter()
                .map(|(tier, at)| TierFacts {
                    tier: tier.to_string(),
                    bounced_at_ms: at.clone(),
                    ..TierFacts::default()
                })
                .collect(),
            nat: Default::default(),
            nat_state: crate::report::NatState::Running,
            nat_ips: vec![],
            dnsbl: BTreeMap::new(),
            dnsbl_checked: true,
            zones: BTreeMap::new(),
            window: Some(Window {
                from: datetime!(2026-11-28 19:45 UTC),
                to: datetime!(2026-11-28 20:15 UTC),
            }),
            history,
        }
    }

    fn greylisted(earlier: u64) -> AlertHistory {
        AlertHistory {
            since: None,
            episodes: earlier + 1,
            by_action: BTreeMap::from([("greylisting-transient".to_string(), earlier)]),
            error: None,
        }
    }

    #[test]
    fn the_third_greylisting_this_week_is_not_transient() {
        let t = RunbooksConfig::default();
        let decided = || {
            (
                Action::GreylistingTransient,
                "greylisting, watch".to_string(),
            )
        };
        let (action, _) = recurring_greylisting(decided(), &evidence(None, &[]), &t);
        assert_eq!(
            action,
            Action::GreylistingTransient,
            "no history: as decided"
        );
        let (action, _) = recurring_greylisting(decided(), &evidence(Some(greylisted(1)), &[]), &t);
        assert_eq!(action, Action::GreylistingTransient, "the second time");
        let (action, reason) =
            recurring_greylisting(decided(), &evidence(Some(greylisted(2)), &[]), &t);
        assert_eq!(action, Action::BlocklistCheck);
        assert!(
            reason.contains("greylisting episode 3 in 7 days"),
            "{reason}"
        );
        let unknown = AlertHistory::unknown("ledger down".into());
        let (action, _) = recurring_greylisting(decided(), &evidence(Some(unknown), &[]), &t);
        assert_eq!(
            action,
            Action::GreylistingTransient,
            "unknown decides nothing"
        );
        let other = (Action::NatReplace, "nat".to_string());
        assert_eq!(
            recurring_greylisting(other, &evidence(Some(greylisted(5)), &[]), &t).0,
            Action::NatReplace
        );
    }

    #[test]
    fn rising_bounces_are_said() {
        let t = RunbooksConfig::default();
        let first_half = 1_795_895_400_000; // 19:50
        let second_half = 1_795_896_600_000; // 20:10
        let rising = evidence(
            None,
            &[
                (
                    "smtp-out",
                    vec![first_half; 1]
                        .into_iter()
                        .chain(vec![second_half; 6])
                        .collect(),
                ),
                ("smtp-in", vec![second_half]),
            ],
        );
        let said = rising_bounces(&rising, &t).unwrap();
        assert!(
            said.contains("1 in its first half, 7 in its second (smtp-out 6, smtp-in 1)"),
            "{said}"
        );
        let steady = evidence(
            None,
            &[(
                "smtp-out",
                vec![
                    first_half,
                    first_half,
                    first_half,
                    second_half,
                    second_half,
                    second_half,
                    second_half,
                    second_half,
                ],
            )],
        );
        assert_eq!(rising_bounces(&steady, &t), None, "5 after 3 is not rising");
        let few = evidence(None, &[("smtp-out", vec![second_half; 2])]);
        assert_eq!(
            rising_bounces(&few, &t),
            None,
            "under the bounced threshold"
        );
    }

    #[test]
    fn history_is_said_when_known() {
        let e = evidence(Some(greylisted(2)), &[]);
        assert_eq!(
            history_sentence(&e, "SendmailDeferredSpike", Action::GreylistingTransient).as_deref(),
            Some(" The ledger holds 3 earlier SendmailDeferredSpike episodes from the last 7 days, 2 of them greylisting-transient.")
        );
        assert_eq!(
            history_sentence(&evidence(None, &[]), "X", Action::NatReplace),
            None
        );
        let unknown = evidence(Some(AlertHistory::unknown("down".into())), &[]);
        assert_eq!(history_sentence(&unknown, "X", Action::NatReplace), None);
    }
}
