//! Fresh verdicts in the SQLite ledger: claiming a re-triage of an episode whose verdict has
//! aged (`Ledger::claim_retriage`), and telling a re-triage's report from the first one when it
//! is stored. The claim is one statement conditioned on the episode being eligible
//! (`retriage_allowed`), inside the writer's transaction, so two claims cannot both succeed.

use super::*;

/// What the claim reads: the episode's status, state and report, its job's id, state, lease
/// start and duration.
type EpisodeAndJob = (
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<i64>,
    Option<i64>,
);

pub(super) async fn claim(
    ledger: &SqliteLedger,
    episode_id: &str,
    verdict_before: OffsetDateTime,
    reason: &str,
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let episode_id = episode_id.to_string();
    let reason = reason.to_string();
    let before_ms = unix_ms(verdict_before);
    let now_ms = unix_ms(now);
    let at = rfc3339(now);
    ledger
        .write(move |tx| {
            let found: Option<EpisodeAndJob> = tx
                .query_row(
                    "SELECT e.status, e.state, e.report_json, j.id, j.state, j.leased_ms, j.duration_ms
                     FROM episodes e JOIN jobs j ON j.episode_id = e.id WHERE e.id = ?1",
                    params![episode_id],
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
                .optional()
                .map_err(unavailable)?;
            let Some((status, state, report_json, job_id, job_state, leased_ms, duration_ms)) =
                found
            else {
                return Ok(false);
            };
            let verdict_ms = leased_ms.map(|leased| leased + duration_ms.unwrap_or(0));
            if !retriage_allowed(
                &status,
                &state,
                Some(&job_state),
                report_json.is_some(),
                verdict_ms,
                before_ms,
            ) {
                return Ok(false);
            }
            tx.execute(
                "UPDATE jobs SET state = 'queued', attempts = 0, not_before_ms = ?2,
                     lease_owner = NULL, lease_expires_ms = NULL, last_error = NULL, updated_ms = ?2
                 WHERE id = ?1 AND state = 'done'",
                params![job_id, now_ms],
            )
            .map_err(unavailable)?;
            jobs::set_episode_state(tx, &episode_id, EpisodeState::Queued)?;
            if let Some(verdict) = report_json.as_deref().and_then(verdict_json_of) {
                outbox::set_ref(tx, &episode_id, PREVIOUS_VERDICT_REF, &verdict, now_ms)?;
            }
            outbox::set_ref(tx, &episode_id, RETRIAGED_AT_REF, &at, now_ms)?;
            outbox::set_ref(tx, &episode_id, RETRIAGE_REASON_REF, &reason, now_ms)?;
            Ok(true)
        })
        .await
}

pub(super) async fn record_action(
    ledger: &SqliteLedger,
    episode_id: &str,
    action: &str,
    what: &str,
    now: OffsetDateTime,
) -> Result<bool, LedgerError> {
    let episode_id = episode_id.to_string();
    let key = operator_action_key(action, now);
    let what = what.to_string();
    let now_ms = unix_ms(now);
    ledger
        .write(move |tx| {
            let exists: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM episodes WHERE id = ?1)",
                    params![episode_id],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            if exists {
                outbox::set_ref(tx, &episode_id, &key, &what, now_ms)?;
            }
            Ok(exists)
        })
        .await
}

/// The kind of row a report stored now causes: `retriaged` when it replaces one (a claimed
/// re-triage), else `verdict`.
pub(super) fn verdict_kind(
    tx: &Transaction<'_>,
    episode_id: &str,
) -> Result<DeliveryKind, LedgerError> {
    let replaces: bool = tx
        .query_row(
            "SELECT report_json IS NOT NULL FROM episodes WHERE id = ?1",
            params![episode_id],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    Ok(if replaces {
        DeliveryKind::Retriaged
    } else {
        DeliveryKind::Verdict
    })
}
