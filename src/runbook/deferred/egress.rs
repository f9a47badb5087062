//! The deferred runbook's reading of egress per zone (pure): `nat_state = degraded` when the
//! zone of a task that matters has broken egress while another zone's works, the reason naming
//! that zone, its NAT and the tasks behind it, whether smtp-out's 4.4 deferrals all come from
//! those tasks, and ECS Exec failures attributed to the broken zone they sit behind (their
//! agents reach AWS through that zone's NAT: not an ECS Exec setup problem).

use super::super::evidence::TriageEvidence;
use crate::probe::ZoneEgress;
use crate::report::NatState;

/// The tiers whose zones matter: those standing out, or every tier when none does.
pub fn relevant_tiers<'a>(evidence: &'a TriageEvidence, standing_out: &[&'a str]) -> Vec<&'a str> {
    if standing_out.is_empty() {
        evidence.tiers.iter().map(|f| f.tier.as_str()).collect()
    } else {
        standing_out.to_vec()
    }
}

/// The verdict's NAT state: `degraded` when a zone where a relevant tier's task runs has broken
/// egress while another zone's works; otherwise the state of the NATs found.
pub fn nat_state(evidence: &TriageEvidence, relevant: &[&str]) -> NatState {
    if !evidence.broken_zones_with_tasks(relevant).is_empty() && evidence.some_zone_works() {
        NatState::Degraded
    } else {
        evidence.nat_state
    }
}

/// The reason of `nat-replace` for degraded egress: each broken zone, why, and the tasks behind
/// it; and when every 4.4 deferral of smtp-out comes from tasks behind a broken zone, that too.
pub fn degraded_reason(evidence: &TriageEvidence, relevant: &[&str]) -> String {
    let broken = evidence.broken_zones_with_tasks(relevant);
    let zones: Vec<String> = broken
        .iter()
        .map(|(zone, egress)| {
            let tasks: Vec<String> = evidence
                .tasks_in_zone(zone, relevant)
                .iter()
                .map(|(tier, task)| format!("{tier} task {}", short(task)))
                .collect();
            format!(
                "zone {zone}'s egress is broken ({}), and {} behind it",
                egress.problem.as_deref().unwrap_or("unknown cause"),
                join_runs(&tasks)
            )
        })
        .collect();
    let mut reason = format!(
        "{}: {} while another zone's NAT works",
        zones.join("; "),
        fix_words(&broken)
    );
    if let Some(count) = four_four_only_behind(evidence, &broken) {
        reason.push_str(&format!(
            "; all {count} of smtp-out's 4.4 deferrals come from tasks behind it"
        ));
    }
    reason
}

/// What to do, by what is broken.
fn fix_words(broken: &[(&str, &ZoneEgress)]) -> &'static str {
    let route = broken
        .iter()
        .any(|(_, e)| matches!(e.route_state.as_deref(), Some("blackhole") | Some("none")));
    if route {
        "point the zone's default route at its running NAT (or replace the NAT)"
    } else {
        "start or replace that zone's NAT"
    }
}

/// smtp-out's 4.4 deferrals when every one of them comes from a task behind a broken zone.
pub fn four_four_only_behind(
    evidence: &TriageEvidence,
    broken: &[(&str, &ZoneEgress)],
) -> Option<u64> {
    let smtp_out = evidence.tier("smtp-out")?;
    let total: u64 = smtp_out.four_four_by_task.values().sum();
    if total == 0 {
        return None;
    }
    let behind = |task: &str| {
        smtp_out
            .task_zones
            .get(task)
            .is_some_and(|zone| broken.iter().any(|(z, _)| z == zone))
    };
    smtp_out
        .four_four_by_task
        .keys()
        .all(|task| behind(task))
        .then_some(total)
}

/// One sentence per broken zone behind which ECS Exec failed on some task.
pub fn exec_attributions(evidence: &TriageEvidence) -> Vec<String> {
    evidence
        .zones
        .iter()
        .filter(|(_, egress)| egress.broken())
        .filter_map(|(zone, egress)| {
            let failed: Vec<String> = evidence
                .tiers
                .iter()
                .flat_map(|f| {
                    f.exec_failed_tasks
                        .iter()
                        .filter(|task| f.task_zones.get(*task).map(String::as_str) == Some(zone))
                        .map(move |task| format!("{} task {}", f.tier, short(task)))
                })
                .collect();
            (!failed.is_empty()).then(|| {
                format!(
                    " ECS Exec failed on {} behind zone {zone}: the agent reaches AWS through that zone's broken egress ({}), not an ECS Exec setup problem.",
                    failed.join(", "),
                    egress.problem.as_deref().unwrap_or("unknown cause")
                )
            })
        })
        .collect()
}

/// The first 8 characters of a task id, as the ECS console shows it.
fn short(task: &str) -> &str {
    task.get(..8).unwrap_or(task)
}

fn join_runs(items: &[String]) -> String {
    match items {
        [] => "no task".into(),
        [one] => format!("{one} runs"),
        many => format!("{} run", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::evidence::TierFacts;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn zone(works: Option<bool>, problem: Option<&str>, route: &str) -> ZoneEgress {
        ZoneEgress {
            works,
            problem: problem.map(str::to_string),
            route_state: Some(route.into()),
            ..ZoneEgress::default()
        }
    }

    fn evidence(b: ZoneEgress) -> TriageEvidence {
        let smtp_out = TierFacts {
            tier: "smtp-out".into(),
            task_zones: BTreeMap::from([
                ("aaaaaaaa1111".to_string(), "us-east-1a".to_string()),
                ("bbbbbbbb2222".to_string(), "us-east-1b".to_string()),
            ]),
            exec_failed_tasks: vec!["bbbbbbbb2222".into()],
            four_four_by_task: BTreeMap::from([("bbbbbbbb2222".to_string(), 40)]),
            ..TierFacts::default()
        };
        let imap = TierFacts {
            tier: "imap".into(),
            task_zones: BTreeMap::from([("cccccccc3333".to_string(), "us-east-1a".to_string())]),
            ..TierFacts::default()
        };
        TriageEvidence {
            captured_at: datetime!(2026-11-28 20:15 UTC),
            tiers: vec![imap, smtp_out],
            nat: Default::default(),
            nat_state: NatState::Running,
            nat_ips: vec![],
            dnsbl: BTreeMap::new(),
            dnsbl_checked: true,
            zones: BTreeMap::from([
                ("us-east-1a".to_string(), zone(Some(true), None, "active")),
                ("us-east-1b".to_string(), b),
            ]),
            window: None,
            history: None,
        }
    }

    #[test]
    fn a_broken_zone_behind_an_offending_task_is_degraded_only_while_another_works() {
        let e = evidence(zone(
            Some(false),
            Some("NAT i-0b (cabal-nat-1) is stopped"),
            "active",
        ));
        assert_eq!(nat_state(&e, &["smtp-out"]), NatState::Degraded);
        // imap offends and runs in zone a only: zone b's NAT does not concern it.
        assert_eq!(nat_state(&e, &["imap"]), NatState::Running);
        // Nothing offends: every tier counts.
        assert_eq!(nat_state(&e, &relevant_tiers(&e, &[])), NatState::Degraded);
        // No zone works: the NATs' own state stands.
        let mut none_works = e.clone();
        none_works.zones.get_mut("us-east-1a").unwrap().works = None;
        assert_eq!(nat_state(&none_works, &["smtp-out"]), NatState::Running);
        // Unknown egress is not broken.
        let unknown = evidence(zone(None, None, "active"));
        assert_eq!(nat_state(&unknown, &["smtp-out"]), NatState::Running);
    }

    #[test]
    fn the_reason_names_the_zone_its_tasks_and_the_4_4_they_alone_cause() {
        let e = evidence(zone(
            Some(false),
            Some("NAT i-0b (cabal-nat-1) is stopped"),
            "active",
        ));
        let reason = degraded_reason(&e, &["smtp-out"]);
        assert_eq!(
            reason,
            "zone us-east-1b's egress is broken (NAT i-0b (cabal-nat-1) is stopped), and smtp-out task bbbbbbbb runs behind it: start or replace that zone's NAT while another zone's NAT works; all 40 of smtp-out's 4.4 deferrals come from tasks behind it"
        );
        let mut spread = e.clone();
        spread.tiers[1]
            .four_four_by_task
            .insert("aaaaaaaa1111".into(), 3);
        assert!(!degraded_reason(&spread, &["smtp-out"]).contains("4.4"));
        let blackhole = evidence(zone(
            Some(false),
            Some("the default route of rtb-0b is a blackhole"),
            "blackhole",
        ));
        assert!(
            degraded_reason(&blackhole, &["smtp-out"]).contains("default route at its running NAT")
        );
    }

    #[test]
    fn exec_failures_behind_a_broken_zone_are_attributed_to_it() {
        let e = evidence(zone(
            Some(false),
            Some("NAT i-0b (cabal-nat-1) is stopped"),
            "active",
        ));
        let said = exec_attributions(&e);
        assert_eq!(said.len(), 1);
        assert_eq!(
            said[0],
            " ECS Exec failed on smtp-out task bbbbbbbb behind zone us-east-1b: the agent reaches AWS through that zone's broken egress (NAT i-0b (cabal-nat-1) is stopped), not an ECS Exec setup problem."
        );
        // A working zone explains nothing.
        let fine = evidence(zone(Some(true), None, "active"));
        assert!(exec_attributions(&fine).is_empty());
    }
}
