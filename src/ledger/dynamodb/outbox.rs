//! The outbox side of the DynamoDB ledger. Delivery rows live in their episode item (`rows`), so
//! claiming a row and recording its outcome are conditional updates of that item under its
//! `version`: a row is taken when it is the oldest unfinished row of its destination and either
//! pending and due or sending with an expired lease. The episode's `outbox_sk` (in the sparse
//! `outbox` index) says when its next row is due. References (Slack `ts`, ...) are a map on the
//! same item, written with the outcome of the attempt that produced them (one write), or on
//! their own without the version (they do not race with anything).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::change::Change;
use super::item::*;
use super::*;
use crate::alert::WebhookAlert;
use crate::ledger::{
    from_unix_ms, ClaimedDelivery, DeliveryResult, DeliveryState, DoubtWindow, LedgerError,
};

pub(super) async fn claim(
    ledger: &DynamoLedger,
    owner: &str,
    lease: Duration,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<ClaimedDelivery>, LedgerError> {
    let generation = ledger.row_generation.load(Ordering::Relaxed);
    let mut refill = RefillsDone::default();
    let mut claimed: Vec<(i64, String, ClaimedDelivery)> = Vec::new();
    let mut visited: HashMap<String, ()> = HashMap::new();
    while claimed.len() < limit {
        let Some(candidate) = ledger
            .next_candidate(
                &ledger.rows_queue,
                (OUTBOX_INDEX, OUTBOX_PK, OUTBOX_SK),
                "D",
                &super::ROW_CANDIDATES,
                generation,
                now_ms,
                &mut refill,
            )
            .await?
        else {
            break;
        };
        let Some(id) = get_s(&candidate, PK).and_then(episode_id_of_pk) else {
            continue;
        };
        if visited.insert(id.to_string(), ()).is_some() {
            continue;
        }
        let Some(taken) =
            claim_episode(ledger, id, owner, lease, now_ms, limit - claimed.len()).await?
        else {
            ledger
                .taken_elsewhere(&ledger.rows_queue, &mut refill)
                .await;
            continue;
        };
        for (key, delivery) in taken {
            ledger
                .claimed_rows
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(delivery.id, (id.to_string(), key.clone()));
            claimed.push((crate::ledger::unix_ms(delivery.created_at), key, delivery));
        }
    }
    claimed.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    Ok(claimed.into_iter().map(|(_, _, d)| d).collect())
}

/// Takes the due head rows of one episode (at most `limit`), in one conditional write. None:
/// nothing is due by a fresh copy of the episode (another replica claimed the rows, or the
/// episode is gone), so the candidate that led here was stale.
async fn claim_episode(
    ledger: &DynamoLedger,
    id: &str,
    owner: &str,
    lease: Duration,
    now_ms: i64,
    limit: usize,
) -> Result<Option<Vec<(String, ClaimedDelivery)>>, LedgerError> {
    let mut current = WorkingCopy::new(ledger, id);
    for _ in 0..CONFLICT_RETRIES {
        let Some(episode) = current.get().await? else {
            return Ok(None);
        };
        let version = require_n(&episode, "version")?;
        let mut rows = rows_of(&episode)?;
        let due: Vec<String> = heads(&rows)
            .into_iter()
            .filter(|key| rows[*key].due_ms() <= now_ms)
            .take(limit)
            .map(str::to_string)
            .collect();
        if due.is_empty() {
            if !current.is_fresh() {
                // The index says something is due: a remembered copy may be out of date.
                continue;
            }
            return Ok(None);
        }
        let expires = now_ms + lease.as_millis() as i64;
        for key in &due {
            let row = rows.get_mut(key).expect("a head is a row");
            if row.state == DeliveryState::Sending {
                // Its attempt was lost (stopped process, expired lease): whatever it sent is
                // in doubt, from its claim to its lease's end.
                let from = row.claimed_ms.unwrap_or(row.created_ms);
                row.widen_doubt(from, row.lease_expires_ms.unwrap_or(now_ms));
            }
            row.claimed_ms = Some(now_ms);
            row.state = DeliveryState::Sending;
            row.attempts += 1;
            row.lease_owner = Some(owner.to_string());
            row.lease_expires_ms = Some(expires);
        }
        let change =
            DynamoLedger::versioned(DynamoLedger::with_rows(Change::new(), id, &rows), version);
        let claimed = match ledger.write(id, change).await? {
            WriteOutcome::Applied(now) => now,
            WriteOutcome::Conflict(now) => {
                current.conflict(now);
                continue;
            }
        };
        // What the deliveries carry (references, report, counts) is the item as written.
        let rows = rows_of(&claimed)?;
        return due
            .into_iter()
            .map(|key| {
                let row = rows.get(&key).ok_or_else(|| {
                    LedgerError::Corrupt(format!("claimed row {key} of episode {id} vanished"))
                })?;
                let delivery = to_claimed(&claimed, row, id, &key)?;
                Ok((key, delivery))
            })
            .collect::<Result<_, _>>()
            .map(Some);
    }
    // Busy episode: leave it to the next round rather than fail the whole claim.
    Ok(Some(Vec::new()))
}

fn to_claimed(
    episode: &Item,
    row: &Row,
    id: &str,
    key: &str,
) -> Result<ClaimedDelivery, LedgerError> {
    let alert: WebhookAlert = serde_json::from_str(require_s(episode, "alert_json")?)
        .map_err(|e| LedgerError::Corrupt(format!("stored alert: {e}")))?;
    Ok(ClaimedDelivery {
        id: stable_id(&format!("{id}\u{0}{key}")),
        destination: row.destination.clone(),
        kind: row.kind,
        attempt: row.attempts.max(1),
        in_doubt: DoubtWindow::from_ms(row.doubt_from_ms, row.doubt_to_ms),
        created_at: from_unix_ms(row.created_ms),
        episode: summary(episode)?,
        alert,
        report_json: get_s(episode, "report_json").map(str::to_string),
        job_error: get_s(episode, "last_error").map(str::to_string),
        refs: get_map(episode, "refs"),
    })
}

/// Records the outcome of a claimed row, with the episode references the attempt produced
/// (`refs`), in one write. False: the row is not this owner's any more.
pub(super) async fn record(
    ledger: &DynamoLedger,
    delivery_id: i64,
    owner: &str,
    result: DeliveryResult,
    refs: &[(&str, &str)],
    now_ms: i64,
) -> Result<bool, LedgerError> {
    let Some((id, key)) = ledger
        .claimed_rows
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&delivery_id)
        .cloned()
    else {
        return Ok(false);
    };
    let _one_at_a_time = ledger.record_lock(&id).lock().await;
    let mut current = WorkingCopy::new(ledger, &id);
    for _ in 0..CONFLICT_RETRIES {
        let Some(episode) = current.get().await? else {
            return Ok(false);
        };
        let version = require_n(&episode, "version")?;
        let mut rows = rows_of(&episode)?;
        let held = rows.get(&key).is_some_and(|row| {
            row.state == DeliveryState::Sending && row.lease_owner.as_deref() == Some(owner)
        });
        if !held {
            if !current.is_fresh() {
                continue;
            }
            // The lease expired and someone else has the row: they decide.
            return Ok(false);
        }
        let Some(row) = rows.get_mut(&key) else {
            return Ok(false);
        };
        row.lease_owner = None;
        row.lease_expires_ms = None;
        let finished = match &result {
            DeliveryResult::Retry { error, not_before } => {
                // It may have sent something before failing (a timeout after the request
                // left): in doubt from its claim until now.
                let from = row.claimed_ms.unwrap_or(row.created_ms);
                row.widen_doubt(from, now_ms);
                row.state = DeliveryState::Pending;
                row.last_error = Some(error.clone());
                row.next_attempt_ms = crate::ledger::unix_ms(*not_before);
                false
            }
            DeliveryResult::Released { reason } => {
                // No attempt was made: not counted, nothing in doubt.
                row.attempts = row.attempts.saturating_sub(1);
                row.state = DeliveryState::Pending;
                row.last_error = Some(reason.clone());
                row.next_attempt_ms = now_ms;
                false
            }
            DeliveryResult::Delivered { external_ref } => {
                row.state = DeliveryState::Delivered;
                row.next_attempt_ms = now_ms;
                if external_ref.is_some() {
                    row.external_ref = external_ref.clone();
                }
                true
            }
            DeliveryResult::Skipped { reason } => {
                row.state = DeliveryState::Skipped;
                row.next_attempt_ms = now_ms;
                row.last_error = Some(reason.clone());
                true
            }
            DeliveryResult::Failed { error } => {
                row.state = DeliveryState::Failed;
                row.next_attempt_ms = now_ms;
                row.last_error = Some(error.clone());
                true
            }
        };
        let change = refs.iter().fold(Change::new(), |change, (key, value)| {
            change.set_map_key("refs", key, s(*value))
        });
        let change = DynamoLedger::versioned(DynamoLedger::with_rows(change, &id, &rows), version);
        match ledger.write(&id, change).await? {
            WriteOutcome::Applied(_) => {
                if finished {
                    ledger
                        .claimed_rows
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&delivery_id);
                }
                ledger.row_generation.fetch_add(1, Ordering::Relaxed);
                return Ok(true);
            }
            WriteOutcome::Conflict(now) => current.conflict(now),
        }
    }
    Err(current
        .contention("the outcome is not recorded; the delivery is retried when its lease expires"))
}

/// Stores references (key, value) on the episode, all in one unconditional-but-existing write.
pub(super) async fn set_refs(
    ledger: &DynamoLedger,
    episode_id: &str,
    refs: &[(&str, &str)],
    _now_ms: i64,
) -> Result<(), LedgerError> {
    if refs.is_empty() {
        return Ok(());
    }
    let change = refs
        .iter()
        .fold(Change::new(), |change, (key, value)| {
            change.set_map_key("refs", key, s(*value))
        })
        .when("attribute_exists(#pk)", &[PK], Vec::new());
    if !ledger.update(episode_key(episode_id), change).await? {
        tracing::debug!(episode = %episode_id, "reference not stored: the episode was purged");
    }
    Ok(())
}
