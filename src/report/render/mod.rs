//! Rendering an episode's annotation for people: Slack Block Kit (`slack`), PagerDuty note text
//! (`pagerduty`) and plain terminal text (`text`). Pure functions from data to data; the
//! notifiers in `crate::notify` send what these return.
//!
//! Every string that came from outside (labels, annotations, log lines, remote servers' replies,
//! step errors) goes through `escape`: escaped for mrkdwn where Slack parses it, capped in length,
//! with email local parts redacted unless `privacy.show_local_parts` is set.

pub mod escape;
pub mod pagerduty;
pub mod phone;
pub mod slack;
pub mod text;

use crate::alert::{AlertStatus, WebhookAlert};
use crate::report::{Report, StepOutcome, TierEvidence};

/// How far the triage of an episode has come.
#[derive(Debug, Clone, Copy)]
pub enum Stage<'a> {
    /// A worker is running the runbook.
    Running,
    /// The report is in.
    Triaged(&'a Report),
    /// Every attempt failed; the last error.
    Failed(&'a str),
    /// No runbook exists for the alertname: the alert is shown as it came, undiagnosed.
    NoRunbook,
}

/// What an alert without a runbook says instead of a verdict.
pub const NO_DIAGNOSIS: &str = "No automatic diagnosis for this alert.";

/// Everything a rendering shows about one episode.
#[derive(Debug, Clone)]
pub struct Annotation<'a> {
    pub episode_id: &'a str,
    pub alert: &'a WebhookAlert,
    /// The episode's status (resolved once any notification said so).
    pub status: AlertStatus,
    /// When the episode resolved.
    pub ends_at: Option<time::OffsetDateTime>,
    pub stage: Stage<'a>,
    /// Notifications of this episode after the first.
    pub repeats: u64,
    /// Link to `GET /api/v1/episodes/{id}` when `server.public_url` is set.
    pub episode_url: Option<String>,
    /// Links to the evidence, `(label, url)`: built from configuration and AWS answers only
    /// (never from the alert), e.g. the CloudWatch Logs Insights query, the silence page.
    pub links: Vec<(String, String)>,
    pub show_local_parts: bool,
}

impl<'a> Annotation<'a> {
    /// The runbook link from the alert's `runbook_url` annotation, when it is a safe URL.
    pub fn runbook_url(&self) -> Option<&'a str> {
        self.alert
            .annotations
            .get("runbook_url")
            .and_then(|url| escape::safe_link_url(url))
    }

    /// The alert's own description: the `summary` annotation, else `description`.
    pub fn alert_summary(&self) -> Option<&'a str> {
        self.alert
            .annotations
            .get("summary")
            .or_else(|| self.alert.annotations.get("description"))
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())
    }

    /// One line saying where the triage stands, in words (no untrusted text).
    pub fn headline(&self) -> String {
        let stage = match self.stage {
            Stage::Running => "triage running".to_string(),
            Stage::Triaged(report) => format!(
                "{} ({} confidence)",
                kebab(&report.verdict.action()),
                kebab(&report.verdict.confidence())
            ),
            Stage::Failed(_) => "triage failed".to_string(),
            Stage::NoRunbook => "no runbook".to_string(),
        };
        match self.status {
            AlertStatus::Resolved => format!("RESOLVED: {stage}"),
            AlertStatus::Firing => stage,
        }
    }

    /// The alert's `description` annotation when the summary is something else.
    pub fn alert_description(&self) -> Option<&'a str> {
        let description = self
            .alert
            .annotations
            .get("description")
            .map(String::as_str)
            .filter(|s| !s.trim().is_empty())?;
        (self.alert_summary() != Some(description)).then_some(description)
    }

    /// The alert's labels, sorted by name, as `name=value` (untrusted: the caller escapes).
    pub fn label_pairs(&self) -> Vec<String> {
        let mut labels: Vec<(&String, &String)> = self.alert.labels.iter().collect();
        labels.sort();
        labels
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect()
    }

    /// The Alertmanager link back to the source, when safe.
    pub fn generator_url(&self) -> Option<&'a str> {
        escape::safe_link_url(&self.alert.generator_url)
    }
}

/// A serde enum's wire name (`smtp-out`, `blocklist-check`): the report contract's words.
pub fn kebab<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => "unknown".to_string(),
    }
}

/// A tier's evidence on one line: `queue 42 · deferred 118 · bounced 0 · DSN 4.7×110 4.4×8`.
pub fn tier_line(tier: &TierEvidence) -> String {
    let number = |n: Option<u64>| n.map_or_else(|| "unknown".to_string(), |n| n.to_string());
    let mut line = format!(
        "queue {} · deferred {} · bounced {}",
        number(tier.queue_requests),
        number(tier.deferred_lines),
        number(tier.bounced_lines)
    );
    if !tier.dsn_classes.is_empty() {
        let mut classes: Vec<(&String, &u64)> = tier.dsn_classes.iter().collect();
        classes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        line.push_str(" · DSN");
        for (class, count) in classes.into_iter().take(5) {
            line.push_str(&format!(" {class}×{count}"));
        }
    }
    line
}

/// The steps that did not succeed, as `name: outcome after N ms: error` lines (untrusted error
/// text is left to the caller to escape).
pub fn failed_steps(report: &Report) -> Vec<(String, String)> {
    report
        .steps
        .iter()
        .filter(|step| !matches!(step.outcome, StepOutcome::Ok | StepOutcome::Skipped))
        .map(|step| {
            let head = format!(
                "{}: {} after {} ms",
                step.name,
                kebab(&step.outcome),
                step.ms
            );
            (head, step.error.clone().unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod tests;
