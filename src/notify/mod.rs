//! Delivering annotations: Slack and PagerDuty, fed by the ledger's outbox.
//!
//! Shaped like Alertmanager's `notify/`: one small [`Destination`] trait, one folder per
//! destination (`slack/`, `pagerduty/`), and one shared retry stage (`retry`) applied by the
//! outbox dispatcher (`outbox`) to every destination, so no integration has a retry loop of its
//! own. A destination makes one attempt and says how it went: delivered, nothing to do, or an
//! error that is [`DeliveryError::Transient`] (worth retrying, maybe after a `Retry-After`) or
//! [`DeliveryError::Permanent`] (an operator must fix something; the reason says what).
//!
//! Rendering is pure and lives in `crate::report::render`; this module is the I/O edge.

pub mod failpoint;
mod http;
pub mod links;
pub mod ntfy;
pub mod outbox;
pub mod pagerduty;
pub mod pushover;
pub mod retry;
pub mod silence;
pub mod slack;

use std::time::Duration;

use async_trait::async_trait;

use crate::config::{Config, Rotation};
use crate::ledger::{
    ClaimedDelivery, DeliveryKind, EpisodeState, Ledger, Route, PREVIOUS_VERDICT_REF,
};
use crate::report::render::{Annotation, Stage};
use crate::report::{Report, ReportVerdict, VerdictChange};

pub use outbox::Outbox;
pub use retry::RetryPolicy;

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth trying again: rate limits, 5xx, timeouts, a PagerDuty incident not open yet.
    #[error("{reason}")]
    Transient {
        reason: String,
        /// The destination's own `Retry-After`, honoured as a minimum wait.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help until an operator changes something; the reason says what.
    #[error("{reason}")]
    Permanent { reason: String },
}

impl DeliveryError {
    pub fn transient(reason: impl Into<String>) -> Self {
        DeliveryError::Transient {
            reason: reason.into(),
            retry_after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError::Permanent {
            reason: reason.into(),
        }
    }
}

/// A successful attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Something was posted or edited; the reference names it (`C123/1712345678.123456`).
    Delivered(Option<String>),
    /// Nothing to send for this row; the reason is kept on the row.
    Skipped(String),
}

/// What every destination gets besides the row.
pub struct DeliveryContext<'a> {
    pub ledger: &'a dyn Ledger,
    pub settings: &'a RenderSettings,
    /// Per-episode references this attempt found or created (`keep_ref`).
    refs: std::sync::Mutex<Vec<(String, String)>>,
}

impl<'a> DeliveryContext<'a> {
    pub fn new(ledger: &'a dyn Ledger, settings: &'a RenderSettings) -> Self {
        DeliveryContext {
            ledger,
            settings,
            refs: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// A per-episode reference (the Slack message's channel and `ts`, the PagerDuty incident
    /// id) to store with this attempt's outcome, whatever it is, in the same ledger write
    /// (`Ledger::record_delivery_with_refs`).
    pub fn keep_ref(&self, key: &str, value: &str) {
        self.refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key.to_string(), value.to_string()));
    }

    /// The references kept so far, in the order they were kept.
    pub fn take_refs(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.refs.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Rendering settings from the configuration.
#[derive(Debug, Clone, Default)]
pub struct RenderSettings {
    /// `server.public_url`, for links to the episode API.
    pub public_url: Option<String>,
    /// `privacy.show_local_parts`.
    pub show_local_parts: bool,
    /// What the links to the evidence are built from.
    pub links: links::LinkSettings,
}

/// One destination: says which changes it wants a delivery row for, and makes one attempt at
/// one row.
#[async_trait]
pub trait Destination: Send + Sync {
    /// The destination name used in delivery rows and metrics.
    fn name(&self) -> &'static str;

    /// Whether it wants a row for a change of this kind.
    fn wants(&self, kind: DeliveryKind) -> bool;

    /// What the ledger is told of it: its name and the kinds it wants.
    fn route(&self) -> Route {
        Route::new(
            self.name(),
            DeliveryKind::ALL
                .into_iter()
                .filter(|kind| self.wants(*kind)),
        )
    }

    async fn deliver(
        &self,
        delivery: &ClaimedDelivery,
        context: &DeliveryContext<'_>,
    ) -> Result<Sent, DeliveryError>;

    /// Takes its secrets from a configuration re-read on SIGHUP, in use from the next attempt:
    /// each secret setting it holds, and what happened to it. Its other settings take effect at
    /// the next start.
    fn rotate_secrets(&self, _config: &Config) -> Vec<(&'static str, Rotation)> {
        Vec::new()
    }
}

/// The report stored with the episode, if the triage finished.
pub fn stored_report(delivery: &ClaimedDelivery) -> Result<Option<Report>, DeliveryError> {
    delivery
        .report_json
        .as_deref()
        .map(|json| {
            serde_json::from_str(json).map_err(|e| {
                DeliveryError::permanent(format!(
                    "the stored report of {} cannot be read ({e}); it was written by an incompatible version",
                    delivery.episode.id
                ))
            })
        })
        .transpose()
}

/// Builds the annotation of the episode's current state and hands it to `render`.
pub fn with_annotation<T>(
    delivery: &ClaimedDelivery,
    report: Option<&Report>,
    settings: &RenderSettings,
    render: impl FnOnce(&Annotation<'_>) -> T,
) -> T {
    let stage = match (report, delivery.episode.state) {
        (Some(report), _) => Stage::Triaged(report),
        (None, EpisodeState::Failed) => Stage::Failed(
            delivery
                .job_error
                .as_deref()
                .unwrap_or("every attempt failed"),
        ),
        (None, EpisodeState::NoRunbook) => Stage::NoRunbook,
        (None, _) => Stage::Running,
    };
    let episode_url = settings.public_url.as_ref().map(|base| {
        format!(
            "{}/api/v1/episodes/{}",
            base.trim_end_matches('/'),
            delivery.episode.id
        )
    });
    let annotation = Annotation {
        episode_id: &delivery.episode.id,
        alert: &delivery.alert,
        status: delivery.episode.status,
        ends_at: delivery.episode.ends_at,
        stage,
        repeats: delivery.episode.repeats,
        links: links::evidence_links(
            &settings.links,
            &delivery.alert,
            &delivery.episode.group_key,
            report,
            &delivery.episode.id,
        ),
        episode_url,
        show_local_parts: settings.show_local_parts,
    };
    render(&annotation)
}

/// What a fresh verdict (a `retriaged` row) changed against the verdict it replaced (kept by
/// the ledger as the episode reference `PREVIOUS_VERDICT_REF`). None: either is unknown (no
/// report, or a replaced verdict this version cannot read), so nothing can be said.
pub fn retriage_changes(
    delivery: &ClaimedDelivery,
    report: Option<&Report>,
) -> Option<Vec<VerdictChange>> {
    let before: ReportVerdict =
        serde_json::from_str(delivery.refs.get(PREVIOUS_VERDICT_REF)?).ok()?;
    Some(report?.verdict.changes(&before))
}

/// Why a phone destination (ntfy, Pushover) does not page for this row, if it does not: a
/// fresh verdict that says nothing new (a long-firing alert pages again only when its
/// diagnosis changed), or a re-triage that failed while the verdict already sent stands (Slack
/// keeps showing it; PagerDuty gets the failure note).
pub fn phone_skip(delivery: &ClaimedDelivery, report: Option<&Report>) -> Option<&'static str> {
    match delivery.kind {
        DeliveryKind::Retriaged
            if retriage_changes(delivery, report).is_some_and(|changes| changes.is_empty()) =>
        {
            Some("the fresh verdict is the same as the one already sent; not paging again")
        }
        DeliveryKind::TriageFailed if report.is_some() => {
            Some("a re-triage failed; the verdict already sent stands; not paging again")
        }
        _ => None,
    }
}

#[cfg(test)]
mod phone_skip_tests {
    use super::*;
    use crate::alert::AlertStatus;
    use crate::ledger::EpisodeSummary;
    use crate::report::{Action, Confidence, NatState, OffendingTier, Verdict};

    fn report(action: Action) -> Report {
        let at = time::macros::datetime!(2026-12-07 18:00:00 UTC);
        Report {
            episode: "ep-1".into(),
            alertname: "SendmailDeferredSpike".into(),
            runbook: "sendmail-deferred-spike".into(),
            verdict: Verdict {
                offending_tier: OffendingTier::SmtpOut,
                dsn_class: Some("4.7".into()),
                nat_state: NatState::Running,
                action,
                confidence: Confidence::High,
                summary: "s".into(),
                next_command: None,
            }
            .into(),
            evidence: Default::default(),
            steps: Vec::new(),
            started_at: at,
            finished_at: at,
            evidence_snapshot: None,
            trimmed: None,
        }
    }

    fn delivery(kind: DeliveryKind, previous: Option<&Report>) -> ClaimedDelivery {
        let at = time::macros::datetime!(2026-12-07 18:00:00 UTC);
        let alert: crate::alert::WebhookAlert = serde_json::from_value(serde_json::json!({
            "status": "firing", "labels": {"alertname": "SendmailDeferredSpike"},
            "annotations": {}, "startsAt": "2026-12-07T17:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "f1"
        }))
        .unwrap();
        let mut refs = std::collections::BTreeMap::new();
        if let Some(previous) = previous {
            refs.insert(
                PREVIOUS_VERDICT_REF.to_string(),
                serde_json::to_string(&previous.verdict).unwrap(),
            );
        }
        ClaimedDelivery {
            id: 7,
            destination: "ntfy".into(),
            kind,
            attempt: 1,
            in_doubt: None,
            created_at: at,
            episode: EpisodeSummary {
                id: "ep-1".into(),
                alertname: "SendmailDeferredSpike".into(),
                status: AlertStatus::Firing,
                state: EpisodeState::Triaged,
                group_key: "{}".into(),
                fingerprint: "f1".into(),
                starts_at: at,
                ends_at: None,
                first_seen: at,
                last_seen: at,
                repeats: 3,
            },
            alert,
            report_json: None,
            job_error: None,
            refs,
        }
    }

    #[test]
    fn phones_hear_only_news() {
        let old = report(Action::BlocklistCheck);
        let same = report(Action::BlocklistCheck);
        let new = report(Action::NatReplace);
        let retriaged = delivery(DeliveryKind::Retriaged, Some(&old));
        assert!(
            phone_skip(&retriaged, Some(&same)).is_some(),
            "unchanged: skipped"
        );
        assert_eq!(phone_skip(&retriaged, Some(&new)), None, "changed: paged");
        let unknown_before = delivery(DeliveryKind::Retriaged, None);
        assert_eq!(
            phone_skip(&unknown_before, Some(&same)),
            None,
            "nothing known to compare with: paged"
        );
        let failed = delivery(DeliveryKind::TriageFailed, None);
        assert!(
            phone_skip(&failed, Some(&old)).is_some(),
            "a verdict stands"
        );
        assert_eq!(phone_skip(&failed, None), None, "no verdict ever: paged");
        assert_eq!(
            phone_skip(&delivery(DeliveryKind::Verdict, None), Some(&old)),
            None
        );
    }
}
