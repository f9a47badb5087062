//! The verdict rules of `SendmailDeferredSpike` (pure): which tier stands out (the queue decides,
//! the logs characterize), which DSN class dominates it, what to do, how sure we are. Each rule
//! is a function over the typed evidence; `docs/runbooks.md` states them next to the human
//! runbook's steps.

use super::super::evidence::{TierFacts, TriageEvidence};
use super::super::rules::{
    combine, concentration, confidence, count_measure, dominant_class, missing_pieces, offending,
    percent, summary_tail, ConfidenceInputs, Standing, TierStanding,
};
use super::{checks, egress, history};
use crate::config::RunbooksConfig;
use crate::report::{Action, NatState, OffendingTier, Verdict};

/// The queue decides, the logs characterize (the runbook: "the tier with a non-trivial mailq is
/// the offender"): a tier stands out when its queue reaches the threshold, whatever its deferred
/// lines (their shipping may have stopped); a queue that drained is quiet even with deferrals in
/// the window (the spike has passed). Only when the queue is unknown do the deferred lines decide,
/// on partial evidence.
pub fn tier_standing(facts: &TierFacts, t: &RunbooksConfig) -> TierStanding {
    match count_measure(facts.queue, facts.queue_partial, t.queue_threshold) {
        Some(stands) => TierStanding {
            standing: if stands {
                Standing::Stands
            } else {
                Standing::Quiet
            },
            partial: false,
        },
        None => combine(&[
            None,
            count_measure(
                facts.deferred_lines(),
                !facts.logs_known(),
                t.deferred_threshold,
            ),
        ]),
    }
}

/// How long a standing-out tier's logs have been silent, in seconds, when longer than
/// `log_silence_gap_secs`: its queue holds mail but no line (of any kind) has arrived since.
pub fn logs_silent(facts: &TierFacts, t: &RunbooksConfig) -> Option<u64> {
    let queue = facts.queue?;
    let age = facts.newest_log_age_secs?;
    (queue >= t.queue_threshold && age > t.log_silence_gap_secs).then_some(age)
}

/// The sentence that says a tier's logs stopped, and where to look when that tier is smtp-out
/// (its tasks' logs leave through the NAT of their zone, like its mail).
fn silence_sentence(facts: &TierFacts, age_secs: u64) -> String {
    let mut text = format!(
        " {}'s logs stopped {} min ago; the queue holds {}: the counts above miss what came after.",
        facts.tier,
        age_secs / 60,
        facts.queue.unwrap_or(0)
    );
    if facts.tier == "smtp-out" {
        text.push_str(
            " Its logs leave through the NAT like its mail: check egress (the NAT of its tasks' zones) first.",
        );
    }
    text
}

/// Whether the NAT is known not to be running.
pub fn nat_down(state: NatState) -> bool {
    !matches!(state, NatState::Running | NatState::Unknown)
}

/// A wave of 4.4 deferrals on smtp-out: outbound connections and DNS failing, the NAT's mark.
pub fn nat_wave(smtp_out: &TierFacts, t: &RunbooksConfig) -> Option<(u64, f64)> {
    let (count, share) = four_four_share(smtp_out)?;
    (count >= t.nat_wave_min_lines && share >= t.nat_wave_share).then_some((count, share))
}

/// smtp-out's 4.4 deferrals and their share of all its 4.x deferrals; None without any.
fn four_four_share(smtp_out: &TierFacts) -> Option<(u64, f64)> {
    let classes = &smtp_out.summary.dsn_classes;
    let count = classes.get("4.4").copied().unwrap_or(0);
    let failing: u64 = classes
        .iter()
        .filter(|(c, _)| c.starts_with("4."))
        .map(|(_, n)| *n)
        .sum();
    (failing > 0).then(|| (count, count as f64 / failing as f64))
}

/// The sentence for a tier configured with queues of their own whose tasks printed the same
/// queue.
pub fn identical_sentence(facts: &TierFacts) -> Option<String> {
    let same = facts.identical_queues?;
    let tier = &facts.tier;
    Some(if same.same_messages {
        format!(
            " {tier}'s {} tasks list the same {} queued messages: their queue is shared, counted once; set cabalmail.tiers.{tier}.shared_queue = true.",
            same.tasks, same.depth
        )
    } else {
        format!(
            " {tier}'s {} tasks each report {} queued messages, added up as queues of their own; if their queue is shared (EFS), set cabalmail.tiers.{tier}.shared_queue = true.",
            same.tasks, same.depth
        )
    })
}

/// smtp-out's logs silent with its queue standing out, and the 4.4 share of the deferrals read
/// before the silence reaching `nat_wave_share`: the lines cannot make a wave's count since they
/// stopped arriving, but their kind says egress.
pub fn silent_4_4(smtp_out: &TierFacts, t: &RunbooksConfig) -> Option<f64> {
    logs_silent(smtp_out, t)?;
    let (count, share) = four_four_share(smtp_out)?;
    (count > 0 && share >= t.nat_wave_share).then_some(share)
}

/// The sentence for blocklist lookups that were refused (they stay `unknown`): why, and how to get
/// answers.
pub fn refused_sentence(evidence: &TriageEvidence) -> Option<String> {
    let refused = evidence.refused_lookups();
    let (_, zone, code) = refused.first()?;
    let mut ips: Vec<&str> = refused.iter().map(|(ip, _, _)| *ip).collect();
    ips.dedup();
    Some(format!(
        " {zone} refused the lookup of {} ({code}): it refuses queries that come through public or cloud resolvers (AWS's included), so the listing is unknown, not clean; put a Spamhaus Data Query Service key in dnsbl.spamhaus_dqs_key_file, or set dnsbl.nameservers to a resolver it accepts.",
        ips.join(", ")
    ))
}

/// The action for the tier that offends (the one with most deferred lines when several do), with
/// the reason in words. `offending` is the tier verdict; `primary` the tier the action is about.
pub fn action(
    offending: OffendingTier,
    primary: Option<&TierFacts>,
    evidence: &TriageEvidence,
    t: &RunbooksConfig,
    relevant: &[&str],
) -> (Action, String) {
    let nat_matters = !matches!(offending, OffendingTier::Imap | OffendingTier::SmtpIn);
    let state = egress::nat_state(evidence, relevant);
    // The name lookup failing inside smtp-out's tasks: DNS, whatever the NAT (the VPC's resolver
    // answers without it).
    if let Some(reason) = primary
        .filter(|f| f.tier == "smtp-out")
        .and_then(|f| checks::outbound_dns_reason(f, t))
    {
        let also = if nat_down(state) || state == NatState::Degraded {
            format!(
                "; the NAT is also {}: fix it next",
                crate::report::render::kebab(&state)
            )
        } else {
            String::new()
        };
        return (Action::OutboundDns, format!("{reason}{also}"));
    }
    if nat_matters && state == NatState::Degraded {
        return (
            Action::NatReplace,
            egress::degraded_reason(evidence, relevant),
        );
    }
    if nat_matters && nat_down(state) {
        return (
            Action::NatReplace,
            format!(
                "the NAT in front of smtp-out is {}: replace it; deferrals should stop within minutes",
                crate::report::render::kebab(&state)
            ),
        );
    }
    let Some(primary) = primary else {
        return match offending {
            OffendingTier::None => (
                Action::Investigate,
                "no tier's queue and deferrals stand out now: the spike has passed".into(),
            ),
            _ => (
                Action::Investigate,
                "the evidence needed to find the tier is missing".into(),
            ),
        };
    };
    match primary.tier.as_str() {
        "imap" => {
            let problems = checks::local_problems(primary, t);
            (
                Action::ImapLocalDelivery,
                if problems.is_empty() {
                    "imap is deferring local delivery (LDA -> procmail -> Maildir): check procmail, EFS space and the user sync (ecs-reconfigure heartbeat)".into()
                } else {
                    format!(
                        "imap is deferring local delivery: {}",
                        problems.join("; ")
                    )
                },
            )
        }
        "smtp-in" => (
            Action::InboundRelay,
            checks::relay_reason(primary, t).unwrap_or_else(|| {
                "smtp-in cannot relay to imap: imap.cabal.internal must resolve inside smtp-in and imap must accept connections on port 25".into()
            }),
        ),
        _ => history::recurring_greylisting(smtp_out_action(primary, evidence, t), evidence, t),
    }
}

fn smtp_out_action(
    facts: &TierFacts,
    evidence: &TriageEvidence,
    t: &RunbooksConfig,
) -> (Action, String) {
    if let Some(share) = silent_4_4(facts, t) {
        return (
            Action::NatReplace,
            format!(
                "{} of the deferrals logged before smtp-out's logs stopped are 4.4 (connections and DNS failing): its egress is down; replace the NAT",
                percent(share)
            ),
        );
    }
    if let Some((count, share)) = nat_wave(facts, t) {
        return (
            Action::NatReplace,
            format!(
                "a wave of {count} 4.4 deferrals ({} of smtp-out's) says outbound connections fail: replace the NAT",
                percent(share)
            ),
        );
    }
    let listed = evidence.listed_ips();
    if !listed.is_empty() {
        let named: Vec<String> = listed
            .iter()
            .map(|ip| match evidence.ip_owner(ip) {
                Some((nat, Some(zone))) => format!("{ip} ({nat}, {zone})"),
                Some((nat, None)) => format!("{ip} ({nat})"),
                None => ip.to_string(),
            })
            .collect();
        return (
            Action::BlocklistCheck,
            format!("the NAT public IP {} is on a blocklist", named.join(", ")),
        );
    }
    let deferred = facts.summary.deferred_lines;
    if deferred > 0 && facts.greylist_lines as f64 / deferred as f64 >= t.greylist_reply_share {
        return (
            Action::GreylistingTransient,
            format!(
                "{} of {deferred} deferrals are remote servers saying they greylist: they clear on retry",
                facts.greylist_lines
            ),
        );
    }
    match dominant_class(facts, 4) {
        Some((class, _, _)) if class == "4.7" => policy_action(facts, t),
        Some((class, _, _)) if class == "4.5" || class == "4.3" => (
            Action::RemoteCongestion,
            "the remote servers are congested or failing (4.3 mail system, 4.5 protocol): nothing to fix here, sendmail retries".into(),
        ),
        _ => (
            Action::Investigate,
            "no known pattern in smtp-out's deferrals".into(),
        ),
    }
}

/// 4.7 on smtp-out: concentrated on one provider -> that provider blocks us (check our IP's
/// reputation); spread thin and short -> greylisting; spread but long-lasting -> reputation.
fn policy_action(facts: &TierFacts, t: &RunbooksConfig) -> (Action, String) {
    if let Some((provider, share, count)) = concentration(facts, "4.7") {
        if share >= t.provider_concentration && count >= t.provider_min_lines {
            return (
                Action::BlocklistCheck,
                format!(
                    "4.7 deferrals concentrate on {provider} ({count}, {}): check the NAT IP's reputation there",
                    percent(share)
                ),
            );
        }
    }
    match facts.longest_policy_delay_secs {
        Some(secs) if secs > t.greylist_max_delay_secs => (
            Action::BlocklistCheck,
            format!(
                "4.7 deferrals across providers have lasted up to {} min: our IP's reputation is suspect",
                secs / 60
            ),
        ),
        _ => (
            Action::GreylistingTransient,
            "4.7 deferrals are spread thin across providers and short: greylisting, watch".into(),
        ),
    }
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
        .max_by_key(|f| (f.summary.deferred_lines, f.queue.unwrap_or(0)));
    let relevant = egress::relevant_tiers(evidence, &standing_out);
    let nat_state = egress::nat_state(evidence, &relevant);
    let (action, reason) = action(offending_tier, primary, evidence, t, &relevant);
    let class = primary.and_then(|f| dominant_class(f, 4));
    let partial = offending_tier == OffendingTier::Multiple
        || standings
            .iter()
            .any(|(name, s)| standing_out.contains(name) && s.partial);
    let mut missing = missing_pieces(evidence, true);
    if primary.is_some_and(|f| f.tier == "smtp-out") && evidence.dnsbl_incomplete() {
        missing += 1;
    }
    // A tier whose logs stopped: what the lines say is only what came before.
    let silent: Vec<(&TierFacts, u64)> = standing_out
        .iter()
        .filter_map(|name| evidence.tier(name))
        .filter_map(|f| logs_silent(f, t).map(|age| (f, age)))
        .collect();
    missing += silent.len();
    let confidence = confidence(ConfidenceInputs {
        tier_decided: offending_tier != OffendingTier::Unknown,
        conclusive: action != Action::Investigate || offending_tier == OffendingTier::None,
        partial,
        class_clear: primary.is_none() || class.as_ref().is_some_and(|c| c.1 >= t.dominant_share),
        missing,
    });
    let mut summary = match (&class, primary) {
        (Some((class, share, count)), Some(f)) => format!(
            "{}: {} deferred, queue {}; {class} dominates ({count}, {}). {reason}",
            f.tier,
            f.summary.deferred_lines,
            f.queue.map_or_else(|| "unknown".into(), |q| q.to_string()),
            percent(*share)
        ),
        (None, Some(f)) => format!(
            "{}: {} deferred, queue {}. {reason}",
            f.tier,
            f.summary.deferred_lines,
            f.queue.map_or_else(|| "unknown".into(), |q| q.to_string())
        ),
        _ => reason,
    };
    let echoes: Vec<String> = evidence
        .tiers
        .iter()
        .filter_map(identical_sentence)
        .collect();
    let attributions = egress::exec_attributions(evidence);
    let refused = primary
        .filter(|f| f.tier == "smtp-out")
        .and_then(|_| refused_sentence(evidence));
    if refused.is_some() && !summary.ends_with('.') {
        summary.push('.');
    }
    if let Some(refused) = refused {
        summary.push_str(&refused);
    }
    if (!silent.is_empty() || !echoes.is_empty() || !attributions.is_empty())
        && !summary.ends_with('.')
    {
        summary.push('.');
    }
    for attribution in attributions {
        summary.push_str(&attribution);
    }
    if action == Action::NatReplace {
        if let Some(seen) = evidence
            .tier("smtp-out")
            .and_then(|f| checks::egress_confirmation(f, t))
        {
            if !summary.ends_with('.') {
                summary.push('.');
            }
            summary.push_str(&seen);
        }
    }
    for (f, age) in &silent {
        summary.push_str(&silence_sentence(f, *age));
    }
    for echo in echoes {
        summary.push_str(&echo);
    }
    if let Some(rising) = history::rising_bounces(evidence, t) {
        if !summary.ends_with('.') {
            summary.push('.');
        }
        summary.push_str(&rising);
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
    use crate::dnsbl::{Listing, ZoneVerdict};
    use crate::probe::snapshot::NatSnapshot;
    use crate::report::Confidence;
    use crate::runbook::followup::{
        ConnectCheck, DnsCheck, LocalCheck, ProcmailCheck, SpoolSpace, TcpCheck,
    };
    use crate::sendmail::NamedCount;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn t() -> RunbooksConfig {
        RunbooksConfig::default()
    }

    fn tier(name: &str, queue: Option<u64>, deferred: u64, classes: &[(&str, u64)]) -> TierFacts {
        let mut f = TierFacts {
            tier: name.into(),
            queue,
            queue_tasks: 1,
            queue_tasks_answered: usize::from(queue.is_some()),
            queue_partial: queue.is_none(),
            ..TierFacts::default()
        };
        f.summary.deferred_lines = deferred;
        f.summary.dsn_classes = classes.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        f
    }

    fn quiet(name: &str) -> TierFacts {
        tier(name, Some(0), 0, &[])
    }

    fn evidence(tiers: Vec<TierFacts>, nat: NatState) -> TriageEvidence {
        TriageEvidence {
            captured_at: datetime!(2026-11-28 20:15 UTC),
            tiers,
            nat: NatSnapshot::default(),
            nat_state: nat,
            nat_ips: vec!["203.0.113.7".into()],
            dnsbl: BTreeMap::from([(
                "203.0.113.7".to_string(),
                vec![ZoneVerdict {
                    zone: "zen.spamhaus.org".into(),
                    listing: Listing::NotListed,
                    codes: vec![],
                    meanings: vec![],
                }],
            )]),
            dnsbl_checked: true,
            zones: BTreeMap::new(),
            window: None,
            history: None,
        }
    }

    fn provider(name: &str, n: u64) -> NamedCount {
        NamedCount {
            name: name.into(),
            lines: n,
            deferred: n,
            dsn_classes: BTreeMap::from([("4.7".to_string(), n)]),
            ..NamedCount::default()
        }
    }

    #[test]
    fn a_tier_stands_out_on_queue_and_deferrals() {
        assert_eq!(
            tier_standing(&tier("smtp-out", Some(42), 118, &[]), &t()).standing,
            super::super::super::rules::Standing::Stands
        );
        // Queue empty now: the spike has passed.
        assert_eq!(
            tier_standing(&tier("smtp-out", Some(0), 118, &[]), &t()).standing,
            super::super::super::rules::Standing::Quiet
        );
        // Exec failed: the deferrals decide alone, partially.
        let s = tier_standing(&tier("smtp-out", None, 118, &[]), &t());
        assert!(s.partial);
    }

    #[test]
    fn the_queue_decides_and_the_logs_characterize() {
        use super::super::super::rules::Standing;
        // A queue of 63 with 3 deferred lines stands out (on main it did not: both measures had
        // to reach their thresholds).
        let few = tier("smtp-out", Some(63), 3, &[("4.4", 3)]);
        assert_eq!(tier_standing(&few, &t()).standing, Standing::Stands);
        assert!(!tier_standing(&few, &t()).partial);
        // A drained queue is quiet whatever the lines: the spike has passed.
        let drained = tier("smtp-out", Some(0), 300, &[("4.7", 300)]);
        assert_eq!(tier_standing(&drained, &t()).standing, Standing::Quiet);
        // One task of a shared queue answered (the other hung): its depth is the queue's.
        let mut one_answer = few.clone();
        one_answer.queue_partial = true;
        assert_eq!(tier_standing(&one_answer, &t()).standing, Standing::Stands);
        // The queue unknown: the lines decide, partially.
        let s = tier_standing(&tier("smtp-out", None, 3, &[]), &t());
        assert_eq!((s.standing, s.partial), (Standing::Quiet, true));
        // Fresh logs: the few lines are all there is; no silence said.
        let mut fresh = few.clone();
        fresh.newest_log_age_secs = Some(60);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), fresh],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.offending_tier, OffendingTier::SmtpOut);
        assert!(!v.summary.contains("logs stopped"), "{}", v.summary);
        assert_ne!(v.action, Action::NatReplace);
    }

    #[test]
    fn silent_logs_with_a_growing_queue_are_said_and_point_at_egress() {
        let mut out = tier("smtp-out", Some(63), 3, &[("4.4", 3)]);
        out.newest_log_age_secs = Some(23 * 60 + 10);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out.clone()],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.offending_tier, OffendingTier::SmtpOut);
        assert!(
            v.summary
                .contains("smtp-out's logs stopped 23 min ago; the queue holds 63"),
            "{}",
            v.summary
        );
        assert!(v.summary.contains("check egress"), "{}", v.summary);
        assert_eq!(v.action, Action::NatReplace);
        assert_eq!(v.confidence, Confidence::Medium);
        // Below the gap: nothing said.
        out.newest_log_age_secs = Some(t().log_silence_gap_secs);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out.clone()],
            NatState::Running,
        );
        assert!(!verdict(&e, &t()).summary.contains("logs stopped"));
        // Silent but the lines before were 4.7: said, the action is not the NAT's.
        let mut policy = tier("smtp-out", Some(63), 4, &[("4.7", 4)]);
        policy.newest_log_age_secs = Some(40 * 60);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), policy],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert!(
            v.summary.contains("logs stopped 40 min ago"),
            "{}",
            v.summary
        );
        assert_ne!(v.action, Action::NatReplace);
        // imap's silence is said without pointing at the NAT.
        let mut imap = tier("imap", Some(30), 2, &[("4.0", 2)]);
        imap.newest_log_age_secs = Some(15 * 60);
        let e = evidence(
            vec![imap, quiet("smtp-in"), quiet("smtp-out")],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert!(
            v.summary.contains("imap's logs stopped 15 min ago"),
            "{}",
            v.summary
        );
        assert!(!v.summary.contains("egress"), "{}", v.summary);
    }

    #[test]
    fn identical_queues_on_a_tier_configured_not_shared_are_said() {
        use crate::runbook::evidence::IdenticalQueues;
        let mut inbound = tier("smtp-in", Some(33), 60, &[("4.4", 60)]);
        inbound.identical_queues = Some(IdenticalQueues {
            tasks: 2,
            depth: 33,
            same_messages: true,
        });
        let e = evidence(
            vec![quiet("imap"), inbound.clone(), quiet("smtp-out")],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert!(
            v.summary.contains("smtp-in's 2 tasks list the same 33 queued messages: their queue is shared, counted once; set cabalmail.tiers.smtp-in.shared_queue = true."),
            "{}",
            v.summary
        );
        inbound.identical_queues = Some(IdenticalQueues {
            tasks: 2,
            depth: 7,
            same_messages: false,
        });
        let e = evidence(
            vec![quiet("imap"), inbound, quiet("smtp-out")],
            NatState::Running,
        );
        assert!(verdict(&e, &t())
            .summary
            .contains("smtp-in's 2 tasks each report 7 queued messages, added up"));
        let e = evidence(
            vec![
                quiet("imap"),
                tier("smtp-in", Some(33), 60, &[("4.4", 60)]),
                quiet("smtp-out"),
            ],
            NatState::Running,
        );
        assert!(!verdict(&e, &t()).summary.contains("tasks list the same"));
    }

    #[test]
    fn greylist_storm_at_one_provider_is_a_blocklist_check() {
        let mut out = tier("smtp-out", Some(42), 110, &[("4.7", 100), ("4.4", 10)]);
        out.summary.top_providers = vec![provider("google", 90), provider("microsoft", 10)];
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.offending_tier, OffendingTier::SmtpOut);
        assert_eq!(v.dsn_class.as_deref(), Some("4.7"));
        assert_eq!(v.action, Action::BlocklistCheck);
        assert_eq!(v.confidence, Confidence::High);
        assert!(v.summary.contains("google"), "{}", v.summary);
    }

    #[test]
    fn spread_thin_and_short_4_7_is_greylisting() {
        let mut out = tier("smtp-out", Some(12), 40, &[("4.7", 40)]);
        out.summary.top_providers = vec![
            provider("google", 10),
            provider("microsoft", 10),
            provider("yahoo", 10),
            provider("apple", 10),
        ];
        out.longest_policy_delay_secs = Some(600);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out.clone()],
            NatState::Running,
        );
        assert_eq!(verdict(&e, &t()).action, Action::GreylistingTransient);
        // Long-lasting: reputation.
        out.longest_policy_delay_secs = Some(4 * 3600);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out],
            NatState::Running,
        );
        assert_eq!(verdict(&e, &t()).action, Action::BlocklistCheck);
    }

    #[test]
    fn greylisting_replies_decide_whatever_their_code() {
        let mut out = tier("smtp-out", Some(20), 30, &[("4.2", 20), ("4.7", 10)]);
        out.greylist_lines = 20;
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out],
            NatState::Running,
        );
        assert_eq!(verdict(&e, &t()).action, Action::GreylistingTransient);
    }

    #[test]
    fn listed_nat_ip_is_a_blocklist_check() {
        let out = tier("smtp-out", Some(20), 30, &[("4.7", 30)]);
        let mut e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out],
            NatState::Running,
        );
        e.dnsbl.get_mut("203.0.113.7").unwrap()[0].listing = Listing::Listed;
        let v = verdict(&e, &t());
        assert_eq!(v.action, Action::BlocklistCheck);
        assert!(v.summary.contains("203.0.113.7"));
        // An Elastic IP of a stopped NAT instance (no public IP of its own): named with its NAT
        // and zone.
        e.nat.instances = vec![serde_json::from_value(serde_json::json!({
            "id": "i-0b1c2d3e4f5a60719", "name": "cabal-nat-1", "state": "stopped",
            "availability_zone": "us-east-1b"}))
        .unwrap()];
        e.nat.addresses = Some(vec![serde_json::from_value(serde_json::json!({
            "public_ip": "203.0.113.7", "allocation_id": "eipalloc-0b1", "name": "cabal-nat-eip-1",
            "instance_id": "i-0b1c2d3e4f5a60719"}))
        .unwrap()]);
        let v = verdict(&e, &t());
        assert!(
            v.summary.contains(
                "the NAT public IP 203.0.113.7 (cabal-nat-1, us-east-1b) is on a blocklist"
            ),
            "{}",
            v.summary
        );
    }

    #[test]
    fn a_refused_blocklist_lookup_stays_unknown_and_says_how_to_get_an_answer() {
        let out = tier("smtp-out", Some(20), 30, &[("4.7", 30)]);
        let mut e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out],
            NatState::Running,
        );
        let zone = &mut e.dnsbl.get_mut("203.0.113.7").unwrap()[0];
        zone.listing = Listing::Unknown;
        zone.codes = vec!["127.255.255.254".into()];
        let v = verdict(&e, &t());
        assert_ne!(v.action, Action::BlocklistCheck);
        assert!(
            v.summary
                .contains("zen.spamhaus.org refused the lookup of 203.0.113.7 (127.255.255.254)")
                && v.summary
                    .contains("Data Query Service key in dnsbl.spamhaus_dqs_key_file")
                && v.summary.contains("dnsbl.nameservers"),
            "{}",
            v.summary
        );
        // Nothing refused: nothing said.
        let clean = evidence(
            vec![
                quiet("imap"),
                quiet("smtp-in"),
                tier("smtp-out", Some(20), 30, &[("4.7", 30)]),
            ],
            NatState::Running,
        );
        assert!(!verdict(&clean, &t()).summary.contains("refused"));
    }

    #[test]
    fn nat_stopped_or_4_4_wave_is_nat_replace() {
        let out = tier("smtp-out", Some(80), 90, &[("4.4", 85), ("4.7", 5)]);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out.clone()],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(
            (v.action, v.dsn_class.as_deref()),
            (Action::NatReplace, Some("4.4"))
        );
        let calm = tier("smtp-out", Some(0), 0, &[]);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), calm],
            NatState::Stopped,
        );
        assert_eq!(verdict(&e, &t()).action, Action::NatReplace);
        assert_eq!(verdict(&e, &t()).nat_state, NatState::Stopped);
    }

    #[test]
    fn congestion_imap_and_smtp_in() {
        let out = tier(
            "smtp-out",
            Some(15),
            25,
            &[("4.3", 15), ("4.5", 8), ("4.7", 2)],
        );
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out],
            NatState::Running,
        );
        assert_eq!(verdict(&e, &t()).action, Action::RemoteCongestion);

        let imap = tier("imap", Some(30), 40, &[("4.0", 40)]);
        let e = evidence(
            vec![imap, quiet("smtp-in"), quiet("smtp-out")],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(
            (v.offending_tier, v.action),
            (OffendingTier::Imap, Action::ImapLocalDelivery)
        );
        // 4.0 is the whole of it: the class is clear.
        assert_eq!(v.confidence, Confidence::High);

        let smtp_in = tier("smtp-in", Some(50), 60, &[("4.4", 60)]);
        // Even with the NAT stopped, smtp-in's problem is the relay to imap.
        let e = evidence(
            vec![quiet("imap"), smtp_in, quiet("smtp-out")],
            NatState::Stopped,
        );
        let v = verdict(&e, &t());
        assert_eq!(
            (v.offending_tier, v.action),
            (OffendingTier::SmtpIn, Action::InboundRelay)
        );
    }

    fn connect(task: &str, dns: DnsCheck, tcp: TcpCheck, detail: &str) -> ConnectCheck {
        ConnectCheck {
            task: task.into(),
            dns,
            address: (dns == DnsCheck::Ok).then(|| "10.0.1.23".into()),
            tcp,
            detail: (!detail.is_empty()).then(|| detail.to_string()),
        }
    }

    #[test]
    fn the_follow_up_checks_name_the_failure() {
        // smtp-in offends and imap refuses port 25: said in the reason.
        let mut smtp_in = tier("smtp-in", Some(64), 30, &[("4.0", 30)]);
        smtp_in.relay_checks = vec![connect(
            "1a2b3c4d5e6f47a8",
            DnsCheck::Ok,
            TcpCheck::Failed,
            "[Errno 111] Connection refused",
        )];
        let e = evidence(
            vec![quiet("imap"), smtp_in, quiet("smtp-out")],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.action, Action::InboundRelay);
        assert!(
            v.summary
                .contains("imap.cabal.internal resolves to 10.0.1.23 but refuses port 25"),
            "{}",
            v.summary
        );
        // A 4.4 wave on smtp-out with the lookup failing inside its tasks: DNS, not the NAT.
        let mut out = tier("smtp-out", Some(80), 90, &[("4.4", 85), ("4.7", 5)]);
        out.egress_checks = vec![connect(
            "aaaaaaaa11112222",
            DnsCheck::Failed,
            TcpCheck::Unknown,
            "[Errno -3] Temporary failure in name resolution",
        )];
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out.clone()],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.action, Action::OutboundDns, "{}", v.summary);
        assert!(
            v.summary.contains("DNS failures, not the NAT"),
            "{}",
            v.summary
        );
        // With the NAT stopped too, DNS is still named first, and the NAT after it.
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out.clone()],
            NatState::Stopped,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.action, Action::OutboundDns);
        assert!(
            v.summary.contains("the NAT is also stopped"),
            "{}",
            v.summary
        );
        // The lookup works and TCP/25 times out: the NAT, confirmed from inside.
        out.egress_checks = vec![connect(
            "aaaaaaaa11112222",
            DnsCheck::Ok,
            TcpCheck::Timeout,
            "",
        )];
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out.clone()],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.action, Action::NatReplace);
        assert!(
            v.summary.contains("TCP/25 to it timed out"),
            "{}",
            v.summary
        );
        // A check that could not run decides nothing.
        out.egress_checks = vec![connect(
            "aaaaaaaa11112222",
            DnsCheck::Unknown,
            TcpCheck::Unknown,
            "python3 is not in the image",
        )];
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out],
            NatState::Running,
        );
        assert_eq!(verdict(&e, &t()).action, Action::NatReplace);
        // imap with its spool on the container's disk and procmail missing.
        let mut imap = tier("imap", Some(30), 40, &[("4.0", 40)]);
        imap.local_checks = vec![LocalCheck {
            task: "9f1c2d3e4a5b46c7".into(),
            spool: Some(SpoolSpace {
                filesystem: "overlay".into(),
                size_kib: 30_832_548,
                available_kib: 9_000_000,
                used_percent: 70,
                mounted_on: "/".into(),
            }),
            procmail: ProcmailCheck::Missing,
            detail: None,
        }];
        let e = evidence(
            vec![imap, quiet("smtp-in"), quiet("smtp-out")],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.action, Action::ImapLocalDelivery);
        assert!(
            v.summary
                .contains("/home is not a mounted filesystem (EFS) in task 9f1c2d3e"),
            "{}",
            v.summary
        );
        assert!(
            v.summary
                .contains("procmail is missing at /usr/bin/procmail"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn spike_over_multiple_and_unknown() {
        let over = tier("smtp-out", Some(0), 60, &[("4.7", 60)]);
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), over],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(
            (v.offending_tier, v.action),
            (OffendingTier::None, Action::Investigate)
        );
        assert!(v.summary.contains("spike has passed"));
        assert_eq!(v.confidence, Confidence::High);
        assert_eq!(v.dsn_class, None);

        let imap = tier("imap", Some(30), 40, &[("4.0", 40)]);
        let smtp_in = tier("smtp-in", Some(50), 60, &[("4.4", 60)]);
        let e = evidence(vec![imap, smtp_in, quiet("smtp-out")], NatState::Running);
        let v = verdict(&e, &t());
        assert_eq!(
            (v.offending_tier, v.action),
            (OffendingTier::Multiple, Action::InboundRelay)
        );
        assert_eq!(v.confidence, Confidence::Medium);

        let mut lost = tier("imap", None, 0, &[]);
        lost.log_error = Some("AccessDeniedException".into());
        let e = evidence(
            vec![lost, quiet("smtp-in"), quiet("smtp-out")],
            NatState::Running,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.offending_tier, OffendingTier::Unknown);
        assert_eq!(v.confidence, Confidence::Low);
    }

    #[test]
    fn missing_evidence_lowers_confidence() {
        let mut out = tier("smtp-out", None, 110, &[("4.7", 100), ("4.4", 10)]);
        out.summary.top_providers = vec![provider("google", 90)];
        let e = evidence(
            vec![quiet("imap"), quiet("smtp-in"), out],
            NatState::Unknown,
        );
        let v = verdict(&e, &t());
        assert_eq!(v.offending_tier, OffendingTier::SmtpOut);
        assert_eq!(v.action, Action::BlocklistCheck);
        assert_eq!(v.confidence, Confidence::Medium);
        assert!(v.summary.contains("missing"));
    }
}
