//! Fresh verdicts in the DynamoDB ledger: claiming a re-triage (`Ledger::claim_retriage`) is one
//! `UpdateItem` of the episode item under its `version`, so of several replicas receiving the
//! same repeat exactly one queues the job again; the others' writes fail their condition and
//! find the episode no longer eligible.

use std::sync::atomic::Ordering;

use super::change::Change;
use super::item::*;
use super::*;
use crate::ledger::{EpisodeState, JobState, LedgerError};

/// Whether this copy of the item may be triaged again (`retriage_allowed`).
fn eligible(item: &Item, before_ms: i64) -> bool {
    let verdict_ms =
        get_n(item, "leased_ms").map(|leased| leased + get_n(item, "duration_ms").unwrap_or(0));
    retriage_allowed(
        get_s(item, "status").unwrap_or_default(),
        get_s(item, "state").unwrap_or_default(),
        get_s(item, "job_state"),
        get_s(item, "report_json").is_some(),
        verdict_ms,
        before_ms,
    )
}

/// Records an operator's action as a reference of the episode item (only if it exists).
pub(super) async fn record_action(
    ledger: &DynamoLedger,
    id: &str,
    action: &str,
    what: &str,
    now: time::OffsetDateTime,
) -> Result<bool, LedgerError> {
    let change = Change::new()
        .set_map_key("refs", &operator_action_key(action, now), s(what))
        .when("attribute_exists(#pk)", &[PK], Vec::new());
    ledger.update(episode_key(id), change).await
}

pub(super) async fn claim(
    ledger: &DynamoLedger,
    id: &str,
    before_ms: i64,
    reason: &str,
    now_ms: i64,
) -> Result<bool, LedgerError> {
    let mut current = WorkingCopy::new(ledger, id);
    for _ in 0..CONFLICT_RETRIES {
        let Some(item) = current.get().await? else {
            return Ok(false);
        };
        if !eligible(&item, before_ms) {
            // A decision not to write is taken on a fresh item only.
            if current.is_fresh() {
                return Ok(false);
            }
            continue;
        }
        let version = require_n(&item, "version")?;
        let mut change = Change::new()
            .set("job_state", s(JobState::Queued.as_str()))
            .set("state", s(EpisodeState::Queued.as_str()))
            .set("attempts", n(0))
            .set("not_before_ms", n(now_ms))
            .remove("last_error")
            .remove("lease_owner")
            .remove("lease_expires_ms")
            .set(QUEUE_PK, s(job_queue_pk(id)))
            .set(QUEUE_SK, s(job_queue_sk(now_ms, id)))
            .set_map_key("refs", RETRIAGED_AT_REF, s(rfc3339(from_unix_ms(now_ms))))
            .set_map_key("refs", RETRIAGE_REASON_REF, s(reason));
        if let Some(verdict) = get_s(&item, "report_json").and_then(verdict_json_of) {
            change = change.set_map_key("refs", PREVIOUS_VERDICT_REF, s(verdict));
        }
        match ledger
            .write(id, DynamoLedger::versioned(change, version))
            .await?
        {
            WriteOutcome::Applied(_) => {
                ledger.job_generation.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            WriteOutcome::Conflict(now) => current.conflict(now),
        }
    }
    Err(current.contention("the episode is not triaged again now; a later repeat tries again"))
}
