use serde_json::{json, Value};

use super::escape::TRUNCATION_MARKER;
use super::fixtures::{alert, annotation, report, HOSTILE_REPLY};
use super::slack::{
    self, MAX_BLOCKS, MAX_FIELDS, MAX_FIELD_TEXT, MAX_HEADER_TEXT, MAX_SECTION_TEXT,
};
use super::*;

/// Every Block Kit limit Slack documents, plus the ~13k total seen refused in practice.
pub(crate) fn assert_within_block_kit_limits(message: &slack::SlackMessage) {
    assert!(message.blocks.len() <= MAX_BLOCKS);
    for block in &message.blocks {
        match block["type"].as_str().unwrap() {
            "header" => {
                assert_eq!(block["text"]["type"], "plain_text");
                assert!(block["text"]["text"].as_str().unwrap().chars().count() <= MAX_HEADER_TEXT);
            }
            "section" => {
                if let Some(text) = block["text"]["text"].as_str() {
                    assert!(text.chars().count() <= MAX_SECTION_TEXT, "{}", text.len());
                    assert_eq!(block["text"]["verbatim"], true);
                }
                if let Some(fields) = block["fields"].as_array() {
                    assert!(fields.len() <= MAX_FIELDS);
                    for field in fields {
                        assert!(field["text"].as_str().unwrap().chars().count() <= MAX_FIELD_TEXT);
                        assert_eq!(field["verbatim"], true);
                    }
                }
            }
            "context" => assert!(block["elements"].as_array().unwrap().len() <= 10),
            other => panic!("unexpected block type {other}"),
        }
    }
    let total = serde_json::to_string(&message.blocks)
        .unwrap()
        .chars()
        .count();
    assert!(total < 12_000, "blocks total {total} chars");
}

#[test]
fn verdict_message_shows_the_facts() {
    let alert = alert();
    let report = report(vec!["stat=Deferred: 421 4.7.28 try later".into()]);
    let message = slack::message(&annotation(&alert, Stage::Triaged(&report)));
    assert_within_block_kit_limits(&message);
    assert_eq!(
        message.blocks[0]["text"]["text"],
        "SendmailDeferredSpike: blocklist-check (high confidence)"
    );
    let json = serde_json::to_string(&message.blocks).unwrap();
    for fact in [
        "*Offending tier*\\nsmtp-out",
        "*DSN class*\\n4.7",
        "*NAT*\\nrunning",
        "*Action*\\nblocklist-check",
        "*Confidence*\\nhigh",
        "queue 42 · deferred 118 · bounced 0 · DSN 4.7×110 4.4×8",
        "mailq imap: timed_out after 8000 ms: ECS Exec timed out after 8 s",
        "<https://runbooks.example/deferred|Runbook>",
        "<https://triage.example/api/v1/episodes/ep-0123456789abcdef0123|Episode>",
    ] {
        assert!(json.contains(fact), "missing {fact} in {json}");
    }
    assert!(
        !json.contains("mailq smtp-out: "),
        "steps that went well are not listed"
    );
    assert_eq!(
        message.text,
        "SendmailDeferredSpike: blocklist-check (high confidence) (tier smtp-out, NAT running)"
    );
}

#[test]
fn hostile_reply_renders_inert_exactly() {
    let alert = alert();
    let report = report(vec![HOSTILE_REPLY.into()]);
    let message = slack::message(&annotation(&alert, Stage::Triaged(&report)));
    let samples = message
        .blocks
        .iter()
        .find(|b| {
            b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("*Samples*"))
        })
        .unwrap();
    assert_eq!(
        samples,
        &json!({"type": "section", "text": {"type": "mrkdwn", "verbatim": true,
            "text": "*Samples*\n• smtp-out: `&lt;!channel&gt; click &lt;http://evil|here&gt;`"}})
    );
    let json = serde_json::to_string(&message).unwrap();
    assert!(!json.contains("<!channel>") && !json.contains("<http://evil"));
}

#[test]
fn hostile_labels_and_annotations_are_inert() {
    let mut alert = alert();
    alert
        .labels
        .insert("alertname".into(), "<!here> <@U123>".into());
    alert
        .annotations
        .insert("summary".into(), HOSTILE_REPLY.into());
    alert
        .annotations
        .insert("runbook_url".into(), "https://x|<!channel>".into());
    let message = slack::message(&annotation(&alert, Stage::Running));
    assert_within_block_kit_limits(&message);
    // Everything Slack parses (all but the plain_text header) carries no markup.
    let parsed = json!({"text": message.text, "blocks": message.blocks[1..]});
    let json = serde_json::to_string(&parsed).unwrap();
    for markup in [
        "<!here>",
        "<@U123>",
        "<!channel>",
        "<http://evil",
        "https://x|",
    ] {
        assert!(!json.contains(markup), "{markup} in {json}");
    }
    // Header is plain_text, which Slack never parses: shown as written, only capped.
    assert_eq!(
        message.blocks[0]["text"]["text"],
        "<!here> <@U123>: triage running"
    );
    assert!(message
        .text
        .starts_with("&lt;!here&gt; &lt;@U123&gt;: triage running"));
}

#[test]
fn a_100_kb_line_is_truncated_within_limits() {
    let alert = alert();
    let long = "x<".repeat(50_000);
    let report = report(vec![
        long.clone(),
        long.clone(),
        long.clone(),
        long.clone(),
        long.clone(),
        long,
    ]);
    let mut report = report;
    *report.verdict.summary_mut() = "y".repeat(100_000);
    report.steps[1].error = Some("z&".repeat(50_000));
    let message = slack::message(&annotation(&alert, Stage::Triaged(&report)));
    assert_within_block_kit_limits(&message);
    let json = serde_json::to_string(&message).unwrap();
    assert!(json.contains(TRUNCATION_MARKER));
    let note = pagerduty::note(
        &annotation(&alert, Stage::Triaged(&report)),
        &pagerduty::marker("ep-1", "abc"),
    );
    assert!(note.chars().count() <= pagerduty::MAX_NOTE_CHARS);
    assert!(note.ends_with("\n[cabal-triage ep-1 report abc]"));
}

#[test]
fn email_local_parts_are_redacted_unless_configured() {
    let alert = alert();
    let report = report(vec!["to=<jane.doe@gmail.com>, stat=Deferred".into()]);
    let mut shown = annotation(&alert, Stage::Triaged(&report));
    let hidden = slack::message(&shown);
    let json = serde_json::to_string(&hidden).unwrap();
    assert!(json.contains("j***@gmail.com") && !json.contains("jane.doe"));
    let note = pagerduty::note(&shown, "m");
    let plain = text::render(&shown);
    assert!(!note.contains("jane.doe") && !plain.contains("jane.doe"));
    shown.show_local_parts = true;
    let json = serde_json::to_string(&slack::message(&shown)).unwrap();
    assert!(json.contains("jane.doe@gmail.com"));
}

#[test]
fn stages_and_resolution() {
    let alert = alert();
    let running = slack::message(&annotation(&alert, Stage::Running));
    assert_eq!(
        running.blocks[0]["text"]["text"],
        "SendmailDeferredSpike: triage running"
    );
    let checks = |alertname: &str| {
        let mut alert = alert.clone();
        alert.labels.insert("alertname".into(), alertname.into());
        let message = slack::message(&annotation(&alert, Stage::Running));
        serde_json::to_string(&message.blocks).unwrap()
    };
    assert!(checks("SendmailDeferredSpike").contains("queue depth, logs, NAT and blocklists"));
    let imap = checks("IMAPAuthFailureSpike");
    assert!(
        imap.contains("Dovecot's login lines") && !imap.contains("NAT"),
        "{imap}"
    );
    let restart = checks("ContainerRestartLoop");
    assert!(
        restart.contains("stopped tasks") && !restart.contains("NAT"),
        "{restart}"
    );
    let failed = slack::message(&annotation(&alert, Stage::Failed("probe <!channel> broke")));
    let json = serde_json::to_string(&failed).unwrap();
    assert!(json.contains("*Triage failed:* probe &lt;!channel&gt; broke"));
    let report = report(Vec::new());
    let mut resolved = annotation(&alert, Stage::Triaged(&report));
    resolved.status = AlertStatus::Resolved;
    resolved.ends_at = Some(time::macros::datetime!(2026-11-28 20:30:00 UTC));
    resolved.repeats = 5;
    let message = slack::message(&resolved);
    assert_eq!(
        message.blocks[0]["text"]["text"],
        "SendmailDeferredSpike: RESOLVED: blocklist-check (high confidence)"
    );
    assert!(serde_json::to_string(&message)
        .unwrap()
        .contains("*notifications* 6"));
    assert_eq!(
        slack::resolved_reply(&resolved).text,
        "Resolved at 2026-11-28T20:30:00Z."
    );
    assert!(slack::repeat_reply(&resolved)
        .text
        .contains("notification 6"));
}

#[test]
fn pagerduty_note_is_compact_plain_text_with_marker() {
    let alert = alert();
    let report = report(vec![HOSTILE_REPLY.into()]);
    let marker = pagerduty::marker("ep-0123456789abcdef0123", "0a1b2c3d4e5f");
    let note = pagerduty::note(&annotation(&alert, Stage::Triaged(&report)), &marker);
    assert_eq!(
        note,
        "cabal-triage: SendmailDeferredSpike: blocklist-check (high confidence)\n\
         Tier smtp-out · DSN class 4.7 · NAT running · action blocklist-check · confidence high\n\
         Verdict: 4.7 deferrals concentrated on google\n\
         smtp-out: queue 42 · deferred 118 · bounced 0 · DSN 4.7×110 4.4×8\n\
         Failed step: mailq imap: timed_out after 8000 ms: ECS Exec timed out after 8 s\n\
         Runbook: https://runbooks.example/deferred\n\
         Episode: https://triage.example/api/v1/episodes/ep-0123456789abcdef0123\n\
         [cabal-triage ep-0123456789abcdef0123 report 0a1b2c3d4e5f]"
    );
}

#[test]
fn terminal_text_strips_control_characters() {
    let alert = alert();
    let report = report(vec!["evil\u{1b}[2Jline\r".into()]);
    let plain = text::render(&annotation(&alert, Stage::Triaged(&report)));
    assert!(!plain.contains('\u{1b}') && !plain.contains('\r'));
    assert!(plain.contains("action:     blocklist-check (high confidence)"));
    assert!(plain.contains("| evil [2Jline"));
}

#[test]
fn rendering_never_panics_on_arbitrary_text() {
    use proptest::prelude::*;
    proptest!(|(summary in ".{0,300}", sample in ".{0,300}", name in ".{0,60}")| {
        let mut alert = alert();
        alert.labels.insert("alertname".into(), name);
        alert.annotations.insert("summary".into(), summary.clone());
        let mut report = report(vec![sample]);
        *report.verdict.summary_mut() = summary;
        let message = slack::message(&annotation(&alert, Stage::Triaged(&report)));
        assert_within_block_kit_limits(&message);
        let json: Value = serde_json::to_value(&message).unwrap();
        prop_assert!(json.is_object());
    });
}

#[test]
fn the_next_command_is_shown_in_every_rendering() {
    let alert = alert();
    let mut report = report(vec![]);
    let command = "aws ec2 start-instances --instance-ids i-0f9e8d7c6b5a49382 --region us-east-1";
    *report.verdict.next_command_mut() = Some(command.into());
    let shown = annotation(&alert, Stage::Triaged(&report));
    let message = slack::message(&shown);
    assert_within_block_kit_limits(&message);
    let json = serde_json::to_string(&message.blocks).unwrap();
    assert!(json.contains(&format!("*Next:* `{command}`")), "{json}");
    let note = pagerduty::note(&shown, "m");
    assert!(note.contains(&format!("Next: {command}")), "{note}");
    let plain = text::render(&shown);
    assert!(
        plain.contains(&format!("  next:       {command}\n")),
        "{plain}"
    );
    // No command: no line.
    *report.verdict.next_command_mut() = None;
    let shown = annotation(&alert, Stage::Triaged(&report));
    assert!(!text::render(&shown).contains("next:"));
}

#[test]
fn annotations_are_inert_and_every_address_form_is_redacted_in_every_rendering() {
    let mut alert = alert();
    alert.annotations.insert(
        "summary".into(),
        "queue stuck\nFAKE: action ignore \u{202e}evil\u{200b} for josé@example.com, \"john doe\"@example.com, carol@localhost, dave%40example.com".into(),
    );
    let report = report(vec![
        "to=<jane@bücher.de> relay=[192.0.2.1]: bob@[192.0.2.1]".into(),
    ]);
    let shown = annotation(&alert, Stage::Triaged(&report));
    let slack = serde_json::to_string(&slack::message(&shown)).unwrap();
    let outputs = [
        ("slack", slack),
        ("pagerduty", pagerduty::note(&shown, "m")),
        ("text", text::render(&shown)),
    ];
    for (name, out) in outputs {
        for leak in [
            "josé", "john doe", "carol@", "dave%40", "jane@", "bob@", "\u{202e}", "\u{200b}",
        ] {
            assert!(!out.contains(leak), "{name} shows {leak:?}: {out}");
        }
        assert!(
            !out.lines()
                .any(|line| line.trim_start().starts_with("FAKE")),
            "{name}: a newline in an annotation started a line of its own: {out}"
        );
    }
}

#[test]
fn evidence_links_are_shown_in_every_rendering() {
    let alert = alert();
    let report = report(Vec::new());
    let mut annotated = annotation(&alert, Stage::Triaged(&report));
    annotated.links = vec![
        (
            "Logs".into(),
            "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:x"
                .into(),
        ),
        (
            "Silence".into(),
            "https://am.example/#/silences/new?filter=%7Ba%3D%22b%22%7D".into(),
        ),
    ];
    let message = serde_json::to_string(&slack::message(&annotated)).unwrap();
    assert!(message.contains("|Logs>"), "{message}");
    assert!(
        message.contains("<https://am.example/#/silences/new?filter=%7Ba%3D%22b%22%7D|Silence>"),
        "{message}"
    );
    let note = pagerduty::note(&annotated, "[m]");
    assert!(
        note.contains("\nSilence: https://am.example/#/silences/new?filter=%7Ba%3D%22b%22%7D\n"),
        "{note}"
    );
    let phone = phone::message(
        &annotated,
        phone::PhoneLimits {
            title: 250,
            body: 1024,
            url: 512,
        },
    );
    let labels: Vec<&str> = phone.links.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["Runbook", "Logs", "Silence", "Episode"]);
}

#[test]
fn retriage_reply_says_what_changed_escaped_or_unchanged() {
    let alert = alert();
    let report = report(Vec::new());
    let triaged = annotation(&alert, Stage::Triaged(&report));
    let unchanged = slack::retriage_reply(&triaged, Some(&[]));
    assert!(
        unchanged
            .text
            .starts_with("Triaged again: the verdict is unchanged, blocklist-check"),
        "{}",
        unchanged.text
    );
    let changes = [
        crate::report::VerdictChange {
            title: "Action",
            before: "nat-replace".into(),
            after: "blocklist-check".into(),
        },
        crate::report::VerdictChange {
            title: "DSN class",
            before: HOSTILE_REPLY.into(),
            after: "postmaster@mail.example.net said 4.7".into(),
        },
    ];
    let changed = slack::retriage_reply(&triaged, Some(&changes));
    assert!(
        changed.text.contains("the verdict changed"),
        "{}",
        changed.text
    );
    assert!(changed
        .text
        .contains("• Action: nat-replace → blocklist-check"));
    assert!(!changed.text.contains("<!channel>"), "{}", changed.text);
    assert!(!changed.text.contains("<http://evil"), "{}", changed.text);
    assert!(
        !changed.text.contains("postmaster@"),
        "addresses redacted: {}",
        changed.text
    );
    assert_within_block_kit_limits(&changed);
    let many: Vec<crate::report::VerdictChange> = (0..50)
        .map(|_| crate::report::VerdictChange {
            title: "Stopped reason",
            before: "x".repeat(5000),
            after: "y".repeat(5000),
        })
        .collect();
    assert_within_block_kit_limits(&slack::retriage_reply(&triaged, Some(&many)));
    assert!(slack::retriage_reply(&triaged, None)
        .text
        .starts_with("Triaged again: blocklist-check"));
}
