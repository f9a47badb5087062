//! Triage jobs in the SQLite ledger: leasing (taking over expired leases, failing jobs whose
//! last attempt's holder vanished), renewing, completing, failing and releasing, and taking back
//! at start every lease a crashed predecessor left.

use super::*;

pub(super) async fn lease_next(
    ledger: &SqliteLedger,
    owner: &str,
    lease: Duration,
    now: OffsetDateTime,
) -> Result<Option<LeasedJob>, LedgerError> {
    let owner = owner.to_string();
    let now_ms = unix_ms(now);
    let routes = Arc::clone(&ledger.routes);
    ledger
        .write(move |tx| lease_one(tx, &routes, &owner, lease, now_ms))
        .await
}

pub(super) async fn renew(
    ledger: &SqliteLedger,
    job_id: i64,
    owner: &str,
    lease: Duration,
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let owner = owner.to_string();
    let now_ms = unix_ms(now);
    ledger
        .write(move |tx| {
            let changed = tx
                .execute(
                    "UPDATE jobs SET lease_expires_ms = ?3, updated_ms = ?4
                 WHERE id = ?1 AND state = 'leased' AND lease_owner = ?2",
                    params![job_id, owner, now_ms + lease.as_millis() as i64, now_ms],
                )
                .map_err(unavailable)?;
            Ok(changed == 1)
        })
        .await
}

pub(super) async fn complete(
    ledger: &SqliteLedger,
    job_id: i64,
    owner: &str,
    report_json: String,
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let owner = owner.to_string();
    let now_ms = unix_ms(now);
    let routes = Arc::clone(&ledger.routes);
    ledger
        .write(move |tx| {
            let Some((episode_id, leased_ms, _, _)) = holds_lease(tx, job_id, &owner)? else {
                return Ok(false);
            };
            let kind = super::retriage::verdict_kind(tx, &episode_id)?;
            tx.execute(
                "UPDATE jobs SET state = 'done', lease_owner = NULL, lease_expires_ms = NULL,
                 duration_ms = ?2, updated_ms = ?3 WHERE id = ?1",
                params![job_id, (now_ms - leased_ms).max(0), now_ms],
            )
            .map_err(unavailable)?;
            tx.execute(
                "UPDATE episodes SET state = 'triaged', report_json = ?2 WHERE id = ?1",
                params![episode_id, report_json],
            )
            .map_err(unavailable)?;
            enqueue_deliveries(tx, &routes, &episode_id, kind, now_ms)?;
            Ok(true)
        })
        .await
}

pub(super) async fn fail(
    ledger: &SqliteLedger,
    job_id: i64,
    owner: &str,
    error: String,
    retry_after: Duration,
    now: OffsetDateTime,
) -> Result<JobState, LedgerError> {
    let owner = owner.to_string();
    let now_ms = unix_ms(now);
    let routes = Arc::clone(&ledger.routes);
    ledger
        .write(move |tx| {
            let Some((episode_id, _, attempts, max_attempts)) = holds_lease(tx, job_id, &owner)?
            else {
                // The lease was lost meanwhile; whoever holds the job now decides.
                return Ok(JobState::Leased);
            };
            let error = format!("attempt {attempts} of {max_attempts}: {error}");
            if attempts >= max_attempts {
                end_failed(tx, &routes, job_id, &episode_id, &error, now_ms)?;
                Ok(JobState::Failed)
            } else {
                let not_before = now_ms + retry_after.as_millis() as i64;
                set_job_state(
                    tx,
                    job_id,
                    &episode_id,
                    JobState::Queued,
                    EpisodeState::Queued,
                    Some(&error),
                    not_before,
                    now_ms,
                )?;
                Ok(JobState::Queued)
            }
        })
        .await
}

pub(super) async fn release(
    ledger: &SqliteLedger,
    job_id: i64,
    owner: &str,
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let owner = owner.to_string();
    let now_ms = unix_ms(now);
    ledger
        .write(move |tx| {
            if let Some((episode_id, _, _, _)) = holds_lease(tx, job_id, &owner)? {
                tx.execute(
                    "UPDATE jobs SET attempts = MAX(attempts - 1, 0) WHERE id = ?1",
                    params![job_id],
                )
                .map_err(unavailable)?;
                set_job_state(
                    tx,
                    job_id,
                    &episode_id,
                    JobState::Queued,
                    EpisodeState::Queued,
                    None,
                    now_ms,
                    now_ms,
                )?;
            }
            Ok(())
        })
        .await
}

/// At start, no lease can be alive: the file lock says no other process uses the ledger. Jobs
/// left leased by a crash are queued again (the interrupted attempt counts, so a job that kills
/// the process cannot loop forever), or failed when they used every attempt.
pub(super) fn reclaim_leases(
    connection: &mut Connection,
    routes: &[Route],
    now: OffsetDateTime,
) -> Result<(), LedgerError> {
    let tx = connection.transaction().map_err(unavailable)?;
    let now_ms = unix_ms(now);
    // Deliveries in flight when the process stopped go out again at once; their attempt counts,
    // and what it may have sent is in doubt from its claim to its lease's end (or now), which
    // tells the dispatcher where to look before sending again.
    tx.execute(
        concat!(
            "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_expires_ms = NULL,
             next_attempt_ms = ?1, updated_ms = ?1,
             doubt_from_ms = ",
            outbox::doubt_from_widened!(),
            ",
             doubt_to_ms = ",
            outbox::doubt_to_widened!("COALESCE(MIN(lease_expires_ms, ?1), ?1)"),
            ",
             last_error = 'attempt ' || attempts || ' interrupted: the previous cabal-triage process stopped while it ran'
         WHERE state = 'sending'"
        ),
        params![now_ms],
    )
    .map_err(unavailable)?;
    let leased: Vec<(i64, String, u32, u32)> = {
        let mut statement = tx
            .prepare(
                "SELECT id, episode_id, attempts, max_attempts FROM jobs WHERE state = 'leased'",
            )
            .map_err(unavailable)?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)?
    };
    for (job_id, episode_id, attempts, max_attempts) in leased {
        let error = format!("attempt {attempts} interrupted: the previous cabal-triage process stopped while it ran");
        let (job_state, episode_state) = if attempts >= max_attempts {
            enqueue_deliveries(&tx, routes, &episode_id, DeliveryKind::TriageFailed, now_ms)?;
            (JobState::Failed, EpisodeState::Failed)
        } else {
            (JobState::Queued, EpisodeState::Queued)
        };
        set_job_state(
            &tx,
            job_id,
            &episode_id,
            job_state,
            episode_state,
            Some(&error),
            now_ms,
            now_ms,
        )?;
    }
    tx.commit().map_err(unavailable)
}

/// Ends a job `failed` with `error` and tells the destinations (`triage_failed` rows), in the
/// transaction `tx`.
fn end_failed(
    tx: &Transaction<'_>,
    routes: &[Route],
    job_id: i64,
    episode_id: &str,
    error: &str,
    now_ms: i64,
) -> Result<(), LedgerError> {
    set_job_state(
        tx,
        job_id,
        episode_id,
        JobState::Failed,
        EpisodeState::Failed,
        Some(error),
        now_ms,
        now_ms,
    )?;
    enqueue_deliveries(tx, routes, episode_id, DeliveryKind::TriageFailed, now_ms)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn set_job_state(
    tx: &Transaction<'_>,
    job_id: i64,
    episode_id: &str,
    job_state: JobState,
    episode_state: EpisodeState,
    error: Option<&str>,
    not_before_ms: i64,
    now_ms: i64,
) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE jobs SET state = ?2, last_error = COALESCE(?3, last_error), not_before_ms = ?4,
                lease_owner = NULL, lease_expires_ms = NULL, updated_ms = ?5
         WHERE id = ?1",
        params![job_id, job_state.as_str(), error, not_before_ms, now_ms],
    )
    .map_err(unavailable)?;
    set_episode_state(tx, episode_id, episode_state)
}

pub(super) fn set_episode_state(
    tx: &Transaction<'_>,
    episode_id: &str,
    state: EpisodeState,
) -> Result<(), LedgerError> {
    tx.execute(
        "UPDATE episodes SET state = ?2 WHERE id = ?1",
        params![episode_id, state.as_str()],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// Marks failed the leased jobs whose lease expired with no attempt left.
fn fail_exhausted_expired(
    tx: &Transaction<'_>,
    routes: &[Route],
    now_ms: i64,
) -> Result<(), LedgerError> {
    let exhausted: Vec<(i64, String, Option<String>, u32)> = {
        let mut statement = tx
            .prepare_cached(
                "SELECT id, episode_id, lease_owner, attempts FROM jobs
                 WHERE state = 'leased' AND lease_expires_ms < ?1 AND attempts >= max_attempts",
            )
            .map_err(unavailable)?;
        let rows = statement
            .query_map(params![now_ms], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(unavailable)?;
        rows.collect::<Result<_, _>>().map_err(unavailable)?
    };
    for (job_id, episode_id, owner, attempts) in exhausted {
        let error = format!(
            "attempt {attempts} lost: the lease of worker {} expired (crashed or stalled); no attempt left",
            owner.unwrap_or_default()
        );
        end_failed(tx, routes, job_id, &episode_id, &error, now_ms)?;
    }
    Ok(())
}

fn lease_one(
    tx: &Transaction<'_>,
    routes: &[Route],
    owner: &str,
    lease: Duration,
    now_ms: i64,
) -> Result<Option<LeasedJob>, LedgerError> {
    fail_exhausted_expired(tx, routes, now_ms)?;
    let candidate: Option<(i64, String, String, Option<String>)> = tx
        .prepare_cached(
            "SELECT id, episode_id, state, lease_owner FROM jobs
             WHERE (state = 'queued' AND not_before_ms <= ?1)
                OR (state = 'leased' AND lease_expires_ms < ?1)
             ORDER BY not_before_ms, id LIMIT 1",
        )
        .map_err(unavailable)?
        .query_row(params![now_ms], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()
        .map_err(unavailable)?;
    let Some((job_id, episode_id, state, previous_owner)) = candidate else {
        return Ok(None);
    };
    let expired_note = (state == "leased").then(|| {
        format!(
            "previous attempt lost: the lease of worker {} expired (crashed or stalled)",
            previous_owner.unwrap_or_default()
        )
    });
    let lease_expires = now_ms + lease.as_millis() as i64;
    tx.execute(
        "UPDATE jobs SET state = 'leased', attempts = attempts + 1, lease_owner = ?2,
             lease_expires_ms = ?3, leased_ms = ?4, updated_ms = ?4,
             last_error = COALESCE(?5, last_error)
         WHERE id = ?1",
        params![job_id, owner, lease_expires, now_ms, expired_note],
    )
    .map_err(unavailable)?;
    set_episode_state(tx, &episode_id, EpisodeState::Running)?;
    let (attempt, max_attempts, group_key, alert_json): (u32, u32, String, String) = tx
        .query_row(
            "SELECT j.attempts, j.max_attempts, e.group_key, e.alert_json
             FROM jobs j JOIN episodes e ON e.id = j.episode_id WHERE j.id = ?1",
            params![job_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .map_err(unavailable)?;
    let alert: WebhookAlert =
        serde_json::from_str(&alert_json).map_err(|e| corrupt("stored alert", e))?;
    // "Triage running" once per episode: a job released at shutdown starts again at attempt 1.
    let announced: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM deliveries WHERE episode_id = ?1 AND kind = 'started')",
            params![episode_id],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    if attempt == 1 && !announced {
        enqueue_deliveries(tx, routes, &episode_id, DeliveryKind::Started, now_ms)?;
    }
    Ok(Some(LeasedJob {
        job_id,
        episode_id,
        group_key,
        alert,
        attempt,
        max_attempts,
    }))
}

/// Whether `owner` still holds the lease on `job_id`.
fn holds_lease(
    tx: &Transaction<'_>,
    job_id: i64,
    owner: &str,
) -> Result<Option<(String, i64, u32, u32)>, LedgerError> {
    tx.query_row(
        "SELECT episode_id, COALESCE(leased_ms, 0), attempts, max_attempts FROM jobs
         WHERE id = ?1 AND state = 'leased' AND lease_owner = ?2",
        params![job_id, owner],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )
    .optional()
    .map_err(unavailable)
}
