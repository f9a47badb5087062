//! The operator's next step as a command line, filled in with the evidence's own identifiers
//! (`verdict.next_command`). Printed, never executed. Every identifier comes from AWS's answers
//! (NAT instances, route tables, task ids, the listed NAT IP) or from configuration (cluster,
//! services, containers, log groups, blocklists, region), never from alert labels or log text, and each must look like what it is (`i-0f9e…`, a service name) or no
//! command is given: a hostile replay snapshot cannot put shell text in front of an operator.

use super::deferred::checks;
use super::evidence::TriageEvidence;
use crate::config::Config;
use crate::report::{Action, OffendingTier, Verdict};

/// The command for the verdict's action, when its identifiers are known.
///
/// - `nat-replace`: in the zones whose egress is broken behind some task, the stopped NAT
///   instances started (`aws ec2 start-instances`); else a blackhole or missing default route
///   pointed at the zone's running NAT (`aws ec2 replace-route` / `create-route`); else a NAT
///   instance's source/destination check turned off; without zones, every stopped NAT instance.
/// - `address-map-stale`: a new deployment of smtp-in, whose tasks rebuild the map at start
///   (`aws ecs update-service --force-new-deployment`).
/// - `imap-local-delivery`, `inbound-relay`: a shell in one task of the tier over ECS Exec, to run
///   the runbook's checks there; for `inbound-relay`, in the smtp-in task whose relay lookup
///   failed, or in an imap task when imap refused port 25.
/// - `outbound-dns`: a shell in the smtp-out task whose name lookup failed.
/// - `greylisting-transient`, `remote-congestion`: smtp-out's queue, read again in one task.
/// - `blocklist-check`: the listed NAT IP (else the first NAT IP) looked up in the first
///   configured blocklist (`dig`).
/// - `deliverability`, `investigate`: the offending tier's (else smtp-out's) log lines of the
///   last 30 minutes that the alert counts (`alert_filter`: `stat=Deferred`, `dsn=5`; from the
///   runbook, never the alert), with `aws logs tail`.
pub fn next_command(
    verdict: &Verdict,
    evidence: &TriageEvidence,
    config: &Config,
    alert_filter: &str,
) -> Option<String> {
    let region = match config.aws.region.as_deref() {
        Some(region) if is_word(region) => format!(" --region {region}"),
        Some(_) => return None,
        None => String::new(),
    };
    let command = match verdict.action {
        Action::NatReplace => nat_command(evidence)?,
        Action::AddressMapStale => {
            let cluster = &config.cabalmail.cluster;
            let service = &config.cabalmail.tiers.get("smtp-in")?.service;
            if !(is_word(cluster) && is_word(service)) {
                return None;
            }
            format!(
                "aws ecs update-service --cluster {cluster} --service {service} --force-new-deployment"
            )
        }
        Action::ImapLocalDelivery => exec_command(evidence, config, "imap", "/bin/sh")?,
        Action::InboundRelay => relay_command(evidence, config)?,
        Action::OutboundDns => {
            let failed = evidence.tier("smtp-out").and_then(|f| {
                checks::dns_failed(&f.egress_checks)
                    .first()
                    .map(|c| c.task.clone())
            });
            exec_in(evidence, config, "smtp-out", failed.as_deref(), "/bin/sh")?
        }
        Action::GreylistingTransient | Action::RemoteCongestion => {
            exec_command(evidence, config, "smtp-out", "mailq")?
        }
        Action::BlocklistCheck => return blocklist_command(evidence, config),
        Action::Deliverability | Action::Investigate => {
            logs_command(verdict, config, alert_filter)?
        }
        // The other runbooks' actions: never a sendmail verdict's; their runbooks fill in
        // their own commands.
        Action::MasterPasswordSync
        | Action::UserSync
        | Action::CompromiseInvestigation
        | Action::ConsumerFix
        | Action::Rollback
        | Action::ScaleCluster
        | Action::FixEfsOwnership
        | Action::InvestigateCluster => return None,
    };
    Some(format!("{command}{region}"))
}

/// The fix of the broken zones behind some task (every tier), else start every stopped NAT
/// instance.
fn nat_command(evidence: &TriageEvidence) -> Option<String> {
    let every_tier: Vec<&str> = evidence.tiers.iter().map(|f| f.tier.as_str()).collect();
    let broken = evidence.broken_zones_with_tasks(&every_tier);
    let stopped_in = |zone_nats: Vec<&str>| -> Vec<String> {
        let mut ids: Vec<String> = evidence
            .nat
            .instances
            .iter()
            .filter(|i| i.state == "stopped" && zone_nats.contains(&i.id.as_str()))
            .map(|i| i.id.clone())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let start = |ids: Vec<String>| {
        (!ids.is_empty() && ids.iter().all(|id| is_instance_id(id)))
            .then(|| format!("aws ec2 start-instances --instance-ids {}", ids.join(" ")))
    };
    if broken.is_empty() {
        let all: Vec<&str> = evidence
            .nat
            .instances
            .iter()
            .map(|i| i.id.as_str())
            .collect();
        return start(stopped_in(all));
    }
    let zone_nats: Vec<&str> = broken
        .iter()
        .filter_map(|(_, e)| e.nat_id.as_deref())
        .collect();
    if let Some(command) = start(stopped_in(zone_nats)) {
        return Some(command);
    }
    broken.iter().find_map(|(_, egress)| {
        let nat = egress.nat_id.as_deref()?;
        let nat_runs = matches!(egress.nat_state.as_deref(), Some("running" | "available"));
        let verb = match egress.route_state.as_deref() {
            Some("blackhole") => "replace-route",
            Some("none") => "create-route",
            _ if egress.source_dest_check == Some(true) && is_instance_id(nat) => {
                return Some(format!(
                    "aws ec2 modify-instance-attribute --instance-id {nat} --no-source-dest-check"
                ))
            }
            _ => return None,
        };
        let table = egress.route_table.as_deref().filter(|t| is_aws_id(t, "rtb-"))?;
        let target = if is_instance_id(nat) {
            format!("--instance-id {nat}")
        } else if is_aws_id(nat, "nat-") {
            format!("--nat-gateway-id {nat}")
        } else {
            return None;
        };
        nat_runs.then(|| {
            format!(
                "aws ec2 {verb} --route-table-id {table} --destination-cidr-block 0.0.0.0/0 {target}"
            )
        })
    })
}

/// `inbound-relay`: where the relay check failed. imap refusing or not answering port 25 -> a
/// shell in an imap task (is its sendmail listening?); the name not resolving -> a shell in the
/// smtp-in task where it failed; no check -> a shell in smtp-in.
fn relay_command(evidence: &TriageEvidence, config: &Config) -> Option<String> {
    let checks = &evidence.tier("smtp-in")?.relay_checks;
    if let Some(failed) = checks::dns_failed(checks).first() {
        return exec_in(evidence, config, "smtp-in", Some(&failed.task), "/bin/sh");
    }
    if !checks::tcp_failed(checks).is_empty() {
        if let Some(command) = exec_command(evidence, config, "imap", "/bin/sh") {
            return Some(command);
        }
    }
    exec_command(evidence, config, "smtp-in", "/bin/sh")
}

/// ECS Exec into the first task of `tier` (ids from ECS's answers) running `command`.
fn exec_command(
    evidence: &TriageEvidence,
    config: &Config,
    tier: &str,
    command: &str,
) -> Option<String> {
    exec_in(evidence, config, tier, None, command)
}

/// ECS Exec into `preferred` when it is one of the tier's tasks, else the tier's first task.
fn exec_in(
    evidence: &TriageEvidence,
    config: &Config,
    tier: &str,
    preferred: Option<&str>,
    command: &str,
) -> Option<String> {
    let cluster = &config.cabalmail.cluster;
    let container = &config.cabalmail.tiers.get(tier)?.container;
    let tasks = &evidence.tier(tier)?.tasks;
    let task = preferred
        .and_then(|p| tasks.iter().find(|t| t.as_str() == p))
        .or_else(|| tasks.iter().find(|t| is_task_id(t)))
        .filter(|t| is_task_id(t))?;
    (is_word(cluster) && is_word(container)).then(|| {
        format!(
            "aws ecs execute-command --cluster {cluster} --task {task} --container {container} --interactive --command \"{command}\""
        )
    })
}

/// The first listed NAT IP (else the first NAT IPv4) looked up in the first configured blocklist
/// (no AWS call: no region).
fn blocklist_command(evidence: &TriageEvidence, config: &Config) -> Option<String> {
    let listed = evidence.listed_ips();
    let ip: std::net::Ipv4Addr = listed
        .iter()
        .copied()
        .chain(evidence.nat_ips.iter().map(String::as_str))
        .find_map(|ip| ip.parse().ok())?;
    let zone = config.dnsbl.zones.first().filter(|z| is_word(z))?;
    let [a, b, c, d] = ip.octets();
    Some(format!("dig +short {d}.{c}.{b}.{a}.{zone}"))
}

/// The alert's lines of the offending tier (else smtp-out) over the last 30 minutes.
fn logs_command(verdict: &Verdict, config: &Config, pattern: &str) -> Option<String> {
    let tier = match verdict.offending_tier {
        OffendingTier::Imap => "imap",
        OffendingTier::SmtpIn => "smtp-in",
        _ => "smtp-out",
    };
    let group = &config.cabalmail.tiers.get(tier)?.log_group;
    let safe = !group.is_empty()
        && group
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'#'))
        && !group.starts_with('-');
    safe.then(|| format!("aws logs tail {group} --since 30m --filter-pattern '\"{pattern}\"'"))
}

/// An ECS task id: 32 hexadecimal digits (or an older 36-character UUID).
fn is_task_id(id: &str) -> bool {
    matches!(id.len(), 32 | 36) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// An EC2 id with its prefix and 8 or 17 hexadecimal digits.
fn is_aws_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// An EC2 instance id: `i-` and 8 or 17 hexadecimal digits.
fn is_instance_id(id: &str) -> bool {
    is_aws_id(id, "i-")
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
            zones: BTreeMap::new(),
            window: None,
            history: None,
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
            next_command(&verdict(Action::NatReplace), &e, &config, "stat=Deferred").as_deref(),
            Some("aws ec2 start-instances --instance-ids i-0f9e8d7c6b5a49382 --region us-east-1")
        );
        // No region configured: the SDK's default, so the CLI's default too.
        assert_eq!(
            next_command(
                &verdict(Action::NatReplace),
                &e,
                &Config::default(),
                "stat=Deferred"
            )
            .as_deref(),
            Some("aws ec2 start-instances --instance-ids i-0f9e8d7c6b5a49382")
        );
        // A running NAT (a 4.4 wave) has no single command.
        let running = evidence(vec![instance("i-0123456789abcdef0", "running")]);
        assert_eq!(
            next_command(
                &verdict(Action::NatReplace),
                &running,
                &config,
                "stat=Deferred"
            ),
            None
        );
    }

    #[test]
    fn a_stale_address_map_redeploys_the_configured_smtp_in_service() {
        let config = Config::default();
        assert_eq!(
            next_command(&verdict(Action::AddressMapStale), &evidence(vec![]), &config, "stat=Deferred").as_deref(),
            Some("aws ecs update-service --cluster cabal-mail --service cabal-smtp-in --force-new-deployment")
        );
    }

    fn tier_with_tasks(name: &str, tasks: &[&str]) -> crate::runbook::evidence::TierFacts {
        crate::runbook::evidence::TierFacts {
            tier: name.into(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn every_action_names_its_next_look_with_identifiers_from_aws_and_configuration() {
        let mut config = Config::default();
        config.aws.region = Some("us-east-1".into());
        let mut e = evidence(vec![]);
        e.tiers = vec![
            tier_with_tasks("imap", &["9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5"]),
            tier_with_tasks("smtp-in", &["1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6"]),
            tier_with_tasks("smtp-out", &["3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8"]),
        ];
        let command = |action| next_command(&verdict(action), &e, &config, "stat=Deferred");
        assert_eq!(
            command(Action::ImapLocalDelivery).as_deref(),
            Some("aws ecs execute-command --cluster cabal-mail --task 9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5 --container imap --interactive --command \"/bin/sh\" --region us-east-1")
        );
        assert_eq!(
            command(Action::InboundRelay).as_deref(),
            Some("aws ecs execute-command --cluster cabal-mail --task 1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6 --container smtp-in --interactive --command \"/bin/sh\" --region us-east-1")
        );
        for action in [Action::GreylistingTransient, Action::RemoteCongestion] {
            assert_eq!(
                command(action).as_deref(),
                Some("aws ecs execute-command --cluster cabal-mail --task 3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8 --container smtp-out --interactive --command \"mailq\" --region us-east-1")
            );
        }
        assert_eq!(
            command(Action::Investigate).as_deref(),
            Some("aws logs tail /ecs/cabal-smtp-out --since 30m --filter-pattern '\"stat=Deferred\"' --region us-east-1")
        );
        assert_eq!(
            next_command(&verdict(Action::Deliverability), &e, &config, "dsn=5").as_deref(),
            Some("aws logs tail /ecs/cabal-smtp-out --since 30m --filter-pattern '\"dsn=5\"' --region us-east-1")
        );
        // Nothing listed and no NAT IP: no blocklist to look at.
        assert_eq!(command(Action::BlocklistCheck), None);
        e.dnsbl = BTreeMap::from([(
            "203.0.113.7".to_string(),
            vec![crate::dnsbl::ZoneVerdict {
                zone: "zen.spamhaus.org".into(),
                listing: crate::dnsbl::Listing::Listed,
                codes: vec![],
                meanings: vec![],
            }],
        )]);
        let first_zone = config.dnsbl.zones[0].clone();
        assert_eq!(
            next_command(
                &verdict(Action::BlocklistCheck),
                &e,
                &config,
                "stat=Deferred"
            ),
            Some(format!("dig +short 7.113.0.203.{first_zone}"))
        );
        // A task id that is not one (a hostile snapshot) gives no command.
        e.tiers[0].tasks = vec!["x; reboot".into()];
        assert_eq!(
            next_command(
                &verdict(Action::ImapLocalDelivery),
                &e,
                &config,
                "stat=Deferred"
            ),
            None
        );
    }

    #[test]
    fn the_follow_up_checks_choose_the_task_to_look_in() {
        use crate::runbook::followup::{ConnectCheck, DnsCheck, TcpCheck};
        let config = Config::default();
        let mut e = evidence(vec![]);
        e.tiers = vec![
            tier_with_tasks("imap", &["9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5"]),
            tier_with_tasks(
                "smtp-in",
                &[
                    "1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6",
                    "2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7",
                ],
            ),
            tier_with_tasks(
                "smtp-out",
                &[
                    "3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8",
                    "4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9",
                ],
            ),
        ];
        let check = |task: &str, dns, tcp| ConnectCheck {
            task: task.into(),
            dns,
            address: None,
            tcp,
            detail: None,
        };
        // The lookup failed in the second smtp-out task: the shell opens there.
        e.tiers[2].egress_checks = vec![
            check(
                "3c4d5e6f7a8b49c0d1e2f3a4b5c6d7e8",
                DnsCheck::Unknown,
                TcpCheck::Unknown,
            ),
            check(
                "4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9",
                DnsCheck::Failed,
                TcpCheck::Unknown,
            ),
        ];
        let command = |action, e: &TriageEvidence| {
            next_command(&verdict(action), e, &config, "stat=Deferred").unwrap_or_default()
        };
        assert!(command(Action::OutboundDns, &e)
            .contains("--task 4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9 --container smtp-out"));
        // imap refuses port 25: look in imap; the name does not resolve: in that smtp-in task.
        e.tiers[1].relay_checks = vec![check(
            "2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7",
            DnsCheck::Ok,
            TcpCheck::Failed,
        )];
        assert!(command(Action::InboundRelay, &e)
            .contains("--task 9f1c2d3e4a5b46c7a8b9c0d1e2f3a4b5 --container imap"));
        e.tiers[1].relay_checks[0].dns = DnsCheck::Failed;
        assert!(command(Action::InboundRelay, &e)
            .contains("--task 2b3c4d5e6f7a48b9c0d1e2f3a4b5c6d7 --container smtp-in"));
        // A check naming a task that is not the tier's (a hostile snapshot): the tier's first.
        e.tiers[1].relay_checks[0].task = "x; reboot".into();
        assert!(command(Action::InboundRelay, &e)
            .contains("--task 1a2b3c4d5e6f47a8b9c0d1e2f3a4b5c6 --container smtp-in"));
    }

    fn zone(nat: &str, state: &str, route: &str) -> crate::probe::ZoneEgress {
        crate::probe::ZoneEgress {
            nat_id: Some(nat.into()),
            nat_state: Some(state.into()),
            route_table: Some("rtb-0b2b2b2b2b2b2b2b2".into()),
            route_state: Some(route.into()),
            works: Some(false),
            ..Default::default()
        }
    }

    #[test]
    fn a_broken_zone_gets_its_own_fix() {
        let config = Config::default();
        let mut e = evidence(vec![
            instance("i-0a1b2c3d4e5f60718", "running"),
            instance("i-0b1c2d3e4f5a60719", "stopped"),
            instance("i-0f9e8d7c6b5a49382", "stopped"),
        ]);
        let mut out = tier_with_tasks("smtp-out", &["4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9"]);
        out.task_zones = BTreeMap::from([(
            "4d5e6f7a8b9c40d1e2f3a4b5c6d7e8f9".to_string(),
            "us-east-1b".to_string(),
        )]);
        e.tiers = vec![out];
        // The stopped NAT of the broken zone, not every stopped instance.
        e.zones = BTreeMap::from([(
            "us-east-1b".to_string(),
            zone("i-0b1c2d3e4f5a60719", "stopped", "active"),
        )]);
        let command = |e: &TriageEvidence| {
            next_command(&verdict(Action::NatReplace), e, &config, "stat=Deferred")
        };
        assert_eq!(
            command(&e).as_deref(),
            Some("aws ec2 start-instances --instance-ids i-0b1c2d3e4f5a60719")
        );
        // A blackhole route with a running NAT in the zone: point the route at it.
        e.zones.insert(
            "us-east-1b".into(),
            zone("i-0c9d8e7f6a5b40321", "running", "blackhole"),
        );
        assert_eq!(
            command(&e).as_deref(),
            Some("aws ec2 replace-route --route-table-id rtb-0b2b2b2b2b2b2b2b2 --destination-cidr-block 0.0.0.0/0 --instance-id i-0c9d8e7f6a5b40321")
        );
        e.zones.insert(
            "us-east-1b".into(),
            zone("nat-0c9d8e7f6a5b40321", "available", "none"),
        );
        assert_eq!(
            command(&e).as_deref(),
            Some("aws ec2 create-route --route-table-id rtb-0b2b2b2b2b2b2b2b2 --destination-cidr-block 0.0.0.0/0 --nat-gateway-id nat-0c9d8e7f6a5b40321")
        );
        // No running NAT to point at: no route command.
        e.zones.insert(
            "us-east-1b".into(),
            zone("i-0c9d8e7f6a5b40321", "terminated", "blackhole"),
        );
        assert_eq!(command(&e), None);
        // Source/destination check on.
        let mut check = zone("i-0c9d8e7f6a5b40321", "running", "active");
        check.source_dest_check = Some(true);
        e.zones.insert("us-east-1b".into(), check);
        assert_eq!(
            command(&e).as_deref(),
            Some("aws ec2 modify-instance-attribute --instance-id i-0c9d8e7f6a5b40321 --no-source-dest-check")
        );
        // A hostile route table id gives no command.
        let mut hostile = zone("i-0c9d8e7f6a5b40321", "running", "blackhole");
        hostile.route_table = Some("rtb-1; curl evil".into());
        e.zones.insert("us-east-1b".into(), hostile);
        assert_eq!(command(&e), None);
    }

    #[test]
    fn identifiers_that_do_not_look_like_themselves_give_no_command() {
        let config = Config::default();
        let hostile = evidence(vec![instance("i-0f9e8d7c; rm -rf /", "stopped")]);
        assert_eq!(
            next_command(
                &verdict(Action::NatReplace),
                &hostile,
                &config,
                "stat=Deferred"
            ),
            None
        );
        let mut config = Config::default();
        config.cabalmail.cluster = "cabal mail $(id)".into();
        assert_eq!(
            next_command(
                &verdict(Action::AddressMapStale),
                &evidence(vec![]),
                &config,
                "stat=Deferred"
            ),
            None
        );
        assert!(is_instance_id("i-0f9e8d7c"));
        assert!(!is_instance_id("i-0f9e8d7"));
        assert!(!is_word("--profile"));
    }
}
