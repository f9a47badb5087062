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

/// Whether any later version of the item is ineligible too: resolved, or a verdict reached at
/// or after `before_ms`.
fn never_eligible_again(item: &Item, before_ms: i64) -> bool {
    let verdict_ms = get_n(item, "leased_ms")
        .zip(get_n(item, "duration_ms"))
        .map(|(leased, duration)| leased + duration);
    get_s(item, "status") == Some(AlertStatus::Resolved.as_str())
        || (get_s(item, "job_state") == Some(JobState::Done.as_str())
            && verdict_ms.is_some_and(|at| at >= before_ms))
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
            // A decision not to write is taken on a fresh item, or on what no later write can
            // undo: a resolution is final, and a verdict only gets newer (the common case, a
            // repeat within the interval, costs no read).
            if current.is_fresh() || never_eligible_again(&item, before_ms) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn a_remembered_copy_decides_no_only_when_no_later_write_can_change_it() {
        let fresh_verdict = item(&[
            ("status", s("firing")),
            ("state", s("triaged")),
            ("job_state", s("done")),
            ("report_json", s("{}")),
            ("leased_ms", n(1_000)),
            ("duration_ms", n(500)),
        ]);
        assert!(!eligible(&fresh_verdict, 1_500));
        assert!(
            never_eligible_again(&fresh_verdict, 1_500),
            "the verdict only gets newer"
        );
        assert!(eligible(&fresh_verdict, 1_501));
        let mut resolved = fresh_verdict.clone();
        resolved.insert("status".into(), s("resolved"));
        assert!(
            never_eligible_again(&resolved, 10_000),
            "a resolution is final"
        );
        let mut running = fresh_verdict.clone();
        running.insert("job_state".into(), s("leased"));
        running.insert("state".into(), s("running"));
        assert!(!eligible(&running, 10_000));
        assert!(
            !never_eligible_again(&running, 10_000),
            "a running triage may end with an old enough verdict: read before deciding"
        );
    }
}
