//! The operator's next step as a command line, filled in with the evidence's own identifiers
//! (`verdict.next_command`). Printed, never executed. Every identifier comes from AWS's answers
//! (the NAT instances' ids) or from configuration (cluster, services, region), never from alert
//! labels or log text, and each must look like what it is (`i-0f9e…`, a service name) or no
//! command is given: a hostile replay snapshot cannot put shell text in front of an operator.

use super::evidence::TriageEvidence;
use crate::config::Config;
use crate::report::{Action, Verdict};

/// The command for the verdict's action, when the action has one and its identifiers are known.
///
/// - `nat-replace` with NAT instances stopped: start them (`aws ec2 start-instances`).
/// - `address-map-stale`: a new deployment of smtp-in, whose tasks rebuild the map at start
///   (`aws ecs update-service --force-new-deployment`).
///
/// Other actions (and a NAT that is not a stopped instance: Cabalmail's NAT instances and
/// gateways are Terraform's to replace) have no single command: `None`.
pub fn next_command(
    verdict: &Verdict,
    evidence: &TriageEvidence,
    config: &Config,
) -> Option<String> {
    let region = match config.aws.region.as_deref() {
        Some(region) if is_word(region) => format!(" --region {region}"),
        Some(_) => return None,
        None => String::new(),
    };
    match verdict.action {
        Action::NatReplace => {
            let mut stopped: Vec<&str> = evidence
                .nat
                .instances
                .iter()
                .filter(|i| i.state == "stopped")
                .map(|i| i.id.as_str())
                .collect();
            stopped.sort_unstable();
            stopped.dedup();
            if stopped.is_empty() || !stopped.iter().all(|id| is_instance_id(id)) {
                return None;
            }
            Some(format!(
                "aws ec2 start-instances --instance-ids {}{region}",
                stopped.join(" ")
            ))
        }
        Action::AddressMapStale => {
            let cluster = &config.cabalmail.cluster;
            let service = &config.cabalmail.tiers.get("smtp-in")?.service;
            (is_word(cluster) && is_word(service)).then(|| {
                format!(
                    "aws ecs update-service --cluster {cluster} --service {service} --force-new-deployment{region}"
                )
            })
        }
        _ => None,
    }
}

/// An EC2 instance id: `i-` and 8 or 17 hexadecimal digits.
fn is_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A name safe on a command line as it is: letters, digits, `-`, `_`, `.`.
pub(super) fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !text.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::{NatEntry, NatSnapshot};
    use crate::report::{Confidence, NatState, OffendingTier};
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn verdict(action: Action) -> Verdict {
        Verdict {
            offending_tier: OffendingTier::SmtpOut,
            dsn_class: None,
            nat_state: NatState::Stopped,
            action,
            confidence: Confidence::High,
            summary: String::new(),
            next_command: None,
        }
    }

    fn instance(id: &str, state: &str) -> NatEntry {
        serde_json::from_value(serde_json::json!({"id": id, "name": "cabal-nat-1", "state": state}))
            .unwrap()
    }

    fn evidence(instances: Vec<NatEntry>) -> TriageEvidence {
        TriageEvidence {
            captured_at: datetime!(2026-11-28 20:15 UTC),
            tiers: vec![],
            nat: NatSnapshot {
                instances,
                ..NatSnapshot::default()
            },
            nat_state: NatState::Stopped,
            nat_ips: vec![],
            dnsbl: BTreeMap::new(),
            dnsbl_checked: true,
        }
    }

    #[test]
    fn a_stopped_nat_instance_is_started_by_its_own_id_and_region() {
        let mut config = Config::default();
        config.aws.region = Some("us-east-1".into());
        let e = evidence(vec![
            instance("i-0f9e8d7c6b5a49382", "stopped"),
            instance("i-0123456789abcdef0", "running"),
        ]);
        assert_eq!(
            next_command(&verdict(Action::NatReplace), &e, &config).as_deref(),
            Some("aws ec2 start-instances --instance-ids i-0f9e8d7c6b5a49382 --region us-east-1")
        );
        // No region configured: the SDK's default, so the CLI's default too.
        assert_eq!(
            next_command(&verdict(Action::NatReplace), &e, &Config::default()).as_deref(),
            Some("aws ec2 start-instances --instance-ids i-0f9e8d7c6b5a49382")
        );
        // A running NAT (a 4.4 wave) has no single command.
        let running = evidence(vec![instance("i-0123456789abcdef0", "running")]);
        assert_eq!(
            next_command(&verdict(Action::NatReplace), &running, &config),
            None
        );
    }

    #[test]
    fn a_stale_address_map_redeploys_the_configured_smtp_in_service() {
        let config = Config::default();
        assert_eq!(
            next_command(&verdict(Action::AddressMapStale), &evidence(vec![]), &config).as_deref(),
            Some("aws ecs update-service --cluster cabal-mail --service cabal-smtp-in --force-new-deployment")
        );
        assert_eq!(
            next_command(&verdict(Action::Investigate), &evidence(vec![]), &config),
            None
        );
    }

    #[test]
    fn identifiers_that_do_not_look_like_themselves_give_no_command() {
        let config = Config::default();
        let hostile = evidence(vec![instance("i-0f9e8d7c; rm -rf /", "stopped")]);
        assert_eq!(
            next_command(&verdict(Action::NatReplace), &hostile, &config),
            None
        );
        let mut config = Config::default();
        config.cabalmail.cluster = "cabal mail $(id)".into();
        assert_eq!(
            next_command(
                &verdict(Action::AddressMapStale),
                &evidence(vec![]),
                &config
            ),
            None
        );
        assert!(is_instance_id("i-0f9e8d7c"));
        assert!(!is_instance_id("i-0f9e8d7"));
        assert!(!is_word("--profile"));
    }
}
