//! Slack Block Kit for one episode: the main message (posted when triage starts, edited with the
//! verdict and on resolve) and the thread replies. Within Block Kit's limits (50 blocks, section
//! text 3000, 10 fields of 2000, header 150 plain text) and well under the undocumented ~13k
//! total that Slack has been seen to refuse; every mrkdwn object is `verbatim` so Slack does not
//! auto-link or parse mentions in it.

use serde::Serialize;
use serde_json::{json, Value};

use super::escape::{link, mrkdwn, mrkdwn_within, truncate, untrusted_mrkdwn, untrusted_plain};
use super::{failed_steps, kebab, tier_line, Annotation, Stage, NO_DIAGNOSIS};
use crate::alert::AlertStatus;
use crate::report::sanitize::sanitize_line;

pub const MAX_BLOCKS: usize = 50;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_TEXT: usize = 2000;
pub const MAX_HEADER_TEXT: usize = 150;
/// Samples shown, and the length of each.
const MAX_SAMPLES: usize = 5;
const MAX_SAMPLE_CHARS: usize = 400;
const MAX_SUMMARY_CHARS: usize = 800;

/// A message: the blocks, and the top-level `text` Slack uses for notifications and screen
/// readers (mrkdwn-escaped, because Slack parses it too).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: Vec<Value>,
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": true}})
}

fn field(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": true}]})
}

/// The episode's main message in its current state.
pub fn message(annotation: &Annotation<'_>) -> SlackMessage {
    let show = annotation.show_local_parts;
    let alertname = annotation.alert.alertname();
    let mut blocks = Vec::new();
    let header = untrusted_plain(
        &format!("{alertname}: {}", annotation.headline()),
        MAX_HEADER_TEXT,
        show,
    );
    blocks.push(
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": false}}),
    );

    let mut status = format!(
        "*Status:* {} · *started* {} · *notifications* {}",
        annotation.status.as_str(),
        annotation
            .alert
            .starts_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        annotation.repeats + 1
    );
    if let Some(summary) = annotation.alert_summary() {
        status.push_str("\n*Alert:* ");
        status.push_str(&untrusted_mrkdwn(summary, MAX_SUMMARY_CHARS, show));
    }
    blocks.push(section(status));

    match annotation.stage {
        Stage::Running => blocks.push(section(format!(
            "Triage is running: {} being checked. This message is updated with the verdict.",
            checks_running(annotation.alert.alertname())
        ))),
        Stage::Failed(error) => blocks.push(section(format!(
            "*Triage failed:* {}",
            untrusted_mrkdwn(error, 1000, show)
        ))),
        Stage::NoRunbook => {
            let mut text = format!("*{NO_DIAGNOSIS}*");
            if let Some(description) = annotation.alert_description() {
                text.push_str("\n*Description:* ");
                text.push_str(&untrusted_mrkdwn(description, MAX_SUMMARY_CHARS, show));
            }
            blocks.push(section(text));
            let labels: Vec<String> = annotation
                .label_pairs()
                .iter()
                .take(30)
                .map(|pair| {
                    format!(
                        "• `{}`",
                        untrusted_mrkdwn(pair, 200, show).replace('`', "'")
                    )
                })
                .collect();
            if !labels.is_empty() {
                blocks.push(section(truncate_lines("*Labels*", &labels)));
            }
        }
        Stage::Triaged(report) => {
            let verdict = &report.verdict;
            let mut fields: Vec<Value> = verdict
                .fields()
                .into_iter()
                .map(|f| {
                    field(format!(
                        "*{}*\n{}",
                        f.title,
                        untrusted_mrkdwn(&f.value, 80, show)
                    ))
                })
                .collect();
            fields.extend([
                field(format!("*Action*\n{}", kebab(&verdict.action()))),
                field(format!("*Confidence*\n{}", kebab(&verdict.confidence()))),
                field(format!("*Runbook*\n{}", mrkdwn(&report.runbook))),
            ]);
            fields.truncate(MAX_FIELDS);
            blocks.push(json!({"type": "section", "fields": fields}));
            if !verdict.summary().trim().is_empty() {
                blocks.push(section(format!(
                    "*Verdict:* {}",
                    untrusted_mrkdwn(verdict.summary(), MAX_SUMMARY_CHARS, show)
                )));
            }
            if let Some(command) = verdict.next_command() {
                blocks.push(section(format!(
                    "*Next:* `{}`",
                    mrkdwn_within(&sanitize_line(command), 300).replace('`', "'")
                )));
            }
            let tier_fields: Vec<Value> = report
                .evidence
                .tiers
                .iter()
                .take(MAX_FIELDS)
                .map(|(name, tier)| {
                    field(untrusted_mrkdwn(
                        &format!("*{name}*\n{}", tier_line(tier)),
                        300,
                        show,
                    ))
                })
                .collect();
            if !tier_fields.is_empty() {
                blocks.push(json!({"type": "section", "fields": tier_fields}));
            }
            let highlights: Vec<String> = report
                .evidence
                .highlights
                .iter()
                .take(MAX_SAMPLES)
                .map(|line| format!("• {}", untrusted_mrkdwn(line, MAX_SAMPLE_CHARS, show)))
                .collect();
            if !highlights.is_empty() {
                blocks.push(section(truncate_lines("*Evidence*", &highlights)));
            }
            let samples: Vec<String> = report
                .evidence
                .tiers
                .iter()
                .flat_map(|(name, tier)| tier.samples.iter().map(move |s| (name, s)))
                .take(MAX_SAMPLES)
                .map(|(name, sample)| {
                    format!(
                        "• {}: `{}`",
                        mrkdwn(&truncate(name, 20)),
                        untrusted_mrkdwn(sample, MAX_SAMPLE_CHARS, show)
                    )
                })
                .collect();
            if !samples.is_empty() {
                blocks.push(section(truncate_lines("*Samples*", &samples)));
            }
            let failed: Vec<String> = failed_steps(report)
                .into_iter()
                .take(10)
                .map(|(head, error)| {
                    let mut line = format!("• {}", untrusted_mrkdwn(&head, 200, show));
                    if !error.is_empty() {
                        line.push_str(": ");
                        line.push_str(&untrusted_mrkdwn(&error, 200, show));
                    }
                    line
                })
                .collect();
            if !failed.is_empty() {
                blocks.push(section(truncate_lines("*Steps that failed*", &failed)));
            }
        }
    }

    let mut links = Vec::new();
    if let Some(url) = annotation.runbook_url() {
        links.push(link(url, "Runbook"));
    }
    for (label, url) in &annotation.links {
        links.push(link(url, label));
    }
    if let Some(url) = &annotation.episode_url {
        links.push(link(url, "Episode"));
    }
    if let Some(url) = annotation.generator_url() {
        links.push(link(url, "Source"));
    }
    links.push(format!("episode `{}`", mrkdwn(annotation.episode_id)));
    blocks.push(context(links.join(" · ")));
    blocks.truncate(MAX_BLOCKS);

    SlackMessage {
        text: fallback_text(annotation),
        blocks,
    }
}

/// Joins lines under a title, dropping whole lines past the section limit.
fn truncate_lines(title: &str, lines: &[String]) -> String {
    let mut text = title.to_string();
    for line in lines {
        if text.chars().count() + line.chars().count() + 1 > MAX_SECTION_TEXT - 20 {
            text.push_str("\n… [more omitted]");
            break;
        }
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// The top-level `text`: what notifications and screen readers show.
pub fn fallback_text(annotation: &Annotation<'_>) -> String {
    let mut text = format!(
        "{}: {}",
        untrusted_mrkdwn(
            annotation.alert.alertname(),
            200,
            annotation.show_local_parts
        ),
        annotation.headline()
    );
    if let Stage::Triaged(report) = annotation.stage {
        let fields: Vec<String> = report
            .verdict
            .headline_fields()
            .into_iter()
            .map(|f| {
                format!(
                    "{} {}",
                    f.short,
                    untrusted_mrkdwn(&f.value, 80, annotation.show_local_parts)
                )
            })
            .collect();
        text.push_str(&format!(" ({})", fields.join(", ")));
    }
    text
}

/// The thread reply for a repeat notification.
pub fn repeat_reply(annotation: &Annotation<'_>) -> SlackMessage {
    let text = format!(
        "Alertmanager sent this alert again (notification {}); it is still firing. {}",
        annotation.repeats + 1,
        match annotation.stage {
            Stage::Triaged(_) => format!("The verdict above stands: {}.", annotation.headline()),
            Stage::Running => "Triage is still running.".to_string(),
            Stage::Failed(_) => "Triage failed; see above.".to_string(),
            Stage::NoRunbook => NO_DIAGNOSIS.to_string(),
        }
    );
    reply(text)
}

/// The thread reply of a fresh verdict (a re-triage): what changed against the verdict it
/// replaced, field by field, or that it is unchanged; `changes` is None when the replaced
/// verdict is not known (then only the new headline is said).
pub fn retriage_reply(
    annotation: &Annotation<'_>,
    changes: Option<&[crate::report::VerdictChange]>,
) -> SlackMessage {
    const MAX_CHANGES: usize = 10;
    let show = annotation.show_local_parts;
    let text = match changes {
        None => format!("Triaged again: {}.", annotation.headline()),
        Some([]) => format!(
            "Triaged again: the verdict is unchanged, {}.",
            annotation.headline()
        ),
        Some(changes) => {
            let lines: Vec<String> = changes
                .iter()
                .take(MAX_CHANGES)
                .map(|change| {
                    format!(
                        "• {}: {} → {}",
                        change.title,
                        untrusted_mrkdwn(&change.before, 200, show),
                        untrusted_mrkdwn(&change.after, 200, show)
                    )
                })
                .collect();
            format!(
                "Triaged again: the verdict changed, now {}.\n{}",
                annotation.headline(),
                lines.join("\n")
            )
        }
    };
    reply(truncate(&text, MAX_SECTION_TEXT))
}

/// The thread reply when the alert resolves.
pub fn resolved_reply(annotation: &Annotation<'_>) -> SlackMessage {
    let ended = annotation
        .ends_at
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .map(|at| format!(" at {at}"))
        .unwrap_or_default();
    let text = match annotation.status {
        AlertStatus::Resolved => format!("Resolved{ended}."),
        AlertStatus::Firing => "Resolved.".to_string(),
    };
    reply(text)
}

fn reply(text: String) -> SlackMessage {
    SlackMessage {
        blocks: vec![section(text.clone())],
        text,
    }
}

/// What a runbook checks, in the words of the "triage running" message: an alert's own runbook,
/// never another's list.
fn checks_running(alertname: &str) -> &'static str {
    match alertname {
        "SendmailDeferredSpike" | "SendmailBouncedSpike" => {
            "queue depth, logs, NAT and blocklists are"
        }
        "IMAPAuthFailureSpike" => {
            "Dovecot's login lines, the failing sources' network interfaces and the master-password parameter's age are"
        }
        "ContainerRestartLoop" => {
            "the service's events, stopped tasks, task definitions, container instances and error lines are"
        }
        _ => "the runbook's diagnostics are",
    }
}
