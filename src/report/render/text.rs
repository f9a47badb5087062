//! Plain terminal text for an episode's annotation (`triage --format text`, `demo`). Untrusted
//! text is stripped of control characters (no terminal escapes) and redacted, not escaped.

use super::escape::{truncate, untrusted_plain};
use super::{failed_steps, kebab, tier_line, Annotation, Stage};
use crate::report::sanitize::sanitize_line;

pub fn render(annotation: &Annotation<'_>) -> String {
    let show = annotation.show_local_parts;
    let mut out = format!(
        "{} [{}]: {}\n",
        untrusted_plain(annotation.alert.alertname(), 200, show),
        annotation.status.as_str(),
        annotation.headline()
    );
    if let Some(summary) = annotation.alert_summary() {
        out.push_str(&format!(
            "  alert:      {}\n",
            untrusted_plain(summary, 500, show)
        ));
    }
    match annotation.stage {
        Stage::Running => out.push_str("  triage is running\n"),
        Stage::Failed(error) => out.push_str(&format!(
            "  triage failed: {}\n",
            untrusted_plain(error, 1000, show)
        )),
        Stage::NoRunbook => out.push_str(&format!("  {}\n", super::NO_DIAGNOSIS)),
        Stage::Triaged(report) => {
            let v = &report.verdict;
            for f in v.fields() {
                out.push_str(&format!(
                    "  {:<11} {}\n",
                    format!("{}:", f.short),
                    untrusted_plain(&f.value, 200, show)
                ));
            }
            out.push_str(&format!(
                "  action:     {} ({} confidence)\n",
                kebab(&v.action()),
                kebab(&v.confidence())
            ));
            if !v.summary().is_empty() {
                out.push_str(&format!(
                    "  verdict:    {}\n",
                    untrusted_plain(v.summary(), 1000, show)
                ));
            }
            if let Some(command) = v.next_command() {
                out.push_str(&format!(
                    "  next:       {}\n",
                    truncate(&sanitize_line(command), 300)
                ));
            }
            for line in report.evidence.highlights.iter().take(8) {
                out.push_str(&format!("  - {}\n", untrusted_plain(line, 300, show)));
            }
            for (name, tier) in &report.evidence.tiers {
                out.push_str(&format!(
                    "  {:<10}  {}\n",
                    untrusted_plain(name, 10, show),
                    tier_line(tier)
                ));
                for sample in tier.samples.iter().take(3) {
                    out.push_str(&format!("      | {}\n", untrusted_plain(sample, 300, show)));
                }
            }
            for (head, error) in failed_steps(report) {
                out.push_str(&format!(
                    "  failed:     {}{}\n",
                    untrusted_plain(&head, 200, show),
                    if error.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", untrusted_plain(&error, 300, show))
                    }
                ));
            }
        }
    }
    if let Some(url) = annotation.runbook_url() {
        out.push_str(&format!("  runbook:    {url}\n"));
    }
    if let Some(url) = &annotation.episode_url {
        out.push_str(&format!("  episode:    {url}\n"));
    }
    out
}
