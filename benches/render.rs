//! Rendering cost of the Slack message and PagerDuty note: an ordinary report against a hostile
//! worst case (six 100 KB samples full of `<`, a 100 KB summary), measured in the same run so the
//! ratio shows what escaping and truncation of oversized input cost.

use std::collections::BTreeMap;

use cabal_triage::alert::{AlertStatus, WebhookAlert};
use cabal_triage::report::render::{pagerduty, slack, Annotation, Stage};
use cabal_triage::report::{
    Action, Confidence, Evidence, NatState, OffendingTier, Report, Step, StepOutcome, TierEvidence,
    Verdict,
};
use criterion::{criterion_group, criterion_main, Criterion};
use time::OffsetDateTime;

fn alert() -> WebhookAlert {
    WebhookAlert {
        status: AlertStatus::Firing,
        labels: BTreeMap::from([("alertname".into(), "SendmailDeferredSpike".into())]),
        annotations: BTreeMap::from([(
            "runbook_url".into(),
            "https://runbooks.example/deferred".into(),
        )]),
        starts_at: OffsetDateTime::UNIX_EPOCH,
        ends_at: None,
        generator_url: String::new(),
        fingerprint: "1a2b3c4d5e6f7081".into(),
    }
}

fn report(samples: Vec<String>, summary: String) -> Report {
    Report {
        episode: "ep-1".into(),
        alertname: "SendmailDeferredSpike".into(),
        runbook: "sendmail-deferred-spike".into(),
        verdict: Verdict {
            offending_tier: OffendingTier::SmtpOut,
            dsn_class: Some("4.7".into()),
            nat_state: NatState::Running,
            action: Action::BlocklistCheck,
            confidence: Confidence::High,
            summary,
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
        steps: vec![Step {
            name: "mailq imap".into(),
            outcome: StepOutcome::TimedOut,
            ms: 8000,
            error: Some("ECS Exec timed out after 8 s".into()),
        }],
        started_at: OffsetDateTime::UNIX_EPOCH,
        finished_at: OffsetDateTime::UNIX_EPOCH,
        evidence_snapshot: None,
        trimmed: None,
    }
}

fn render_both(alert: &WebhookAlert, report: &Report) -> usize {
    let annotation = Annotation {
        episode_id: "ep-1",
        alert,
        status: AlertStatus::Firing,
        ends_at: None,
        stage: Stage::Triaged(report),
        repeats: 0,
        episode_url: Some("https://triage.example/api/v1/episodes/ep-1".into()),
        links: Vec::new(),
        show_local_parts: false,
    };
    let message = slack::message(&annotation);
    let note = pagerduty::note(&annotation, "[cabal-triage ep-1 report 0]");
    message.blocks.len() + note.len()
}

fn bench(c: &mut Criterion) {
    let alert = alert();
    let ordinary = report(
        vec!["to=<jane@gmail.com>, stat=Deferred: 421 4.7.28 try later".into(); 5],
        "4.7 deferrals concentrated on google".into(),
    );
    let hostile = report(vec!["<x&".repeat(34_000); 6], "y".repeat(100_000));
    let mut group = c.benchmark_group("render");
    group.bench_function("ordinary", |b| b.iter(|| render_both(&alert, &ordinary)));
    group.bench_function("hostile_100kb", |b| {
        b.iter(|| render_both(&alert, &hostile))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
