//! The short annotation for phone notifications (ntfy, Pushover): a title from the alertname and
//! the verdict, a body of a few plain lines (the verdict's summary and tier, or what failed, or
//! the alert's own summary when there is no runbook), and the links worth a tap. Plain text:
//! untrusted text goes through the one sanitizer and the one redactor (`escape::untrusted_plain`)
//! and everything is capped to the destination's limits, which the caller passes.

use super::escape::{safe_link_url, truncate, untrusted_plain};
use super::{kebab, Annotation, Stage, NO_DIAGNOSIS};
use crate::alert::AlertStatus;
use crate::report::sanitize::sanitize_line;

/// A phone notification's parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneMessage {
    pub title: String,
    pub body: String,
    /// `(label, url)`, most useful first; URLs are http(s) and free of quotes and spaces.
    pub links: Vec<(String, String)>,
}

/// The destination's limits, in characters.
#[derive(Debug, Clone, Copy)]
pub struct PhoneLimits {
    pub title: usize,
    pub body: usize,
    pub url: usize,
}

pub fn message(annotation: &Annotation<'_>, limits: PhoneLimits) -> PhoneMessage {
    let show = annotation.show_local_parts;
    let title = untrusted_plain(
        &format!(
            "{}: {}",
            annotation.alert.alertname(),
            annotation.headline()
        ),
        limits.title,
        show,
    );
    let mut lines = Vec::new();
    match annotation.stage {
        Stage::Triaged(report) => {
            let verdict = &report.verdict;
            if !verdict.summary().trim().is_empty() {
                lines.push(untrusted_plain(verdict.summary(), 600, show));
            }
            // The runbook's own headline fields (tier and NAT for the sendmail runbooks).
            let mut parts: Vec<String> = verdict
                .headline_fields()
                .into_iter()
                .map(|f| format!("{} {}", f.short, untrusted_plain(&f.value, 80, show)))
                .collect();
            parts.push(format!("action {}", kebab(&verdict.action())));
            lines.push(super::pagerduty::capitalized(&parts.join(" · ")));
            if let Some(command) = verdict.next_command() {
                lines.push(format!("Next: {}", truncate(&sanitize_line(command), 300)));
            }
        }
        Stage::Failed(error) => {
            lines.push(format!(
                "Triage failed: {}",
                untrusted_plain(error, 400, show)
            ));
            lines.push("No verdict; follow the runbook by hand.".into());
        }
        Stage::Running => lines.push("Triage is running.".into()),
        Stage::NoRunbook => lines.push(NO_DIAGNOSIS.into()),
    }
    if let Some(summary) = annotation.alert_summary() {
        lines.push(format!("Alert: {}", untrusted_plain(summary, 400, show)));
    }
    if annotation.status == AlertStatus::Resolved {
        lines.insert(0, "Resolved.".into());
    }
    // The episode names the notification (`GET /api/v1/episodes/{id}`, the Slack thread); it
    // is kept whatever the truncation.
    let footer = format!("\nepisode {}", annotation.episode_id);
    let room = limits.body.saturating_sub(footer.chars().count());
    let body = truncate(&lines.join("\n"), room) + &footer;
    let mut links = Vec::new();
    let mut add = |label: &str, url: &str| {
        if let Some(url) = safe_link_url(url).filter(|u| u.chars().count() <= limits.url) {
            if !links
                .iter()
                .any(|(_, known): &(String, String)| known == url)
            {
                links.push((label.to_string(), url.to_string()));
            }
        }
    };
    if let Some(url) = annotation.runbook_url() {
        add("Runbook", url);
    }
    for (label, url) in &annotation.links {
        add(label, url);
    }
    if let Some(url) = &annotation.episode_url {
        add("Episode", url);
    }
    PhoneMessage { title, body, links }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::render::fixtures;

    const TIGHT: PhoneLimits = PhoneLimits {
        title: 40,
        body: 120,
        url: 60,
    };

    #[test]
    fn a_verdict_in_a_few_capped_lines_with_its_links() {
        let report = fixtures::report(vec!["451 4.7.1 try later".into()]);
        let alert = fixtures::alert();
        let annotation = fixtures::annotation(&alert, Stage::Triaged(&report));
        let phone = message(&annotation, TIGHT);
        assert!(phone.title.chars().count() <= 40, "{}", phone.title);
        assert!(phone.title.starts_with(alert.alertname()));
        assert!(phone.body.chars().count() <= 120, "{}", phone.body);
        assert!(
            phone.body.ends_with("\nepisode ep-0123456789abcdef0123"),
            "{}",
            phone.body
        );
        assert!(phone.links.iter().all(|(_, url)| url.len() <= 60));
    }

    #[test]
    fn hostile_text_is_inert_and_addresses_redacted() {
        let mut alert = fixtures::alert();
        alert.annotations.insert(
            "summary".into(),
            "bounce for john.doe@example.com\u{1b}[31m\nsecond line".into(),
        );
        alert
            .annotations
            .insert("runbook_url".into(), "javascript:alert(1)".into());
        let annotation = fixtures::annotation(&alert, Stage::NoRunbook);
        let phone = message(
            &annotation,
            PhoneLimits {
                title: 250,
                body: 1024,
                url: 512,
            },
        );
        assert!(!phone.body.contains("john.doe"), "{}", phone.body);
        assert!(!phone.body.contains('\u{1b}'), "{}", phone.body);
        assert!(phone.body.contains(NO_DIAGNOSIS));
        assert!(phone.links.iter().all(|(_, url)| url.starts_with("http")));
    }
}
