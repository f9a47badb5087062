//! Triage jobs in the DynamoDB ledger: the job lives on its episode item; leasing, completing,
//! failing and releasing are conditional writes of that item under its `version` (together with
//! the delivery rows they cause); renewing is conditioned on the lease owner.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::change::Change;
use super::item::*;
use super::*;
use crate::ledger::{DeliveryKind, EpisodeState, JobState, LeasedJob, LedgerError};

/// What one try at leasing a candidate found.
enum Try {
    Leased(Box<LeasedJob>),
    /// Not runnable (any more) by the item tried: someone else has it, it is done, or not due.
    NotRunnable,
    /// Its last attempt's lease had expired: it was marked failed.
    Ended,
    /// The item changed meanwhile; the current one (None: gone).
    Conflict(Option<Item>),
}

pub(super) async fn lease_next(
    ledger: &DynamoLedger,
    owner: &str,
    lease: Duration,
    now_ms: i64,
) -> Result<Option<LeasedJob>, LedgerError> {
    let generation = ledger.job_generation.load(Ordering::Relaxed);
    let mut refill = RefillsDone::default();
    loop {
        let Some(candidate) = ledger
            .next_candidate(
                &ledger.jobs_queue,
                (QUEUE_INDEX, QUEUE_PK, QUEUE_SK),
                "J",
                &super::JOB_CANDIDATES,
                generation,
                now_ms,
                &mut refill,
            )
            .await?
        else {
            return Ok(None);
        };
        let Some(id) = get_s(&candidate, PK).and_then(episode_id_of_pk) else {
            continue;
        };
        let mut current = WorkingCopy::new(ledger, id);
        for _ in 0..CONFLICT_RETRIES {
            let Some(item) = current.get().await? else {
                break;
            };
            match try_lease(ledger, &item, id, owner, lease, now_ms).await? {
                Try::Leased(job) => {
                    ledger
                        .leased_jobs
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(job.job_id, id.to_string());
                    return Ok(Some(*job));
                }
                // A remembered copy may be out of date: read before passing the job by.
                Try::NotRunnable if !current.is_fresh() => continue,
                Try::NotRunnable => {
                    ledger
                        .taken_elsewhere(&ledger.jobs_queue, &mut refill)
                        .await;
                    break;
                }
                Try::Ended => break,
                Try::Conflict(now) => current.conflict(now),
            }
        }
    }
}

async fn try_lease(
    ledger: &DynamoLedger,
    item: &Item,
    id: &str,
    owner: &str,
    lease: Duration,
    now_ms: i64,
) -> Result<Try, LedgerError> {
    let job_state = get_s(item, "job_state").and_then(JobState::parse);
    let attempts = get_n(item, "attempts").unwrap_or(0);
    let max_attempts = get_n(item, "max_attempts").unwrap_or(1);
    let expired = job_state == Some(JobState::Leased)
        && get_n(item, "lease_expires_ms").is_some_and(|expires| expires < now_ms);
    let due = job_state == Some(JobState::Queued)
        && get_n(item, "not_before_ms").is_some_and(|not_before| not_before <= now_ms);
    if !expired && !due {
        return Ok(Try::NotRunnable);
    }
    let version = require_n(item, "version")?;
    let previous_owner = get_s(item, "lease_owner").unwrap_or_default();
    // Renewing a lease does not bump the version: taking over an expired lease is also
    // conditioned on the expiry, so a lease renewed meanwhile stays with its holder.
    let still_expired = |change: Change| {
        if expired {
            change.when(
                "#lease_expires_ms < :now_ms",
                &["lease_expires_ms"],
                vec![(":now_ms", n(now_ms))],
            )
        } else {
            change
        }
    };
    if expired && attempts >= max_attempts {
        // The last attempt's holder vanished: the job fails, and says so.
        let error = format!(
            "attempt {attempts} lost: the lease of worker {previous_owner} expired (crashed or stalled); no attempt left"
        );
        let mut rows = rows_of(item)?;
        ledger.add_rows(&mut rows, DeliveryKind::TriageFailed, version + 1, now_ms);
        let change = end_lease(Change::new())
            .set("job_state", s(JobState::Failed.as_str()))
            .set("state", s(EpisodeState::Failed.as_str()))
            .set("last_error", s(error))
            .set("not_before_ms", n(now_ms))
            .remove(QUEUE_PK)
            .remove(QUEUE_SK);
        let change = DynamoLedger::versioned(DynamoLedger::with_rows(change, id, &rows), version);
        return match ledger.write(id, still_expired(change)).await? {
            WriteOutcome::Applied(_) => {
                ledger.row_generation.fetch_add(1, Ordering::Relaxed);
                Ok(Try::Ended)
            }
            WriteOutcome::Conflict(now) => Ok(Try::Conflict(now)),
        };
    }
    let attempt = attempts + 1;
    let announce = attempt == 1 && !get_bool(item, "announced");
    let mut rows = rows_of(item)?;
    let announced_now =
        announce && ledger.add_rows(&mut rows, DeliveryKind::Started, version + 1, now_ms);
    let expires = now_ms + lease.as_millis() as i64;
    let mut change = Change::new()
        .set("job_state", s(JobState::Leased.as_str()))
        .set("attempts", n(attempt))
        .set("lease_owner", s(owner))
        .set("lease_expires_ms", n(expires))
        .set("leased_ms", n(now_ms))
        .set("state", s(EpisodeState::Running.as_str()))
        .set(QUEUE_SK, s(job_queue_sk(expires, id)));
    if expired {
        change = change.set(
            "last_error",
            s(format!(
                "previous attempt lost: the lease of worker {previous_owner} expired (crashed or stalled)"
            )),
        );
    }
    if announce {
        change = change.set(
            "announced",
            aws_sdk_dynamodb::types::AttributeValue::Bool(true),
        );
    }
    if announced_now {
        change = DynamoLedger::with_rows(change, id, &rows);
    }
    let leased = match ledger
        .write(id, still_expired(DynamoLedger::versioned(change, version)))
        .await?
    {
        WriteOutcome::Applied(now) => now,
        WriteOutcome::Conflict(now) => return Ok(Try::Conflict(now)),
    };
    if announced_now {
        ledger.row_generation.fetch_add(1, Ordering::Relaxed);
    }
    let alert = serde_json::from_str(require_s(&leased, "alert_json")?)
        .map_err(|e| LedgerError::Corrupt(format!("stored alert: {e}")))?;
    Ok(Try::Leased(Box::new(LeasedJob {
        job_id: stable_id(id),
        episode_id: id.to_string(),
        group_key: require_s(&leased, "group_key")?.to_string(),
        alert,
        attempt: attempt.max(0) as u32,
        max_attempts: max_attempts.max(0) as u32,
    })))
}

fn end_lease(change: Change) -> Change {
    change.remove("lease_owner").remove("lease_expires_ms")
}

/// The episode id of a job this process leased.
fn episode_of(ledger: &DynamoLedger, job_id: i64) -> Option<String> {
    ledger
        .leased_jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&job_id)
        .cloned()
}

fn forget(ledger: &DynamoLedger, job_id: i64) {
    ledger
        .leased_jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&job_id);
}

/// Whether `owner` holds the lease of the episode's job, by this copy of the item.
fn is_held(item: &Item, owner: &str) -> bool {
    get_s(item, "job_state") == Some(JobState::Leased.as_str())
        && get_s(item, "lease_owner") == Some(owner)
}

/// The episode item to change when `owner` holds its job's lease (remembered, else read; a
/// copy that says the lease is gone is checked with a read). None: the lease is not `owner`'s.
async fn held(current: &mut WorkingCopy<'_>, owner: &str) -> Result<Option<Item>, LedgerError> {
    for _ in 0..2 {
        let Some(item) = current.get().await? else {
            return Ok(None);
        };
        if is_held(&item, owner) {
            return Ok(Some(item));
        }
        if current.is_fresh() {
            return Ok(None);
        }
    }
    Ok(None)
}

pub(super) async fn renew(
    ledger: &DynamoLedger,
    job_id: i64,
    owner: &str,
    lease: Duration,
    now_ms: i64,
) -> Result<bool, LedgerError> {
    let Some(id) = episode_of(ledger, job_id) else {
        return Ok(false);
    };
    let expires = now_ms + lease.as_millis() as i64;
    let change = Change::new()
        .set("lease_expires_ms", n(expires))
        .set(QUEUE_SK, s(job_queue_sk(expires, &id)))
        .when(
            "#job_state = :leased AND #lease_owner = :owner",
            &["job_state", "lease_owner"],
            vec![
                (":leased", s(JobState::Leased.as_str())),
                (":owner", s(owner)),
            ],
        );
    ledger.update(episode_key(&id), change).await
}

pub(super) async fn complete(
    ledger: &DynamoLedger,
    job_id: i64,
    owner: &str,
    report_json: String,
    now_ms: i64,
) -> Result<bool, LedgerError> {
    let Some(id) = episode_of(ledger, job_id) else {
        return Ok(false);
    };
    let action = verdict_action(&report_json);
    let mut current = WorkingCopy::new(ledger, &id);
    for _ in 0..CONFLICT_RETRIES {
        let Some(item) = held(&mut current, owner).await? else {
            return Ok(false);
        };
        let version = require_n(&item, "version")?;
        let leased_ms = get_n(&item, "leased_ms").unwrap_or(now_ms);
        let mut rows = rows_of(&item)?;
        // A report replacing one is a claimed re-triage's (`retriage.rs`).
        let kind = if get_s(&item, "report_json").is_some() {
            DeliveryKind::Retriaged
        } else {
            DeliveryKind::Verdict
        };
        ledger.add_rows(&mut rows, kind, version + 1, now_ms);
        let change = end_lease(Change::new())
            .set("job_state", s(JobState::Done.as_str()))
            .set("duration_ms", n((now_ms - leased_ms).max(0)))
            .set("state", s(EpisodeState::Triaged.as_str()))
            .set("report_json", s(report_json.clone()))
            .remove(QUEUE_PK)
            .remove(QUEUE_SK);
        // The verdict's action beside the report, for the alert's history (read without the
        // whole report).
        let change = match &action {
            Some(action) => change.set(VERDICT_ACTION, s(action.clone())),
            None => change.remove(VERDICT_ACTION),
        };
        let change = DynamoLedger::versioned(DynamoLedger::with_rows(change, &id, &rows), version);
        match ledger.write(&id, change).await? {
            WriteOutcome::Applied(_) => {
                forget(ledger, job_id);
                ledger.row_generation.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            WriteOutcome::Conflict(now) => current.conflict(now),
        }
    }
    Err(current.contention("the lease stays until it expires"))
}

pub(super) async fn fail(
    ledger: &DynamoLedger,
    job_id: i64,
    owner: &str,
    error: String,
    retry_after: Duration,
    now_ms: i64,
) -> Result<JobState, LedgerError> {
    let Some(id) = episode_of(ledger, job_id) else {
        return Ok(JobState::Leased);
    };
    let mut current = WorkingCopy::new(ledger, &id);
    for _ in 0..CONFLICT_RETRIES {
        let Some(item) = held(&mut current, owner).await? else {
            // The lease was lost meanwhile; whoever holds the job now decides.
            return Ok(JobState::Leased);
        };
        let version = require_n(&item, "version")?;
        let attempts = get_n(&item, "attempts").unwrap_or(0);
        let max_attempts = get_n(&item, "max_attempts").unwrap_or(1);
        let message = format!("attempt {attempts} of {max_attempts}: {error}");
        let exhausted = attempts >= max_attempts;
        let mut rows = rows_of(&item)?;
        if exhausted {
            ledger.add_rows(&mut rows, DeliveryKind::TriageFailed, version + 1, now_ms);
        }
        let change = end_lease(Change::new()).set("last_error", s(message));
        let (change, outcome) = if exhausted {
            (
                change
                    .set("job_state", s(JobState::Failed.as_str()))
                    .set("state", s(EpisodeState::Failed.as_str()))
                    .set("not_before_ms", n(now_ms))
                    .remove(QUEUE_PK)
                    .remove(QUEUE_SK),
                JobState::Failed,
            )
        } else {
            let not_before = now_ms + retry_after.as_millis() as i64;
            (
                change
                    .set("job_state", s(JobState::Queued.as_str()))
                    .set("state", s(EpisodeState::Queued.as_str()))
                    .set("not_before_ms", n(not_before))
                    .set(QUEUE_SK, s(job_queue_sk(not_before, &id))),
                JobState::Queued,
            )
        };
        let change = DynamoLedger::versioned(DynamoLedger::with_rows(change, &id, &rows), version);
        match ledger.write(&id, change).await? {
            WriteOutcome::Applied(_) => {
                forget(ledger, job_id);
                if exhausted {
                    ledger.row_generation.fetch_add(1, Ordering::Relaxed);
                } else {
                    ledger.job_generation.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(outcome);
            }
            WriteOutcome::Conflict(now) => current.conflict(now),
        }
    }
    Err(current.contention("the lease stays until it expires"))
}

pub(super) async fn release(
    ledger: &DynamoLedger,
    job_id: i64,
    owner: &str,
    now_ms: i64,
) -> Result<(), LedgerError> {
    let Some(id) = episode_of(ledger, job_id) else {
        return Ok(());
    };
    let mut current = WorkingCopy::new(ledger, &id);
    for _ in 0..CONFLICT_RETRIES {
        let Some(item) = held(&mut current, owner).await? else {
            return Ok(());
        };
        let version = require_n(&item, "version")?;
        let attempts = get_n(&item, "attempts").unwrap_or(0);
        let change = end_lease(Change::new())
            .set("attempts", n((attempts - 1).max(0)))
            .set("job_state", s(JobState::Queued.as_str()))
            .set("state", s(EpisodeState::Queued.as_str()))
            .set("not_before_ms", n(now_ms))
            .set(QUEUE_SK, s(job_queue_sk(now_ms, &id)));
        match ledger
            .write(&id, DynamoLedger::versioned(change, version))
            .await?
        {
            WriteOutcome::Applied(_) => {
                forget(ledger, job_id);
                ledger.job_generation.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            WriteOutcome::Conflict(now) => current.conflict(now),
        }
    }
    Err(current.contention("the lease stays until it expires"))
}

/// The attribute holding the stored report's `verdict.action` (the alert's history reads it).
pub(super) const VERDICT_ACTION: &str = "verdict_action";

/// `verdict.action` of a stored report, when it is JSON and has one.
pub(super) fn verdict_action(report_json: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Stored {
        verdict: Option<StoredVerdict>,
    }
    #[derive(serde::Deserialize)]
    struct StoredVerdict {
        action: Option<String>,
    }
    serde_json::from_str::<Stored>(report_json)
        .ok()?
        .verdict?
        .action
}
