//! Hand-built reports and alerts for the rendering tests (until the runbooks produce real ones).

use std::collections::BTreeMap;

use time::macros::datetime;

use super::{Annotation, Stage};
use crate::alert::{AlertStatus, WebhookAlert};
use crate::report::{
    Action, Confidence, Evidence, NatState, OffendingTier, Report, Step, StepOutcome, TierEvidence,
    Verdict,
};

pub const HOSTILE_REPLY: &str = "<!channel> click <http://evil|here>";

pub fn alert() -> WebhookAlert {
    WebhookAlert {
        status: AlertStatus::Firing,
        labels: BTreeMap::from([
            ("alertname".to_string(), "SendmailDeferredSpike".to_string()),
            ("severity".to_string(), "critical".to_string()),
        ]),
        annotations: BTreeMap::from([
            (
                "summary".to_string(),
                "Deferred mail on smtp-out".to_string(),
            ),
            (
                "runbook_url".to_string(),
                "https://runbooks.example/deferred".to_string(),
            ),
        ]),
        starts_at: datetime!(2026-11-28 20:00:00 UTC),
        ends_at: None,
        generator_url: String::new(),
        fingerprint: "1a2b3c4d5e6f7081".into(),
    }
}

pub fn report(samples: Vec<String>) -> Report {
    Report {
        episode: "ep-0123456789abcdef0123".into(),
        alertname: "SendmailDeferredSpike".into(),
        runbook: "sendmail-deferred-spike".into(),
        verdict: Verdict {
            offending_tier: OffendingTier::SmtpOut,
            dsn_class: Some("4.7".into()),
            nat_state: NatState::Running,
            action: Action::BlocklistCheck,
            confidence: Confidence::High,
            summary: "4.7 deferrals concentrated on google".into(),
            next_command: None,
        }
        .into(),
        evidence: Evidence {
            tiers: BTreeMap::from([(
                "smtp-out".to_string(),
                TierEvidence {
                    queue_requests: Some(42),
                    deferred_lines: Some(118),
                    bounced_lines: Some(0),
                    dsn_classes: BTreeMap::from([("4.7".into(), 110), ("4.4".into(), 8)]),
                    top_providers: Vec::new(),
                    samples,
                },
            )]),
            nat: serde_json::Value::Null,
            dnsbl: serde_json::Value::Null,
            tier_details: BTreeMap::new(),
            ..Evidence::default()
        },
        steps: vec![
            Step {
                name: "mailq smtp-out".into(),
                outcome: StepOutcome::Ok,
                ms: 812,
                error: None,
            },
            Step {
                name: "mailq imap".into(),
                outcome: StepOutcome::TimedOut,
                ms: 8000,
                error: Some("ECS Exec timed out after 8 s".into()),
            },
        ],
        started_at: datetime!(2026-11-28 20:00:31 UTC),
        finished_at: datetime!(2026-11-28 20:00:39 UTC),
        evidence_snapshot: None,
        trimmed: None,
    }
}

/// The annotation of `alert` at `stage`, firing, with an episode link.
pub fn annotation<'a>(alert: &'a WebhookAlert, stage: Stage<'a>) -> Annotation<'a> {
    Annotation {
        episode_id: "ep-0123456789abcdef0123",
        alert,
        status: AlertStatus::Firing,
        ends_at: None,
        stage,
        repeats: 0,
        episode_url: Some("https://triage.example/api/v1/episodes/ep-0123456789abcdef0123".into()),
        links: Vec::new(),
        show_local_parts: false,
    }
}
