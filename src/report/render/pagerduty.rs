//! The PagerDuty incident note: plain text (PagerDuty documents no markup for notes), compact,
//! the same facts as the Slack message, capped in length, and ending with a marker line that
//! names the episode and the report so the notifier can tell whether the note is already there.

use super::escape::{truncate, untrusted_plain, TRUNCATION_MARKER};
use super::{failed_steps, kebab, tier_line, Annotation, Stage};
use crate::report::sanitize::sanitize_line;

/// Longest note we send (PagerDuty states no limit; notes should stay short and link to the rest).
pub const MAX_NOTE_CHARS: usize = 4000;

/// The marker line closing a note: `[cabal-triage ep-… report 0123456789ab]`.
pub fn marker(episode_id: &str, report_digest: &str) -> String {
    format!("[cabal-triage {episode_id} report {report_digest}]")
}

/// The marker line closing a failure note: `[cabal-triage ep-… failure 0123456789ab]`.
pub fn failure_marker(episode_id: &str, error_digest: &str) -> String {
    format!("[cabal-triage {episode_id} failure {error_digest}]")
}

/// `tier smtp-out · …` -> `Tier smtp-out · …`.
pub(super) fn capitalized(line: &str) -> String {
    let mut chars = line.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The note text, ending with `marker`.
pub fn note(annotation: &Annotation<'_>, marker: &str) -> String {
    let show = annotation.show_local_parts;
    let mut lines = vec![format!(
        "cabal-triage: {}: {}",
        untrusted_plain(annotation.alert.alertname(), 200, show),
        annotation.headline()
    )];
    match annotation.stage {
        Stage::Running => lines.push("Triage is running.".into()),
        Stage::Failed(error) => {
            lines.push(format!(
                "Triage failed: {}",
                untrusted_plain(error, 500, show)
            ));
            if let Some(summary) = annotation.alert_summary() {
                lines.push(format!("Alert: {}", untrusted_plain(summary, 500, show)));
            }
            lines.push(
                "No verdict: every attempt failed, so the alert stands undiagnosed; follow the runbook by hand.".into(),
            );
        }
        Stage::NoRunbook => lines.push(super::NO_DIAGNOSIS.into()),
        Stage::Triaged(report) => {
            let verdict = &report.verdict;
            let mut parts: Vec<String> = verdict
                .fields()
                .into_iter()
                .map(|f| format!("{} {}", f.short, untrusted_plain(&f.value, 80, show)))
                .collect();
            parts.push(format!("action {}", kebab(&verdict.action())));
            parts.push(format!("confidence {}", kebab(&verdict.confidence())));
            lines.push(capitalized(&parts.join(" · ")));
            if !verdict.summary().trim().is_empty() {
                lines.push(format!(
                    "Verdict: {}",
                    untrusted_plain(verdict.summary(), 600, show)
                ));
            }
            if let Some(command) = verdict.next_command() {
                lines.push(format!("Next: {}", truncate(&sanitize_line(command), 300)));
            }
            for line in report.evidence.highlights.iter().take(8) {
                lines.push(untrusted_plain(line, 300, show));
            }
            for (name, tier) in &report.evidence.tiers {
                lines.push(untrusted_plain(
                    &format!("{name}: {}", tier_line(tier)),
                    300,
                    show,
                ));
            }
            for (head, error) in failed_steps(report).into_iter().take(10) {
                let line = if error.is_empty() {
                    head
                } else {
                    format!("{head}: {error}")
                };
                lines.push(format!(
                    "Failed step: {}",
                    untrusted_plain(&line, 300, show)
                ));
            }
        }
    }
    if let Some(url) = annotation.runbook_url() {
        lines.push(format!("Runbook: {url}"));
    }
    for (label, url) in &annotation.links {
        if let Some(url) = super::escape::safe_link_url(url) {
            lines.push(format!("{label}: {url}"));
        }
    }
    if let Some(url) = &annotation.episode_url {
        lines.push(format!("Episode: {url}"));
    }
    let mut body = lines.join("\n");
    let room = MAX_NOTE_CHARS - marker.chars().count() - 1;
    if body.chars().count() > room {
        let keep = room - TRUNCATION_MARKER.chars().count();
        body = body.chars().take(keep).collect::<String>() + TRUNCATION_MARKER;
    }
    format!("{body}\n{marker}")
}
