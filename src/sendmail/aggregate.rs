//! Sums up the delivery lines of one tier over a window into the evidence the runbooks reason
//! over and the report shows (`evidence.tiers.<tier>`): counts by status, by DSN class and code,
//! by provider, recipient domain and relay, the most frequent reply texts, and a few sample lines
//! with email local parts redacted.
//!
//! DSN classes and codes are counted over the failing lines (deferred and bounced) using each
//! line's *effective* code (`Delivery::effective_dsn`): the remote's enhanced code or the code
//! sendmail's text implies when the logged one is generic, which is what the runbook's human
//! reads. Lines without any code are counted in `failures_without_dsn`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::cap::cap_length;
use super::classify::{classify_line, Delivery, Status};
use super::providers::ProviderTable;
use crate::report::redact::redact_addresses;

/// Options of an aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregateOptions {
    /// Entries kept in each top list.
    pub top: usize,
    /// Sample lines kept.
    pub samples: usize,
    /// Longest sample or reply text kept, in bytes.
    pub max_text_bytes: usize,
    /// Show email local parts instead of `j***@gmail.com`.
    pub show_local_parts: bool,
}

impl Default for AggregateOptions {
    fn default() -> Self {
        AggregateOptions {
            top: 5,
            samples: 5,
            max_text_bytes: 400,
            show_local_parts: false,
        }
    }
}

/// Lines of one name (provider, domain, relay, reply text), split by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCount {
    pub name: String,
    pub lines: u64,
    pub sent: u64,
    pub deferred: u64,
    pub bounced: u64,
    /// Effective DSN classes of this name's failing lines.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dsn_classes: BTreeMap<String, u64>,
}

impl NamedCount {
    /// Deferred plus bounced lines: what ranks the top lists.
    pub fn failures(&self) -> u64 {
        self.deferred + self.bounced
    }
}

/// The summary of a tier's delivery lines; its fields map onto `report::TierEvidence`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierLogSummary {
    pub delivery_lines: u64,
    pub sent_lines: u64,
    pub deferred_lines: u64,
    pub bounced_lines: u64,
    pub other_lines: u64,
    /// Deferred lines (by `stat=`) that carry a `dsn=5.x.y` left from an earlier recipient: the
    /// bounced alert's metric filter (`"dsn=5"`) counts them, they are not bounces.
    #[serde(default)]
    pub dsn5_deferred_lines: u64,
    /// Effective DSN class (`4.7`) -> failing lines.
    pub dsn_classes: BTreeMap<String, u64>,
    /// Effective DSN code (`4.7.28`) -> failing lines.
    pub dsn_codes: BTreeMap<String, u64>,
    /// Failing lines without any code.
    pub failures_without_dsn: u64,
    /// Failing lines whose recipient has a known provider.
    pub failures_with_provider: u64,
    /// Ranked by failing lines, then lines.
    pub top_providers: Vec<NamedCount>,
    pub top_domains: Vec<NamedCount>,
    pub top_relays: Vec<NamedCount>,
    /// The most frequent reply texts of failing lines (redacted, capped).
    pub top_replies: Vec<NamedCount>,
    /// A few failing lines (else any delivery lines), redacted and capped.
    pub samples: Vec<String>,
}

impl TierLogSummary {
    /// The dominant effective DSN class among failing lines, with its share of them.
    pub fn dominant_class(&self) -> Option<(&str, f64)> {
        let total = self.deferred_lines + self.bounced_lines;
        let (class, count) = self
            .dsn_classes
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))?;
        (total > 0).then(|| (class.as_str(), *count as f64 / total as f64))
    }
}

/// Accumulates delivery lines.
#[derive(Debug, Clone)]
pub struct Aggregator {
    options: AggregateOptions,
    summary: TierLogSummary,
    providers: HashMap<Box<str>, NamedCount>,
    domains: HashMap<Box<str>, NamedCount>,
    relays: HashMap<Box<str>, NamedCount>,
    replies: HashMap<Box<str>, NamedCount>,
    /// (status, effective code, provider) of each sample, to keep samples varied.
    sample_keys: Vec<(Status, Option<String>, Option<String>)>,
    fallback_samples: Vec<String>,
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new(AggregateOptions::default())
    }
}

impl Aggregator {
    pub fn new(options: AggregateOptions) -> Self {
        Aggregator {
            options,
            summary: TierLogSummary::default(),
            providers: HashMap::new(),
            domains: HashMap::new(),
            relays: HashMap::new(),
            replies: HashMap::new(),
            sample_keys: Vec::new(),
            fallback_samples: Vec::new(),
        }
    }

    /// Classifies a log line (a CloudWatch event message) and adds it when it is a delivery line.
    /// Returns whether it was one.
    pub fn add_line(&mut self, line: &str, providers: &ProviderTable) -> bool {
        match classify_line(line, providers) {
            Some(delivery) => {
                self.add(&delivery, line);
                true
            }
            None => false,
        }
    }

    /// Adds a classified delivery line; `raw` is the line it came from (for samples).
    pub fn add(&mut self, delivery: &Delivery<'_>, raw: &str) {
        let s = &mut self.summary;
        s.delivery_lines += 1;
        match delivery.status {
            Status::Sent => s.sent_lines += 1,
            Status::Deferred => s.deferred_lines += 1,
            Status::Bounced => s.bounced_lines += 1,
            Status::Other => s.other_lines += 1,
        }
        if delivery.status == Status::Deferred && delivery.logged_dsn.is_some_and(|d| d.class == 5)
        {
            s.dsn5_deferred_lines += 1;
        }
        let failing = matches!(delivery.status, Status::Deferred | Status::Bounced);
        let class = delivery.effective_class().map(|c| c.to_string());
        if failing {
            match delivery.effective_dsn() {
                Some(dsn) => {
                    *s.dsn_codes.entry(dsn.to_string()).or_default() += 1;
                    if let Some(class) = &class {
                        *s.dsn_classes.entry(class.clone()).or_default() += 1;
                    }
                }
                None => s.failures_without_dsn += 1,
            }
            if delivery.provider.is_some() {
                s.failures_with_provider += 1;
            }
        }
        let class_for_names = if failing { class.as_deref() } else { None };
        if let Some(provider) = delivery.provider {
            bump(
                &mut self.providers,
                provider,
                delivery.status,
                class_for_names,
            );
        }
        if let Some(domain) = &delivery.recipient_domain {
            bump(&mut self.domains, domain, delivery.status, class_for_names);
        }
        if let Some(relay) = delivery.relay {
            bump(&mut self.relays, relay, delivery.status, class_for_names);
        }
        if failing {
            if let Some(reply) = delivery.reply {
                let text = self.clean_text(reply);
                bump(&mut self.replies, &text, delivery.status, class_for_names);
            }
        }
        self.consider_sample(delivery, raw, failing);
    }

    fn clean_text(&self, text: &str) -> String {
        // Redacted before it is cut: the cut then falls at the same place whether the line was
        // redacted before (a replay of a stored, redacted snapshot) or not.
        let text = text.trim();
        if self.options.show_local_parts {
            cap_length(text, self.options.max_text_bytes).into_owned()
        } else {
            let redacted = redact_addresses(text);
            cap_length(&redacted, self.options.max_text_bytes).into_owned()
        }
    }

    fn consider_sample(&mut self, delivery: &Delivery<'_>, raw: &str, failing: bool) {
        let wanted = self.options.samples;
        if !failing {
            if self.summary.samples.is_empty() && self.fallback_samples.len() < wanted {
                let text = self.clean_text(raw);
                self.fallback_samples.push(text);
            }
            return;
        }
        if self.summary.samples.len() >= wanted {
            return;
        }
        let key = (
            delivery.status,
            delivery.effective_dsn().map(|d| d.to_string()),
            delivery.provider.map(str::to_string),
        );
        // Prefer variety: a repeat of an already sampled kind waits until the end.
        if self.sample_keys.contains(&key) {
            return;
        }
        self.sample_keys.push(key);
        let text = self.clean_text(raw);
        self.summary.samples.push(text);
    }

    /// The summary, with its top lists ranked.
    pub fn finish(self) -> TierLogSummary {
        let top = self.options.top;
        let mut summary = self.summary;
        summary.top_providers = ranked(self.providers, top);
        summary.top_domains = ranked(self.domains, top);
        summary.top_relays = ranked(self.relays, top);
        summary.top_replies = ranked(self.replies, top);
        if summary.samples.is_empty() {
            summary.samples = self.fallback_samples;
        }
        summary
    }
}

fn bump(map: &mut HashMap<Box<str>, NamedCount>, name: &str, status: Status, class: Option<&str>) {
    if !map.contains_key(name) {
        map.insert(
            name.into(),
            NamedCount {
                name: name.to_string(),
                ..NamedCount::default()
            },
        );
    }
    let Some(entry) = map.get_mut(name) else {
        return;
    };
    entry.lines += 1;
    match status {
        Status::Sent => entry.sent += 1,
        Status::Deferred => entry.deferred += 1,
        Status::Bounced => entry.bounced += 1,
        Status::Other => {}
    }
    if let Some(class) = class {
        *entry.dsn_classes.entry(class.to_string()).or_default() += 1;
    }
}

fn ranked(map: HashMap<Box<str>, NamedCount>, top: usize) -> Vec<NamedCount> {
    let mut entries: Vec<NamedCount> = map.into_values().collect();
    entries.sort_by(|a, b| {
        b.failures()
            .cmp(&a.failures())
            .then(b.lines.cmp(&a.lines))
            .then_with(|| a.name.cmp(&b.name))
    });
    entries.truncate(top);
    entries
}

/// Aggregates many lines at once (a tier's CloudWatch messages).
pub fn aggregate_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
    providers: &ProviderTable,
    options: AggregateOptions,
) -> TierLogSummary {
    let mut aggregator = Aggregator::new(options);
    for line in lines {
        aggregator.add_line(line, providers);
    }
    aggregator.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &[&str] = &[
        "Nov 28 20:14:03 h sm-mta[1]: Q0000001: to=<john@gmail.com>, delay=00:00:02, mailer=esmtp, pri=1, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 rate limited",
        "Nov 28 20:14:04 h sm-mta[1]: Q0000002: to=<mary@gmail.com>, delay=00:00:02, mailer=esmtp, pri=1, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=4.7.28, stat=Deferred: 421-4.7.28 rate limited",
        "Nov 28 20:14:05 h sm-mta[1]: Q0000003: to=<bob@example.org>, delay=00:00:02, mailer=esmtp, pri=1, relay=mx.example.org., dsn=4.0.0, stat=Deferred: Connection refused by mx.example.org.",
        "Nov 28 20:14:06 h sm-mta[1]: Q0000004: to=<x@hotmail.com>, delay=00:00:02, mailer=esmtp, pri=1, relay=hotmail-com.olc.protection.outlook.com. [52.101.0.1], dsn=5.7.1, stat=Service unavailable",
        "Nov 28 20:14:07 h sm-mta[1]: Q0000005: to=<y@gmail.com>, delay=00:00:02, mailer=esmtp, pri=1, relay=gmail-smtp-in.l.google.com. [142.250.31.27], dsn=2.0.0, stat=Sent (OK 1 - gsmtp)",
        "Nov 28 20:14:08 h dovecot: imap-login: Login: user=<john>",
        "Nov 28 20:14:09 h sm-mta[1]: Q0000006: to=<z@example.org>, delay=00:00:02, mailer=esmtp, pri=1, stat=Deferred",
    ];

    #[test]
    fn counts_and_tops() {
        let summary = aggregate_lines(
            LINES.iter().copied(),
            &ProviderTable::builtin(),
            AggregateOptions::default(),
        );
        assert_eq!(summary.delivery_lines, 6);
        assert_eq!(summary.sent_lines, 1);
        assert_eq!(summary.deferred_lines, 4);
        assert_eq!(summary.bounced_lines, 1);
        assert_eq!(summary.dsn_classes["4.7"], 2);
        assert_eq!(summary.dsn_classes["4.4"], 1);
        assert_eq!(summary.dsn_classes["5.7"], 1);
        assert_eq!(summary.dsn_classes["4.0"], 1);
        assert_eq!(summary.dsn_codes["4.4.1"], 1);
        assert_eq!(summary.failures_with_provider, 3);
        assert_eq!(summary.top_providers[0].name, "google");
        assert_eq!(summary.top_providers[0].deferred, 2);
        assert_eq!(summary.top_providers[0].sent, 1);
        assert_eq!(summary.top_providers[1].name, "microsoft");
        assert_eq!(summary.top_domains[0].name, "gmail.com");
        assert_eq!(summary.top_relays[0].name, "gmail-smtp-in.l.google.com");
        assert_eq!(summary.top_replies[0].name, "421-4.7.28 rate limited");
        assert_eq!(summary.top_replies[0].deferred, 2);
        assert_eq!(summary.dominant_class().unwrap().0, "4.7");
        // Varied samples, local parts redacted.
        assert_eq!(summary.samples.len(), 4);
        assert!(summary.samples[0].contains("to=<j***@gmail.com>"));
        assert!(summary.samples.iter().all(|s| !s.contains("mary@")));
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["deferred_lines"], 4);
        assert_eq!(json["top_providers"][0]["name"], "google");
    }

    #[test]
    fn samples_fall_back_to_any_delivery_and_respect_privacy_flag() {
        let options = AggregateOptions {
            show_local_parts: true,
            ..AggregateOptions::default()
        };
        let summary = aggregate_lines([LINES[4]], &ProviderTable::builtin(), options);
        assert_eq!(summary.samples.len(), 1);
        assert!(summary.samples[0].contains("y@gmail.com"));
        assert_eq!(summary.dominant_class(), None);
        let empty = aggregate_lines([], &ProviderTable::builtin(), options);
        assert_eq!(empty, TierLogSummary::default());
    }
}
