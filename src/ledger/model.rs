//! The ledger's records, shared by every implementation and by the operator API.

use serde::Serialize;
use time::OffsetDateTime;

use crate::alert::{AlertStatus, EpisodeKey, WebhookAlert};

/// The triage state of an episode, as the API and metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeState {
    /// Waiting for a worker.
    Queued,
    /// A worker holds the job.
    Running,
    /// A report is stored.
    Triaged,
    /// Every attempt failed; the last error is kept.
    Failed,
    /// No runbook for this alertname; recorded, not triaged.
    NoRunbook,
    /// First seen already resolved: nothing left to triage.
    Skipped,
}

impl EpisodeState {
    pub const ALL: [EpisodeState; 6] = [
        EpisodeState::Queued,
        EpisodeState::Running,
        EpisodeState::Triaged,
        EpisodeState::Failed,
        EpisodeState::NoRunbook,
        EpisodeState::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EpisodeState::Queued => "queued",
            EpisodeState::Running => "running",
            EpisodeState::Triaged => "triaged",
            EpisodeState::Failed => "failed",
            EpisodeState::NoRunbook => "no_runbook",
            EpisodeState::Skipped => "skipped",
        }
    }

    pub fn parse(text: &str) -> Option<EpisodeState> {
        EpisodeState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The state of a triage job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Leased,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Leased => "leased",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<JobState> {
        [
            JobState::Queued,
            JobState::Leased,
            JobState::Done,
            JobState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One alert of a notification, ready to be recorded.
#[derive(Debug, Clone)]
pub struct IncomingAlert {
    pub key: EpisodeKey,
    pub alert: WebhookAlert,
    /// Whether a runbook exists for the alertname (decided by the caller from the registry).
    pub has_runbook: bool,
    /// Attempts the triage job gets.
    pub max_attempts: u32,
    /// An episode created without a runbook still gets its message: `started` rows with the
    /// episode (`notify.unknown_alerts = "post"`; the caller decides, for firing alerts).
    pub announce: bool,
    pub receiver: String,
    pub external_url: String,
}

/// What recording one alert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestOutcome {
    /// A new episode (with a job when it has a runbook).
    Created,
    /// A known episode seen again.
    Repeat,
    /// A known firing episode is now resolved.
    Resolved,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestResult {
    pub id: String,
    pub alertname: String,
    pub state: EpisodeState,
    pub outcome: IngestOutcome,
}

/// A job under lease.
#[derive(Debug, Clone)]
pub struct LeasedJob {
    pub job_id: i64,
    pub episode_id: String,
    pub group_key: String,
    pub alert: WebhookAlert,
    /// This attempt's number, from 1.
    pub attempt: u32,
    pub max_attempts: u32,
}

/// Filters for the episode list.
#[derive(Debug, Clone, Default)]
pub struct EpisodeQuery {
    pub limit: usize,
    pub state: Option<EpisodeState>,
    pub status: Option<AlertStatus>,
}

/// One row of the episode list.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeSummary {
    pub id: String,
    pub alertname: String,
    pub status: AlertStatus,
    pub state: EpisodeState,
    pub group_key: String,
    pub fingerprint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    pub repeats: u64,
}

/// One episode with everything known about it.
#[derive(Debug, Clone, Serialize)]
pub struct EpisodeDetail {
    #[serde(flatten)]
    pub summary: EpisodeSummary,
    pub alert: serde_json::Value,
    pub pagerduty_dedup_key: String,
    pub job: Option<JobView>,
    pub report: Option<serde_json::Value>,
    pub deliveries: Vec<DeliveryView>,
    /// References deliveries stored for the episode (`slack.channel`, `slack.ts`, ...).
    pub external_refs: std::collections::BTreeMap<String, String>,
}

/// A triage job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub lease_expires_at: Option<OffsetDateTime>,
    pub duration_ms: Option<u64>,
}

/// An outbox row as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    pub destination: String,
    pub kind: String,
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub external_ref: Option<String>,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct LedgerStats {
    pub episodes_by_state: Vec<(EpisodeState, u64)>,
    /// Jobs queued and runnable now (the work backlog).
    pub queue_depth: u64,
}

/// Why a delivery row exists: the state change that caused it. The outbox renders and sends
/// one message (or one edit) per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryKind {
    /// The job was leased for the first time: "triage running".
    Started,
    /// A report was stored.
    Verdict,
    /// Alertmanager re-sent a known episode.
    Repeat,
    /// The alert resolved.
    Resolved,
    /// Every triage attempt failed.
    TriageFailed,
    /// A fresh verdict replaced an older one (`Ledger::claim_retriage`): the message is edited
    /// and a reply says what changed.
    Retriaged,
}

impl DeliveryKind {
    pub const ALL: [DeliveryKind; 6] = [
        DeliveryKind::Started,
        DeliveryKind::Verdict,
        DeliveryKind::Repeat,
        DeliveryKind::Resolved,
        DeliveryKind::TriageFailed,
        DeliveryKind::Retriaged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryKind::Started => "started",
            DeliveryKind::Verdict => "verdict",
            DeliveryKind::Repeat => "repeat",
            DeliveryKind::Resolved => "resolved",
            DeliveryKind::TriageFailed => "triage_failed",
            DeliveryKind::Retriaged => "retriaged",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryKind> {
        DeliveryKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether a row of this kind posts the episode's message when there is none yet. A repeat
    /// is a reply under that message, so a destination gets a repeat row only behind such a
    /// row (see `repeat_row_wanted`).
    pub fn posts_message(self) -> bool {
        matches!(
            self,
            DeliveryKind::Started | DeliveryKind::Verdict | DeliveryKind::TriageFailed
        )
    }
}

/// A destination as the ledger knows it: the name its delivery rows carry, and the kinds of
/// change it wants a row for. Plain data, built once from the configuration by the side that
/// delivers (`notify::Destination::route`) and handed to the ledger; the ledger knows nothing
/// else of Slack, PagerDuty or any other destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub kinds: Vec<DeliveryKind>,
}

impl Route {
    pub fn new(name: impl Into<String>, kinds: impl IntoIterator<Item = DeliveryKind>) -> Route {
        Route {
            name: name.into(),
            kinds: kinds.into_iter().collect(),
        }
    }

    /// Whether the destination gets a row for a change of this kind.
    pub fn wants(&self, kind: DeliveryKind) -> bool {
        self.kinds.contains(&kind)
    }
}

/// Whether a repeat notification gets a row for `route` when its rows of this episode so far
/// are of `earlier` kinds. Rows of one destination go out in order, so a repeat row written
/// before any row that posts the episode's message could only ever be skipped (nothing to reply
/// to): it is not written. The count is not lost; the message shows the notifications so far.
/// In a storm this saves a claim and a record per episode, and keeps early repeats to a plain
/// counter update.
pub fn repeat_row_wanted(route: &Route, earlier: impl IntoIterator<Item = DeliveryKind>) -> bool {
    route.wants(DeliveryKind::Repeat) && earlier.into_iter().any(DeliveryKind::posts_message)
}

/// The state of a delivery row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its time (`next_attempt_ms`).
    Pending,
    /// Claimed by a dispatcher under a lease.
    Sending,
    /// Sent; `external_ref` names what was created or edited.
    Delivered,
    /// Nothing to send for this row (for example a thread reply without a parent message).
    Skipped,
    /// Gave up: a permanent error or the retry budget used up; `last_error` says why.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Failed => "failed",
        }
    }
}

/// A delivery row under a dispatcher's lease, with everything needed to render and send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub destination: String,
    pub kind: DeliveryKind,
    /// This attempt's number, from 1 (the retry budget counts them; a row handed back unsent
    /// with [`DeliveryResult::Released`] does not use one up).
    pub attempt: u32,
    /// When an earlier attempt may have reached the destination without its outcome being
    /// recorded (the process stopped, its lease ran out, or it failed after sending): look for
    /// what it sent, within this window, before sending again. None: no earlier attempt can
    /// have sent anything.
    pub in_doubt: Option<DoubtWindow>,
    /// When the row was written (the retry budget counts from here).
    pub created_at: OffsetDateTime,
    pub episode: EpisodeSummary,
    pub alert: WebhookAlert,
    /// The stored report, when the triage finished.
    pub report_json: Option<String>,
    /// The job's last error (for `triage_failed`).
    pub job_error: Option<String>,
    /// Per-episode references stored by earlier deliveries (`slack.channel`, `slack.ts`, ...).
    pub refs: std::collections::BTreeMap<String, String>,
}

/// The span of time in which earlier attempts at a row may have delivered something unrecorded:
/// from the start of the first such attempt's lease to the end of the last one (its lease
/// expiry, or when its failure was recorded). Both ledgers keep it per row, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoubtWindow {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

impl DoubtWindow {
    /// From stored milliseconds (both or neither present).
    pub fn from_ms(from: Option<i64>, to: Option<i64>) -> Option<DoubtWindow> {
        Some(DoubtWindow {
            from: super::from_unix_ms(from?),
            to: super::from_unix_ms(to?),
        })
    }

    /// The stored window `(from, to)` widened to cover `[from, to]`.
    pub fn widen_ms(stored: (Option<i64>, Option<i64>), from: i64, to: i64) -> (i64, i64) {
        (
            stored.0.map_or(from, |f| f.min(from)),
            stored.1.map_or(to, |t| t.max(to)),
        )
    }
}

/// How a delivery attempt ended, as the dispatcher records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    Delivered {
        external_ref: Option<String>,
    },
    Skipped {
        reason: String,
    },
    /// The attempt ran and failed; the row is due again at `not_before`. What it sent, if
    /// anything, is in doubt from the claim until now.
    Retry {
        error: String,
        not_before: OffsetDateTime,
    },
    /// Handed back without any attempt (too little of the lease was left): due again at once,
    /// the attempt not counted, nothing in doubt.
    Released {
        reason: String,
    },
    Failed {
        error: String,
    },
}

/// Episode reference (`EpisodeDetail::external_refs`, `ClaimedDelivery::refs`) holding the
/// verdict a re-triage replaces, as the report's `verdict` JSON: the `retriaged` rows say what
/// changed against it. Written by `Ledger::claim_retriage`.
pub const PREVIOUS_VERDICT_REF: &str = "triage.previous_verdict";
/// Episode reference: when the last re-triage was claimed (RFC 3339), and why.
pub const RETRIAGED_AT_REF: &str = "triage.retriaged_at";
pub const RETRIAGE_REASON_REF: &str = "triage.retriage_reason";

/// Whether a stored episode may be triaged again, from what both ledgers keep: it still fires,
/// its triage ended with a verdict (a job `done`, a report stored), and that verdict was reached
/// before `verdict_before_ms` (the job's lease start plus its duration). Queued, running, failed,
/// resolved and unknown-alert episodes never are.
pub fn retriage_allowed(
    status: &str,
    state: &str,
    job_state: Option<&str>,
    has_report: bool,
    verdict_ms: Option<i64>,
    verdict_before_ms: i64,
) -> bool {
    status == AlertStatus::Firing.as_str()
        && state == EpisodeState::Triaged.as_str()
        && job_state == Some(JobState::Done.as_str())
        && has_report
        && verdict_ms.is_some_and(|at| at < verdict_before_ms)
}

/// The `verdict` of a stored report's JSON, as JSON text (None: no report, or none readable).
pub fn verdict_json_of(report_json: &str) -> Option<String> {
    let report: serde_json::Value = serde_json::from_str(report_json).ok()?;
    let verdict = report.get("verdict")?;
    (!verdict.is_null()).then(|| verdict.to_string())
}

/// The episode reference an operator's action is kept under: `action.<time>.<action>`, so that
/// the references list the actions in time order.
pub fn operator_action_key(action: &str, at: OffsetDateTime) -> String {
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let action: String = action
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(40)
        .collect();
    format!("action.{at}.{action}")
}
