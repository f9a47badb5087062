//! From a replay snapshot to typed evidence (pure): per tier the queue depth from `mailq`, the
//! delivery lines summed up with their effective DSN classes, the greylisting replies, the
//! longest delay of policy deferrals and the virtusertable's age; the NAT state and public IPs;
//! the DNSBL verdicts. The rules read only this, so a replay decides exactly as the live triage.
//!
//! A line's effective class is `Delivery::effective_dsn` (the remote reply's enhanced code when
//! sendmail logged a generic one, or the code sendmail's text implies), and for a bare
//! `dsn=4.0.0, stat=Deferred` (sendmail's host-status cache: a later message to a host that
//! already failed in the same queue run) the last known status of the same relay in the window.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use time::OffsetDateTime;

use super::followup::{self, ConnectCheck, LocalCheck};
use crate::config::Config;
use crate::dnsbl::{interpret_all, Listing, ZoneVerdict};
use crate::probe::snapshot::{ExecRecord, NatSnapshot, Snapshot, TierSnapshot, Window};
use crate::probe::{nat_state, zone_egress, ZoneEgress};
use crate::report::history::AlertHistory;
use crate::report::NatState;
use crate::sendmail::{
    classify_line, parse_mailq, parse_message, parse_syslog, AggregateOptions, Aggregator, Dsn,
    ProviderTable, SendmailMessage, Status, TierLogSummary,
};

/// The record names of the exec probes.
pub const MAILQ: &str = "mailq";
pub const VIRTUSERTABLE: &str = "virtusertable";

/// What is known about one tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TierFacts {
    pub tier: String,
    /// Queue depth: shared queues count once (the largest answer), own queues add up. None when
    /// no task answered.
    pub queue: Option<u64>,
    /// Some task did not answer (the depth is a lower bound, or unknown).
    pub queue_partial: bool,
    pub queue_tasks_answered: usize,
    pub queue_tasks: usize,
    /// Why tasks did not answer.
    pub queue_problems: Vec<String>,
    /// On a tier configured with queues of its own: every answering task (two or more) printed
    /// the same queue.
    pub identical_queues: Option<IdenticalQueues>,
    /// The log scan of the tier failed (the summary holds what was read before).
    pub log_error: Option<String>,
    pub log_truncated: bool,
    /// The newest event of the tier's log group (any line), epoch ms; None when unknown.
    pub newest_log_event_ms: Option<i64>,
    /// Its age at capture time, seconds (0 when the clock says it is from the future).
    pub newest_log_age_secs: Option<u64>,
    /// Why the newest event could not be read.
    pub newest_log_event_error: Option<String>,
    pub summary: TierLogSummary,
    /// Deferred lines whose remote reply says it greylists.
    pub greylist_lines: u64,
    /// Longest `delay=` of the tier's 4.7 deferrals, in seconds.
    pub longest_policy_delay_secs: Option<u64>,
    /// The virtusertable, when the bounced runbook read it.
    pub virtusertable: Option<Virtusertable>,
    pub virtusertable_problems: Vec<String>,
    /// The ids of the tier's running tasks (ECS's answer), in discovery order.
    pub tasks: Vec<String>,
    /// Task id -> its availability zone, where known.
    pub task_zones: BTreeMap<String, String>,
    /// Tasks whose ECS Exec command (any) failed to answer.
    pub exec_failed_tasks: Vec<String>,
    /// Task id (from the CloudWatch stream name, `<tier>/<container>/<task>`) -> its 4.4
    /// deferrals in the window.
    pub four_four_by_task: BTreeMap<String, u64>,
    /// The follow-up checks run in the tier's tasks (`runbook::followup`), one per task; empty
    /// when not run (an older snapshot, another tier, the checks off).
    pub egress_checks: Vec<ConnectCheck>,
    pub relay_checks: Vec<ConnectCheck>,
    pub local_checks: Vec<LocalCheck>,
    /// The CloudWatch timestamps (epoch ms) of the tier's bounced lines in the window, in order.
    pub bounced_at_ms: Vec<i64>,
}

impl TierFacts {
    /// Whether the log evidence is complete.
    pub fn logs_known(&self) -> bool {
        self.log_error.is_none()
    }

    /// Deferred lines, None when the scan failed and found none.
    pub fn deferred_lines(&self) -> Option<u64> {
        (self.logs_known() || self.summary.deferred_lines > 0)
            .then_some(self.summary.deferred_lines)
    }

    /// Bounced lines, None when the scan failed and found none.
    pub fn bounced_lines(&self) -> Option<u64> {
        (self.logs_known() || self.summary.bounced_lines > 0).then_some(self.summary.bounced_lines)
    }
}

/// Tasks of a tier configured with queues of their own that printed the same queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IdenticalQueues {
    pub tasks: usize,
    /// Each task's depth.
    pub depth: u64,
    /// The same queued messages were listed (queue ids): the queue is shared, and counted once.
    /// Without listings (`mailq | tail -1`) only the depths agree: said, still added up.
    pub same_messages: bool,
}

/// The oldest virtusertable among a tier's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Virtusertable {
    pub lines: u64,
    /// Modification time, epoch seconds.
    pub modified_at: i64,
    /// Age at capture time, seconds (0 when the clock says the file is from the future).
    pub age_secs: u64,
}

/// Everything the rules read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriageEvidence {
    #[serde(with = "time::serde::rfc3339")]
    pub captured_at: OffsetDateTime,
    /// In report order.
    pub tiers: Vec<TierFacts>,
    pub nat: NatSnapshot,
    pub nat_state: NatState,
    pub nat_ips: Vec<String>,
    /// IP -> per-zone verdict.
    pub dnsbl: BTreeMap<String, Vec<ZoneVerdict>>,
    /// Whether the DNSBL check ran at all.
    pub dnsbl_checked: bool,
    /// Egress per availability zone (`probe::zones`).
    pub zones: BTreeMap<String, ZoneEgress>,
    /// The log window the lines were read in.
    pub window: Option<Window>,
    /// The alert's earlier episodes (`report::history`); None when not asked.
    pub history: Option<AlertHistory>,
}

impl TriageEvidence {
    pub fn tier(&self, name: &str) -> Option<&TierFacts> {
        self.tiers.iter().find(|t| t.tier == name)
    }

    /// NAT IPs listed in some zone.
    pub fn listed_ips(&self) -> Vec<&str> {
        self.dnsbl
            .iter()
            .filter(|(_, zones)| zones.iter().any(|z| z.listing == Listing::Listed))
            .map(|(ip, _)| ip.as_str())
            .collect()
    }

    /// (IP, zone, code) of every lookup the blocklist refused (127.255.255.x: Spamhaus refuses
    /// queries that come through public or cloud resolvers, or too many of them).
    pub fn refused_lookups(&self) -> Vec<(&str, &str, &str)> {
        self.dnsbl
            .iter()
            .flat_map(|(ip, zones)| {
                zones.iter().flat_map(move |z| {
                    z.codes
                        .iter()
                        .filter(|c| c.starts_with("127.255.255."))
                        .map(move |c| (ip.as_str(), z.zone.as_str(), c.as_str()))
                })
            })
            .collect()
    }

    /// Whether some zone could not answer for some NAT IP.
    pub fn dnsbl_incomplete(&self) -> bool {
        !self.dnsbl_checked
            || self
                .dnsbl
                .values()
                .any(|zones| zones.iter().any(|z| z.listing == Listing::Unknown))
    }

    /// Whether the NAT lookup failed.
    pub fn nat_unknown(&self) -> bool {
        self.nat_state == NatState::Unknown
    }

    /// The tasks (tier, task id) of the given tiers running in `zone`, in report order.
    pub fn tasks_in_zone<'a>(&'a self, zone: &str, tiers: &[&str]) -> Vec<(&'a str, &'a str)> {
        self.tiers
            .iter()
            .filter(|f| tiers.contains(&f.tier.as_str()))
            .flat_map(|f| {
                f.task_zones
                    .iter()
                    .filter(|(_, z)| z.as_str() == zone)
                    .map(move |(task, _)| (f.tier.as_str(), task.as_str()))
            })
            .collect()
    }

    /// The zones whose egress is broken and where a task of the given tiers runs.
    pub fn broken_zones_with_tasks(&self, tiers: &[&str]) -> Vec<(&str, &ZoneEgress)> {
        self.zones
            .iter()
            .filter(|(zone, egress)| egress.broken() && !self.tasks_in_zone(zone, tiers).is_empty())
            .map(|(zone, egress)| (zone.as_str(), egress))
            .collect()
    }

    /// The NAT a public IP belongs to (its Name, else id) and that NAT's zone: by the NAT's own
    /// public IP, or through the Elastic IP's association (instance or interface).
    pub fn ip_owner(&self, ip: &str) -> Option<(String, Option<String>)> {
        let nats = || self.nat.instances.iter().chain(self.nat.gateways.iter());
        let owner = nats()
            .find(|e| e.public_ip.as_deref() == Some(ip))
            .or_else(|| {
                let address = self
                    .nat
                    .addresses
                    .iter()
                    .flatten()
                    .find(|a| a.public_ip == ip)?;
                nats().find(|e| {
                    address.instance_id.as_deref() == Some(e.id.as_str())
                        || address
                            .network_interface_id
                            .as_ref()
                            .is_some_and(|n| e.network_interfaces.contains(n))
                })
            })?;
        Some((
            owner.name.clone().unwrap_or_else(|| owner.id.clone()),
            owner.availability_zone.clone(),
        ))
    }

    /// Whether some zone's egress works.
    pub fn some_zone_works(&self) -> bool {
        self.zones.values().any(|z| z.works == Some(true))
    }
}

/// Builds the evidence from a snapshot.
pub fn build(snapshot: &Snapshot, config: &Config, providers: &ProviderTable) -> TriageEvidence {
    let options = AggregateOptions {
        show_local_parts: config.privacy.show_local_parts,
        ..AggregateOptions::default()
    };
    let empty = TierSnapshot::default();
    let tiers = config
        .cabalmail
        .tiers_in_order()
        .map(|(name, tier)| {
            let recorded = snapshot.tiers.get(name).unwrap_or(&empty);
            tier_facts(
                name,
                tier.shared_queue,
                recorded,
                snapshot.captured_at,
                providers,
                options,
            )
        })
        .collect();
    let nat = snapshot.nat.clone().unwrap_or_else(|| NatSnapshot {
        error: Some("the NAT was not looked up".into()),
        ..NatSnapshot::default()
    });
    let nat_ips: Vec<String> = crate::runbook::gather::nat_public_ips(&nat)
        .iter()
        .map(|ip| ip.to_string())
        .collect();
    let ipv4: Vec<String> = nat_ips
        .iter()
        .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
        .cloned()
        .collect();
    let dnsbl = match &snapshot.dnsbl {
        Some(answers) => interpret_all(answers, &ipv4, &config.dnsbl.zones),
        None => BTreeMap::new(),
    };
    TriageEvidence {
        captured_at: snapshot.captured_at,
        tiers,
        zones: zone_egress(&nat),
        nat_state: nat_state(&nat),
        nat,
        nat_ips,
        dnsbl_checked: snapshot.dnsbl.is_some() || ipv4.is_empty(),
        dnsbl,
        window: snapshot.window,
        history: snapshot.history.clone(),
    }
}

fn tier_facts(
    name: &str,
    shared_queue: bool,
    recorded: &TierSnapshot,
    captured_at: OffsetDateTime,
    providers: &ProviderTable,
    options: AggregateOptions,
) -> TierFacts {
    let mut facts = TierFacts {
        tier: name.to_string(),
        log_error: recorded.log_error.clone(),
        log_truncated: recorded.log_truncated,
        newest_log_event_ms: recorded.newest_log_event_ms,
        newest_log_age_secs: recorded.newest_log_event_ms.map(|ms| {
            let captured_ms = captured_at.unix_timestamp_nanos() / 1_000_000;
            u64::try_from((captured_ms - i128::from(ms)) / 1000).unwrap_or(0)
        }),
        newest_log_event_error: recorded.newest_log_event_error.clone(),
        ..TierFacts::default()
    };
    let exec = recorded.exec.as_deref().unwrap_or(&[]);
    facts.tasks = match (&recorded.task_details, &recorded.tasks) {
        (Some(details), _) => details.iter().map(|t| t.id.clone()).collect(),
        (None, Some(arns)) => arns
            .iter()
            .map(|a| crate::probe::tasks::task_id(a).to_string())
            .collect(),
        (None, None) => Vec::new(),
    };
    facts.task_zones = recorded
        .task_details
        .iter()
        .flatten()
        .filter_map(|t| Some((t.id.clone(), t.availability_zone.clone()?)))
        .collect();
    facts.exec_failed_tasks = exec
        .iter()
        .filter(|r| r.error.is_some())
        .map(|r| r.task.clone())
        .collect();
    facts.exec_failed_tasks.sort();
    facts.exec_failed_tasks.dedup();
    queue_facts(&mut facts, shared_queue, exec);
    virtusertable_facts(&mut facts, exec, captured_at);
    facts.egress_checks = followup::connect_checks(exec, followup::EGRESS);
    facts.relay_checks = followup::connect_checks(exec, followup::RELAY);
    facts.local_checks = followup::local_checks(exec);
    let mut events: Vec<_> = recorded.log_events.iter().flatten().collect();
    events.sort_by_key(|e| e.timestamp);
    let mut aggregator = Aggregator::new(options);
    // Relay -> the last specific code it answered in the window.
    let mut last_by_relay: HashMap<String, Dsn> = HashMap::new();
    let mut longest_policy_delay: Option<u64> = None;
    for event in events {
        let Some(mut delivery) = classify_line(&event.message, providers) else {
            continue;
        };
        let bare_deferral = delivery.status == Status::Deferred
            && delivery.dsn == Some(Dsn::new(4, 0, 0))
            && delivery.reply_dsn.is_none()
            && delivery.text_dsn.is_none();
        if bare_deferral {
            if let Some(last) = delivery.relay.and_then(|r| last_by_relay.get(r)) {
                // Same class (4): `effective_dsn` then takes it over the generic 4.0.0.
                delivery.reply_dsn = Some(*last);
            }
        } else if let (Some(relay), Some(code)) = (delivery.relay, delivery.effective_dsn()) {
            if code.subject != 0 {
                last_by_relay.insert(relay.to_string(), code);
            }
        }
        if delivery.status == Status::Deferred {
            if delivery.effective_class().map(|c| (c.class, c.subject)) == Some((4, 4)) {
                let task = event.log_stream.rsplit('/').next().unwrap_or_default();
                *facts.four_four_by_task.entry(task.to_string()).or_default() += 1;
            }
            if delivery.reply.is_some_and(says_greylisting) {
                facts.greylist_lines += 1;
            }
            if delivery.effective_class().map(|c| (c.class, c.subject)) == Some((4, 7)) {
                if let SendmailMessage::Delivery(line) =
                    parse_message(parse_syslog(&event.message).message)
                {
                    if let Some(secs) = line.delay.and_then(delay_secs) {
                        longest_policy_delay =
                            Some(longest_policy_delay.map_or(secs, |l| l.max(secs)));
                    }
                }
            }
        }
        if delivery.status == Status::Bounced {
            facts.bounced_at_ms.push(event.timestamp);
        }
        aggregator.add(&delivery, &event.message);
    }
    facts.summary = aggregator.finish();
    facts.longest_policy_delay_secs = longest_policy_delay;
    facts
}

fn queue_facts(facts: &mut TierFacts, shared_queue: bool, exec: &[ExecRecord]) {
    let mut depths = Vec::new();
    let mut listings: Vec<Vec<String>> = Vec::new();
    for record in exec.iter().filter(|r| r.probe == MAILQ) {
        facts.queue_tasks += 1;
        if let Some(error) = &record.error {
            facts
                .queue_problems
                .push(format!("task {}: {error}", record.task));
            continue;
        }
        let report = record.output.as_deref().map(parse_mailq);
        match report.as_ref().and_then(|r| r.total_requests) {
            Some(depth) => {
                depths.push(depth);
                let mut ids: Vec<String> = report
                    .iter()
                    .flat_map(|r| r.messages.iter().map(|m| m.queue_id.clone()))
                    .collect();
                ids.sort_unstable();
                listings.push(ids);
            }
            None => facts.queue_problems.push(format!(
                "task {}: mailq printed no queue depth (exit status {})",
                record.task,
                record
                    .exit_status
                    .map_or_else(|| "unknown".to_string(), |s| s.to_string())
            )),
        }
    }
    facts.queue_tasks_answered = depths.len();
    facts.queue_partial = depths.len() < facts.queue_tasks;
    if !shared_queue {
        facts.identical_queues = identical_queues(&depths, &listings);
    }
    let counted_once = shared_queue || facts.identical_queues.is_some_and(|i| i.same_messages);
    if !depths.is_empty() {
        facts.queue = Some(if counted_once {
            depths.iter().copied().max().unwrap_or(0)
        } else {
            depths.iter().sum()
        });
    }
}

/// Two or more answers, all with the same non-zero depth: the same queued messages when the
/// output lists them (and all lists agree), else only the same depth.
fn identical_queues(depths: &[u64], listings: &[Vec<String>]) -> Option<IdenticalQueues> {
    let (&first, rest) = depths.split_first()?;
    if rest.is_empty() || first == 0 || rest.iter().any(|&d| d != first) {
        return None;
    }
    let listed = listings.iter().all(|l| !l.is_empty());
    if listed && listings.iter().any(|l| *l != listings[0]) {
        return None;
    }
    Some(IdenticalQueues {
        tasks: depths.len(),
        depth: first,
        same_messages: listed,
    })
}

fn virtusertable_facts(facts: &mut TierFacts, exec: &[ExecRecord], captured_at: OffsetDateTime) {
    for record in exec.iter().filter(|r| r.probe == VIRTUSERTABLE) {
        if let Some(error) = &record.error {
            facts
                .virtusertable_problems
                .push(format!("task {}: {error}", record.task));
            continue;
        }
        match record.output.as_deref().and_then(parse_virtusertable) {
            Some((lines, modified_at)) => {
                let age_secs =
                    u64::try_from(captured_at.unix_timestamp().saturating_sub(modified_at))
                        .unwrap_or(0);
                let found = Virtusertable {
                    lines,
                    modified_at,
                    age_secs,
                };
                // The oldest copy decides: one stuck task is enough to bounce mail.
                if facts
                    .virtusertable
                    .is_none_or(|current| found.age_secs > current.age_secs)
                {
                    facts.virtusertable = Some(found);
                }
            }
            None => facts.virtusertable_problems.push(format!(
                "task {}: the virtusertable command printed no line count and modification time (runbooks.virtusertable_command)",
                record.task
            )),
        }
    }
}

/// The output of `wc -l FILE && date -r FILE +%s`: `1234 /etc/mail/virtusertable`, then the
/// modification time in epoch seconds. None when it is not that.
pub fn parse_virtusertable(output: &str) -> Option<(u64, i64)> {
    let mut lines = output
        .split('\n')
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty());
    let count = lines.next()?.split_whitespace().next()?.parse().ok()?;
    let modified = lines.next()?.parse().ok()?;
    Some((count, modified))
}

/// Whether a remote reply says it greylists (`Greylisted`, `greylisting`, postgrey's text).
pub fn says_greylisting(reply: &str) -> bool {
    let lower = reply.to_ascii_lowercase();
    ["greylist", "graylist", "postgrey", "grey-list", "gray-list"]
        .iter()
        .any(|marker| lower.contains(marker))
}

/// Sendmail's `delay=` (`00:05:00`, `1+02:03:04` with days) in seconds.
pub fn delay_secs(text: &str) -> Option<u64> {
    let (days, clock) = match text.split_once('+') {
        Some((days, clock)) => (days.trim().parse::<u64>().ok()?, clock),
        None => (0, text),
    };
    let mut parts = clock.trim().split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let s: u64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || m > 59 || s > 59 {
        return None;
    }
    days.checked_mul(86_400)?
        .checked_add(h.checked_mul(3600)?)?
        .checked_add(m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::snapshot::LogEvent;
    use proptest::prelude::*;

    fn event(ms: i64, message: &str) -> LogEvent {
        LogEvent {
            timestamp: ms,
            message: message.into(),
            log_stream: "smtp-out/smtp-out/0a1b".into(),
        }
    }

    #[test]
    fn bare_4_0_0_takes_the_relays_last_known_status() {
        let mut snapshot = Snapshot::new(time::macros::datetime!(2026-11-28 20:15 UTC));
        snapshot.tier_mut("smtp-out").log_events = Some(vec![
            // Out of order on purpose: the timestamps decide.
            event(3, "Nov 28 20:14:05 h sm-mta[9]: 5ASKE3aB000003: to=<c@gmail.com>, delay=00:00:00, mailer=esmtp, pri=1, relay=gmail-smtp-in.l.google.com., dsn=4.0.0, stat=Deferred"),
            event(1, "Nov 28 20:14:03 h sm-mta[9]: 5ASKE3aB000001: to=<a@gmail.com>, delay=00:00:02, mailer=esmtp, pri=1, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 unusual rate"),
            event(2, "Nov 28 20:14:04 h sm-mta[9]: 5ASKE3aB000002: to=<b@example.org>, delay=00:00:00, mailer=esmtp, pri=1, relay=mx.example.org., dsn=4.0.0, stat=Deferred"),
        ]);
        let evidence = build(&snapshot, &Config::default(), &ProviderTable::builtin());
        let out = evidence.tier("smtp-out").unwrap();
        assert_eq!(out.summary.deferred_lines, 3);
        assert_eq!(
            out.summary.dsn_classes["4.7"], 2,
            "{:?}",
            out.summary.dsn_classes
        );
        // No earlier status for mx.example.org: it stays generic.
        assert_eq!(out.summary.dsn_classes["4.0"], 1);
    }

    #[test]
    fn queue_depth_shared_or_summed_and_problems_named() {
        let record = |task: &str, output: Option<&str>, error: Option<&str>| ExecRecord {
            task: task.into(),
            probe: MAILQ.into(),
            output: output.map(str::to_string),
            exit_status: Some(0),
            error: error.map(str::to_string),
        };
        let exec = vec![
            record("a", Some("Total requests: 40\r\n"), None),
            record("b", Some("Total requests: 42\r\n"), None),
            record("c", None, Some("ECS Exec timed out after 10 s")),
            record("d", Some("garbage"), None),
        ];
        let mut shared = TierFacts::default();
        queue_facts(&mut shared, true, &exec);
        assert_eq!(shared.queue, Some(42));
        assert!(shared.queue_partial);
        assert_eq!(shared.queue_problems.len(), 2);
        let mut own = TierFacts::default();
        queue_facts(&mut own, false, &exec[..2]);
        assert_eq!(own.queue, Some(82));
        assert!(!own.queue_partial);
        let mut none = TierFacts::default();
        queue_facts(&mut none, false, &exec[2..]);
        assert_eq!(none.queue, None);
        assert_eq!(own.identical_queues, None);
    }

    #[test]
    fn identical_listings_on_a_tier_configured_not_shared_are_said_and_counted_once() {
        let record = |task: &str, output: &str| ExecRecord {
            task: task.into(),
            probe: MAILQ.into(),
            output: Some(output.to_string()),
            exit_status: Some(0),
            error: None,
        };
        // Real sendmail 8.17 listings (tests/fixtures/mailq).
        let same = include_str!("../../tests/fixtures/mailq/recorded-deferred.txt");
        let other = include_str!("../../tests/fixtures/mailq/recorded-postmaster.txt");
        let depth = parse_mailq(same).total_requests.unwrap();
        assert!(depth > 0);
        let exec = vec![record("a", same), record("b", same)];
        let mut f = TierFacts::default();
        queue_facts(&mut f, false, &exec);
        assert_eq!(
            f.identical_queues,
            Some(IdenticalQueues {
                tasks: 2,
                depth,
                same_messages: true
            })
        );
        assert_eq!(f.queue, Some(depth));
        // Different messages: queues of their own, added up.
        let exec = vec![record("a", same), record("b", other)];
        let mut f = TierFacts::default();
        queue_facts(&mut f, false, &exec);
        let other_depth = parse_mailq(other).total_requests.unwrap();
        assert_eq!(
            (f.identical_queues, f.queue),
            (None, Some(depth + other_depth))
        );
        // `mailq | tail -1`: only depths; said, still added up.
        let exec = vec![
            record("a", "Total requests: 7\r\n"),
            record("b", "Total requests: 7\r\n"),
        ];
        let mut f = TierFacts::default();
        queue_facts(&mut f, false, &exec);
        assert_eq!(f.identical_queues.map(|i| i.same_messages), Some(false));
        assert_eq!(f.queue, Some(14));
        // A tier configured shared is never "identical": that is what it is.
        let mut f = TierFacts::default();
        queue_facts(&mut f, true, &exec);
        assert_eq!((f.identical_queues, f.queue), (None, Some(7)));
        // Empty queues say nothing.
        let exec = vec![
            record("a", "Total requests: 0\r\n"),
            record("b", "Total requests: 0\r\n"),
        ];
        let mut f = TierFacts::default();
        queue_facts(&mut f, false, &exec);
        assert_eq!(f.identical_queues, None);
    }

    #[test]
    fn virtusertable_output_and_age() {
        assert_eq!(
            parse_virtusertable("1234 /etc/mail/virtusertable\r\n1764350000\r\n"),
            Some((1234, 1_764_350_000))
        );
        assert_eq!(
            parse_virtusertable("wc: /etc/mail/virtusertable: No such file\n"),
            None
        );
        assert_eq!(parse_virtusertable(""), None);
        let at = OffsetDateTime::from_unix_timestamp(1_764_360_000).unwrap();
        let exec = vec![
            ExecRecord {
                task: "a".into(),
                probe: VIRTUSERTABLE.into(),
                output: Some("10 /etc/mail/virtusertable\n1764359000\n".into()),
                exit_status: Some(0),
                error: None,
            },
            ExecRecord {
                task: "b".into(),
                probe: VIRTUSERTABLE.into(),
                output: Some("10 /etc/mail/virtusertable\n1764300000\n".into()),
                exit_status: Some(0),
                error: None,
            },
        ];
        let mut facts = TierFacts::default();
        virtusertable_facts(&mut facts, &exec, at);
        assert_eq!(facts.virtusertable.unwrap().age_secs, 60_000);
    }

    #[test]
    fn greylisting_words_and_delays() {
        assert!(says_greylisting("451 4.7.1 <a@b>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/help/b.html"));
        assert!(says_greylisting(
            "450 4.2.0 greylisting in action, please come back later"
        ));
        assert!(!says_greylisting(
            "421-4.7.28 unusual rate of unsolicited mail"
        ));
        assert_eq!(delay_secs("00:05:00"), Some(300));
        assert_eq!(delay_secs("2+01:00:01"), Some(2 * 86_400 + 3601));
        assert_eq!(delay_secs("00:61:00"), None);
        assert_eq!(delay_secs("x"), None);
    }

    proptest! {
        #[test]
        fn hostile_exec_output_never_panics(text in "\\PC{0,200}") {
            let _ = parse_virtusertable(&text);
            let _ = delay_secs(&text);
            let _ = says_greylisting(&text);
        }
    }
}
