//! The outbox side of the SQLite ledger: claiming due delivery rows under a lease, recording
//! how an attempt ended, and the per-episode references deliveries keep (Slack `ts`, ...).

use std::collections::BTreeMap;

use super::episodes::{summary_from_row, SUMMARY_COLUMNS};
use super::*;

/// SQL: the start of a row's window of doubt, widened to take in the attempt whose lease began
/// at `claimed_ms` (what `DoubtWindow::widen_ms` does for the DynamoDB ledger).
macro_rules! doubt_from_widened {
    () => {
        "MIN(COALESCE(doubt_from_ms, claimed_ms, created_ms), COALESCE(claimed_ms, created_ms))"
    };
}

/// SQL: the end of a row's window of doubt, widened to take in the attempt ending at `$to`.
macro_rules! doubt_to_widened {
    ($to:literal) => {
        concat!("MAX(COALESCE(doubt_to_ms, ", $to, "), ", $to, ")")
    };
}

pub(super) use {doubt_from_widened, doubt_to_widened};

/// Claims up to `limit` due rows; see `Ledger::claim_deliveries`.
pub(super) fn claim(
    tx: &Transaction<'_>,
    owner: &str,
    lease: Duration,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<ClaimedDelivery>, LedgerError> {
    let ids: Vec<i64> = {
        let mut statement = tx
            .prepare_cached(
                "SELECT d.id FROM deliveries d
                 WHERE ((d.state = 'pending' AND d.next_attempt_ms <= ?1)
                        OR (d.state = 'sending' AND d.lease_expires_ms < ?1))
                   AND NOT EXISTS (
                       SELECT 1 FROM deliveries p
                       WHERE p.episode_id = d.episode_id AND p.destination = d.destination
                         AND p.id < d.id AND p.state IN ('pending', 'sending'))
                 ORDER BY d.next_attempt_ms, d.id LIMIT ?2",
            )
            .map_err(unavailable)?;
        let rows = statement
            .query_map(params![now_ms, limit as i64], |row| row.get(0))
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)?
    };
    let lease_expires = now_ms + lease.as_millis() as i64;
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        // A row still `sending` lost its attempt (stopped process, expired lease): whatever
        // that attempt sent is in doubt, from its claim to its lease's end.
        tx.execute(
            concat!(
                "UPDATE deliveries SET
                 doubt_from_ms = CASE WHEN state = 'sending' THEN ",
                doubt_from_widened!(),
                " ELSE doubt_from_ms END,
                 doubt_to_ms = CASE WHEN state = 'sending' THEN ",
                doubt_to_widened!("lease_expires_ms"),
                " ELSE doubt_to_ms END,
                 state = 'sending', attempts = attempts + 1, lease_owner = ?2,
                 lease_expires_ms = ?3, claimed_ms = ?4, updated_ms = ?4 WHERE id = ?1"
            ),
            params![id, owner, lease_expires, now_ms],
        )
        .map_err(unavailable)?;
        claimed.push(load(tx, id)?);
    }
    Ok(claimed)
}

fn load(tx: &Transaction<'_>, id: i64) -> Result<ClaimedDelivery, LedgerError> {
    type DeliveryColumns = (String, String, String, u32, i64, Option<i64>, Option<i64>);
    let (episode_id, destination, kind, attempts, created_ms, doubt_from, doubt_to): DeliveryColumns =
        tx.query_row(
            "SELECT episode_id, destination, kind, attempts, created_ms, doubt_from_ms, doubt_to_ms
             FROM deliveries WHERE id = ?1",
            params![id],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                    row.get(5)?,
                    row.get(6)?,
                ))
            },
        )
        .map_err(unavailable)?;
    let sql =
        format!("SELECT {SUMMARY_COLUMNS}, alert_json, report_json FROM episodes WHERE id = ?1");
    let (raw, alert_json, report_json) = tx
        .query_row(&sql, params![episode_id], |row| {
            Ok((
                summary_from_row(row)?,
                row.get::<_, String>(11)?,
                row.get::<_, Option<String>>(12)?,
            ))
        })
        .map_err(unavailable)?;
    let alert: WebhookAlert =
        serde_json::from_str(&alert_json).map_err(|e| corrupt("stored alert", e))?;
    let job_error: Option<String> = tx
        .query_row(
            "SELECT last_error FROM jobs WHERE episode_id = ?1",
            params![episode_id],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?
        .flatten();
    Ok(ClaimedDelivery {
        id,
        kind: DeliveryKind::parse(&kind).ok_or_else(|| corrupt("delivery kind", &kind))?,
        destination,
        attempt: attempts,
        in_doubt: DoubtWindow::from_ms(doubt_from, doubt_to),
        created_at: from_unix_ms(created_ms),
        episode: raw.into_summary()?,
        alert,
        report_json,
        job_error,
        refs: read_refs(tx, &episode_id)?,
    })
}

/// Records an attempt's end; false when `owner` no longer holds the row.
pub(super) fn record(
    tx: &Transaction<'_>,
    id: i64,
    owner: &str,
    result: &DeliveryResult,
    now_ms: i64,
) -> Result<bool, LedgerError> {
    // A failed attempt may have sent something (a timeout after the request left): it widens
    // the row's window of doubt to cover its lease so far. A released row made no attempt: its
    // claim is not counted.
    let (widen_doubt, uncount) = match result {
        DeliveryResult::Retry { .. } => (true, false),
        DeliveryResult::Released { .. } => (false, true),
        _ => (false, false),
    };
    let (state, error, external_ref, next_ms) = match result {
        DeliveryResult::Delivered { external_ref } => (
            DeliveryState::Delivered,
            None,
            external_ref.as_deref(),
            now_ms,
        ),
        DeliveryResult::Skipped { reason } => {
            (DeliveryState::Skipped, Some(reason.as_str()), None, now_ms)
        }
        DeliveryResult::Retry { error, not_before } => (
            DeliveryState::Pending,
            Some(error.as_str()),
            None,
            crate::ledger::unix_ms(*not_before),
        ),
        DeliveryResult::Released { reason } => {
            (DeliveryState::Pending, Some(reason.as_str()), None, now_ms)
        }
        DeliveryResult::Failed { error } => {
            (DeliveryState::Failed, Some(error.as_str()), None, now_ms)
        }
    };
    let changed = tx
        .execute(
            concat!(
                "UPDATE deliveries SET state = ?3, last_error = COALESCE(?4, last_error),
                 external_ref = COALESCE(?5, external_ref), next_attempt_ms = ?6,
                 doubt_from_ms = CASE WHEN ?8 THEN ",
                doubt_from_widened!(),
                " ELSE doubt_from_ms END,
                 doubt_to_ms = CASE WHEN ?8 THEN ",
                doubt_to_widened!("?7"),
                " ELSE doubt_to_ms END,
                 attempts = CASE WHEN ?9 THEN MAX(attempts - 1, 0) ELSE attempts END,
                 lease_owner = NULL, lease_expires_ms = NULL, updated_ms = ?7
             WHERE id = ?1 AND state = 'sending' AND lease_owner = ?2"
            ),
            params![
                id,
                owner,
                state.as_str(),
                error,
                external_ref,
                next_ms,
                now_ms,
                widen_doubt,
                uncount
            ],
        )
        .map_err(unavailable)?;
    Ok(changed == 1)
}

pub(super) fn set_ref(
    tx: &Transaction<'_>,
    episode_id: &str,
    key: &str,
    value: &str,
    now_ms: i64,
) -> Result<(), LedgerError> {
    tx.execute(
        "INSERT INTO episode_refs (episode_id, key, value, updated_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (episode_id, key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms",
        params![episode_id, key, value, now_ms],
    )
    .map_err(unavailable)?;
    Ok(())
}

pub(super) fn read_refs(
    connection: &Connection,
    episode_id: &str,
) -> Result<BTreeMap<String, String>, LedgerError> {
    let mut statement = connection
        .prepare_cached("SELECT key, value FROM episode_refs WHERE episode_id = ?1")
        .map_err(unavailable)?;
    let rows = statement
        .query_map(params![episode_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(unavailable)?;
    rows.collect::<Result<_, _>>().map_err(unavailable)
}

pub(super) async fn claim_deliveries(
    ledger: &SqliteLedger,
    owner: &str,
    lease: Duration,
    now: OffsetDateTime,
    limit: usize,
) -> Result<Vec<ClaimedDelivery>, LedgerError> {
    let owner = owner.to_string();
    let now_ms = unix_ms(now);
    ledger
        .write(move |tx| outbox::claim(tx, &owner, lease, now_ms, limit))
        .await
}

pub(super) async fn record_delivery(
    ledger: &SqliteLedger,
    delivery_id: i64,
    owner: &str,
    result: DeliveryResult,
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let owner = owner.to_string();
    let now_ms = unix_ms(now);
    ledger
        .write(move |tx| outbox::record(tx, delivery_id, &owner, &result, now_ms))
        .await
}

pub(super) async fn record_delivery_with_refs(
    ledger: &SqliteLedger,
    delivery_id: i64,
    owner: &str,
    result: DeliveryResult,
    (episode_id, refs): (&str, &[(&str, &str)]),
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let owner = owner.to_string();
    let episode_id = episode_id.to_string();
    let refs = owned_refs(refs);
    let now_ms = unix_ms(now);
    // One transaction: the references (stored whoever holds the row), then the outcome.
    ledger
        .write(move |tx| {
            for (key, value) in &refs {
                outbox::set_ref(tx, &episode_id, key, value, now_ms)?;
            }
            outbox::record(tx, delivery_id, &owner, &result, now_ms)
        })
        .await
}

pub(super) fn enqueue_deliveries(
    tx: &Transaction<'_>,
    routes: &[Route],
    episode_id: &str,
    kind: DeliveryKind,
    now_ms: i64,
) -> Result<(), LedgerError> {
    for route in routes {
        if !route.wants(kind) {
            continue;
        }
        let destination = &route.name;
        if kind == DeliveryKind::Repeat {
            // Repeats coalesce: one waiting repeat row per episode and destination is enough
            // (HA peers and retries can re-send a group several times within seconds). And a
            // repeat gets no row before one that posts the episode's message
            // (`repeat_row_wanted`).
            let mut statement = tx
                .prepare_cached(
                    "SELECT kind, state FROM deliveries WHERE episode_id = ?1 AND destination = ?2",
                )
                .map_err(unavailable)?;
            let earlier: Vec<(String, String)> = statement
                .query_map(params![episode_id, destination], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .and_then(|rows| rows.collect())
                .map_err(unavailable)?;
            let waiting = earlier
                .iter()
                .any(|(kind, state)| kind == "repeat" && state == "pending");
            let kinds = earlier
                .iter()
                .filter_map(|(kind, _)| DeliveryKind::parse(kind));
            if waiting || !repeat_row_wanted(route, kinds) {
                continue;
            }
        }
        let kind = kind.as_str();
        tx.execute(
            "INSERT INTO deliveries (episode_id, destination, kind, state, next_attempt_ms, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, 'pending', ?4, ?4, ?4)",
            params![episode_id, destination, kind, now_ms],
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

/// References as owned pairs, to move into a write closure.
fn owned_refs(refs: &[(&str, &str)]) -> Vec<(String, String)> {
    refs.iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect()
}
