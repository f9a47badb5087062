//! The verdict rules both sendmail runbooks share, as pure functions over typed evidence: does a
//! tier stand out, which tier offends, which DSN class dominates it, how sure we are. The
//! runbook-specific rules (actions) live in `deferred::rules` and `bounced::rules`.
//! `docs/runbooks.md` states each rule in words.

use serde::Serialize;

use super::evidence::{TierFacts, TriageEvidence};
use crate::report::{Confidence, OffendingTier};
use crate::sendmail::NamedCount;

/// Whether one measure of a tier stands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    Stands,
    Quiet,
    Unknown,
}

/// A tier's standing, and whether it was decided on part of the evidence only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierStanding {
    pub standing: Standing,
    pub partial: bool,
}

/// Combines the measures of a tier (each `None` when unknown): the tier stands out when every
/// known measure does; it is decided on part of the evidence when some measure is unknown;
/// it is unknown when no measure is known.
pub fn combine(measures: &[Option<bool>]) -> TierStanding {
    let known: Vec<bool> = measures.iter().flatten().copied().collect();
    if known.is_empty() {
        return TierStanding {
            standing: Standing::Unknown,
            partial: true,
        };
    }
    TierStanding {
        standing: if known.iter().all(|s| *s) {
            Standing::Stands
        } else {
            Standing::Quiet
        },
        partial: known.len() < measures.len(),
    }
}

/// A count measure against its threshold: unknown when the count is; a count read from a
/// partial source counts only when it already reaches the threshold.
pub fn count_measure(count: Option<u64>, partial: bool, threshold: u64) -> Option<bool> {
    match count {
        None => None,
        Some(n) if n >= threshold => Some(true),
        Some(_) if partial => None,
        Some(_) => Some(false),
    }
}

/// The tier name as the report says it.
pub fn tier_kind(name: &str) -> OffendingTier {
    match name {
        "imap" => OffendingTier::Imap,
        "smtp-in" => OffendingTier::SmtpIn,
        "smtp-out" => OffendingTier::SmtpOut,
        _ => OffendingTier::Unknown,
    }
}

/// The offending tier from each tier's standing (in report order), with the tiers that stand
/// out: one -> that tier; several -> `multiple`; none -> `none` when every tier is known to be
/// quiet, else `unknown`.
pub fn offending<'a>(standings: &[(&'a str, TierStanding)]) -> (OffendingTier, Vec<&'a str>) {
    let standing_out: Vec<&str> = standings
        .iter()
        .filter(|(_, s)| s.standing == Standing::Stands)
        .map(|(name, _)| *name)
        .collect();
    let tier = match standing_out.as_slice() {
        [one] => tier_kind(one),
        [] if standings
            .iter()
            .any(|(_, s)| s.standing == Standing::Unknown) =>
        {
            OffendingTier::Unknown
        }
        [] => OffendingTier::None,
        _ => OffendingTier::Multiple,
    };
    (tier, standing_out)
}

/// The dominant effective DSN class among a tier's codes of one severity (`4` deferrals, `5`
/// bounces), with its share of those codes and its count. Ties go to the lower class.
pub fn dominant_class(facts: &TierFacts, severity: u8) -> Option<(String, f64, u64)> {
    let prefix = format!("{severity}.");
    let classes: Vec<(&String, &u64)> = facts
        .summary
        .dsn_classes
        .iter()
        .filter(|(class, _)| class.starts_with(&prefix))
        .collect();
    let total: u64 = classes.iter().map(|(_, n)| **n).sum();
    let (class, count) = classes
        .into_iter()
        .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
    (total > 0).then(|| (class.clone(), *count as f64 / total as f64, *count))
}

/// The provider (else recipient domain) holding most lines of `class` on the tier, with its share
/// of them: concentration on one receiving operator.
pub fn concentration(facts: &TierFacts, class: &str) -> Option<(String, f64, u64)> {
    let total = *facts.summary.dsn_classes.get(class)?;
    let of = |n: &NamedCount| n.dsn_classes.get(class).copied().unwrap_or(0);
    // Providers first; a recipient domain only when it holds strictly more (an operator the
    // provider table does not know).
    let best_of = |list: &[NamedCount]| -> Option<(String, u64)> {
        list.iter().map(|n| (n.name.clone(), of(n))).fold(
            None,
            |best: Option<(String, u64)>, (name, count)| match best {
                Some((_, top)) if top >= count => best,
                _ => Some((name, count)),
            },
        )
    };
    let provider = best_of(&facts.summary.top_providers);
    let domain = best_of(&facts.summary.top_domains);
    let (name, count) = match (provider, domain) {
        (Some(p), Some(d)) if d.1 > p.1 => d,
        (Some(p), _) => p,
        (None, d) => d?,
    };
    (total > 0 && count > 0).then(|| (name, count as f64 / total as f64, count))
}

/// What the confidence is drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfidenceInputs {
    /// The offending tier is known (not `unknown`).
    pub tier_decided: bool,
    /// The action follows from the evidence (not `investigate` for want of a conclusion).
    pub conclusive: bool,
    /// The tier was decided on part of its measures, or several tiers stand out.
    pub partial: bool,
    /// The dominant class reaches `runbooks.dominant_share` (or no class is needed).
    pub class_clear: bool,
    /// Pieces of evidence that bear on the verdict and are missing (failed or timed-out probes).
    pub missing: usize,
}

/// High when everything agreed and nothing was missing; low when the tier is unknown, when the
/// action is inconclusive with evidence missing, or when three or more pieces are missing;
/// medium otherwise.
pub fn confidence(inputs: ConfidenceInputs) -> Confidence {
    if !inputs.tier_decided || inputs.missing >= 3 || (!inputs.conclusive && inputs.missing > 0) {
        return Confidence::Low;
    }
    if inputs.missing == 0 && !inputs.partial && inputs.class_clear && inputs.conclusive {
        Confidence::High
    } else {
        Confidence::Medium
    }
}

/// Evidence missing across tiers: each tier whose queue or log scan failed, and the NAT lookup.
pub fn missing_pieces(evidence: &TriageEvidence, need_queue: bool) -> usize {
    let tiers = evidence
        .tiers
        .iter()
        .map(|t| {
            usize::from(need_queue && (t.queue.is_none() || t.queue_partial))
                + usize::from(!t.logs_known())
        })
        .sum::<usize>();
    tiers + usize::from(evidence.nat_unknown())
}

/// `0.873` -> `87 %`.
/// What every verdict's summary ends with: the other tiers that stood out (when more than one
/// did) and how many pieces of evidence were missing; empty when neither applies.
pub fn summary_tail(standing_out: &[&str], missing: usize) -> String {
    let mut tail = String::new();
    if standing_out.len() > 1 {
        tail.push_str(&format!(
            " Tiers standing out: {}.",
            standing_out.join(", ")
        ));
    }
    if missing > 0 {
        tail.push_str(&format!(" {missing} piece(s) of evidence missing."));
    }
    tail
}

pub fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn standing(standing: Standing, partial: bool) -> TierStanding {
        TierStanding { standing, partial }
    }

    #[test]
    fn measures_combine() {
        assert_eq!(
            combine(&[Some(true), Some(true)]),
            standing(Standing::Stands, false)
        );
        assert_eq!(
            combine(&[Some(true), Some(false)]),
            standing(Standing::Quiet, false)
        );
        assert_eq!(
            combine(&[None, Some(true)]),
            standing(Standing::Stands, true)
        );
        assert_eq!(combine(&[None, None]), standing(Standing::Unknown, true));
        assert_eq!(count_measure(Some(5), false, 5), Some(true));
        assert_eq!(count_measure(Some(4), false, 5), Some(false));
        assert_eq!(count_measure(Some(4), true, 5), None);
        assert_eq!(count_measure(Some(9), true, 5), Some(true));
        assert_eq!(count_measure(None, false, 5), None);
    }

    #[test]
    fn offending_tier_one_several_none_unknown() {
        let stands = standing(Standing::Stands, false);
        let quiet = standing(Standing::Quiet, false);
        let unknown = standing(Standing::Unknown, true);
        assert_eq!(
            offending(&[("imap", quiet), ("smtp-in", quiet), ("smtp-out", stands)]),
            (OffendingTier::SmtpOut, vec!["smtp-out"])
        );
        assert_eq!(
            offending(&[("imap", stands), ("smtp-in", stands), ("smtp-out", quiet)]).0,
            OffendingTier::Multiple
        );
        assert_eq!(
            offending(&[("imap", quiet), ("smtp-in", quiet), ("smtp-out", quiet)]).0,
            OffendingTier::None
        );
        assert_eq!(
            offending(&[("imap", unknown), ("smtp-in", quiet), ("smtp-out", quiet)]).0,
            OffendingTier::Unknown
        );
        // A tier that stands out wins over another that is unknown.
        assert_eq!(
            offending(&[("imap", unknown), ("smtp-in", stands), ("smtp-out", quiet)]).0,
            OffendingTier::SmtpIn
        );
    }

    fn facts(classes: &[(&str, u64)], providers: Vec<NamedCount>) -> TierFacts {
        let mut facts = TierFacts::default();
        facts.summary.dsn_classes = classes.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        facts.summary.top_providers = providers;
        facts
    }

    fn provider(name: &str, class: &str, n: u64) -> NamedCount {
        NamedCount {
            name: name.into(),
            lines: n,
            deferred: n,
            dsn_classes: BTreeMap::from([(class.to_string(), n)]),
            ..NamedCount::default()
        }
    }

    #[test]
    fn dominant_class_counts_one_severity_only() {
        let f = facts(
            &[("4.7", 60), ("4.4", 30), ("4.0", 10), ("5.7", 500)],
            vec![],
        );
        let (class, share, count) = dominant_class(&f, 4).unwrap();
        assert_eq!((class.as_str(), count), ("4.7", 60));
        assert!((share - 0.6).abs() < 1e-9);
        assert_eq!(dominant_class(&f, 5).unwrap().0, "5.7");
        assert_eq!(dominant_class(&facts(&[], vec![]), 4), None);
        // Ties go to the lower class.
        let tie = facts(&[("4.3", 5), ("4.5", 5)], vec![]);
        assert_eq!(dominant_class(&tie, 4).unwrap().0, "4.3");
    }

    #[test]
    fn concentration_on_one_provider() {
        let f = facts(
            &[("4.7", 100)],
            vec![
                provider("google", "4.7", 80),
                provider("microsoft", "4.7", 20),
            ],
        );
        let (name, share, count) = concentration(&f, "4.7").unwrap();
        assert_eq!((name.as_str(), count), ("google", 80));
        assert!((share - 0.8).abs() < 1e-9);
        assert_eq!(concentration(&f, "4.4"), None);
    }

    #[test]
    fn confidence_levels() {
        let all = ConfidenceInputs {
            tier_decided: true,
            conclusive: true,
            partial: false,
            class_clear: true,
            missing: 0,
        };
        assert_eq!(confidence(all), Confidence::High);
        assert_eq!(
            confidence(ConfidenceInputs { missing: 1, ..all }),
            Confidence::Medium
        );
        assert_eq!(
            confidence(ConfidenceInputs {
                partial: true,
                ..all
            }),
            Confidence::Medium
        );
        assert_eq!(
            confidence(ConfidenceInputs {
                class_clear: false,
                ..all
            }),
            Confidence::Medium
        );
        assert_eq!(
            confidence(ConfidenceInputs { missing: 3, ..all }),
            Confidence::Low
        );
        assert_eq!(
            confidence(ConfidenceInputs {
                tier_decided: false,
                ..all
            }),
            Confidence::Low
        );
        assert_eq!(
            confidence(ConfidenceInputs {
                conclusive: false,
                missing: 1,
                ..all
            }),
            Confidence::Low
        );
        assert_eq!(
            confidence(ConfidenceInputs {
                conclusive: false,
                ..all
            }),
            Confidence::Medium
        );
    }
}
