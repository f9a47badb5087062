//! Reading episodes from the SQLite ledger: the list, one episode's detail, the counts behind
//! `/metrics`, and the purge of old episodes.

use super::*;

pub(super) async fn list_episodes(
    ledger: &SqliteLedger,
    query: EpisodeQuery,
) -> Result<Vec<EpisodeSummary>, LedgerError> {
    ledger
        .read(move |connection| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM episodes
             WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY last_seen_ms DESC, first_seen_ms DESC, id LIMIT ?3"
            );
            let mut statement = connection.prepare_cached(&sql).map_err(unavailable)?;
            let rows = statement
                .query_map(
                    params![
                        query.state.map(EpisodeState::as_str),
                        query.status.map(AlertStatus::as_str),
                        query.limit as i64
                    ],
                    summary_from_row,
                )
                .map_err(unavailable)?;
            let mut episodes = Vec::new();
            for row in rows {
                episodes.push(row.map_err(unavailable)?.into_summary()?);
            }
            Ok(episodes)
        })
        .await
}

pub(super) async fn get_episode(
    ledger: &SqliteLedger,
    id: &str,
) -> Result<Option<EpisodeDetail>, LedgerError> {
    let id = id.to_string();
    ledger
        .read(move |connection| {
            let sql = format!(
                "SELECT {SUMMARY_COLUMNS}, alert_json, report_json FROM episodes WHERE id = ?1"
            );
            let row = connection
                .query_row(&sql, params![id], |row| {
                    Ok((
                        summary_from_row(row)?,
                        row.get::<_, String>(11)?,
                        row.get::<_, Option<String>>(12)?,
                    ))
                })
                .optional()
                .map_err(unavailable)?;
            let Some((raw, alert_json, report_json)) = row else {
                return Ok(None);
            };
            let summary = raw.into_summary()?;
            let alert =
                serde_json::from_str(&alert_json).map_err(|e| corrupt("stored alert", e))?;
            let report = report_json
                .map(|text| serde_json::from_str(&text).map_err(|e| corrupt("stored report", e)))
                .transpose()?;
            let job = connection
            .query_row(
                "SELECT state, attempts, max_attempts, last_error, lease_expires_ms, duration_ms
                 FROM jobs WHERE episode_id = ?1",
                params![summary.id],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, u32>(1)?,
                        row.get::<_, u32>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<i64>>(4)?,
                        row.get::<_, Option<i64>>(5)?,
                    ))
                },
            )
            .optional()
            .map_err(unavailable)?
            .map(|(state, attempts, max_attempts, last_error, lease_expires, duration)| {
                Ok::<_, LedgerError>(JobView {
                    state: JobState::parse(&state).ok_or_else(|| corrupt("job state", &state))?,
                    attempts,
                    max_attempts,
                    last_error,
                    lease_expires_at: lease_expires.map(from_unix_ms),
                    duration_ms: duration.map(|d| d.max(0) as u64),
                })
            })
            .transpose()?;
            let mut statement = connection
                .prepare_cached(
                    "SELECT destination, kind, state, attempts, last_error, external_ref
                 FROM deliveries WHERE episode_id = ?1 ORDER BY id",
                )
                .map_err(unavailable)?;
            let deliveries = statement
                .query_map(params![summary.id], |row| {
                    Ok(DeliveryView {
                        destination: row.get(0)?,
                        kind: row.get(1)?,
                        state: row.get(2)?,
                        attempts: row.get(3)?,
                        last_error: row.get(4)?,
                        external_ref: row.get(5)?,
                    })
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let external_refs = read_refs(connection, &summary.id)?;
            Ok(Some(EpisodeDetail {
                external_refs,
                pagerduty_dedup_key: pagerduty_dedup_key(&summary.group_key),
                summary,
                alert,
                job,
                report,
                deliveries,
            }))
        })
        .await
}

pub(super) async fn stats(
    ledger: &SqliteLedger,
    now: OffsetDateTime,
) -> Result<LedgerStats, LedgerError> {
    let now_ms = unix_ms(now);
    ledger
        .read(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT state, COUNT(*) FROM episodes GROUP BY state")
                .map_err(unavailable)?;
            let counts: Vec<(String, i64)> = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            let episodes_by_state = EpisodeState::ALL
                .into_iter()
                .map(|state| {
                    let count = counts
                        .iter()
                        .find(|(s, _)| s == state.as_str())
                        .map(|(_, n)| *n as u64)
                        .unwrap_or(0);
                    (state, count)
                })
                .collect();
            let queue_depth: i64 = connection
                .query_row(
                    "SELECT COUNT(*) FROM jobs WHERE (state = 'queued' AND not_before_ms <= ?1)
                    OR (state = 'leased' AND lease_expires_ms < ?1)",
                    params![now_ms],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            Ok(LedgerStats {
                episodes_by_state,
                queue_depth: queue_depth.max(0) as u64,
            })
        })
        .await
}

pub(super) async fn purge(
    ledger: &SqliteLedger,
    cutoff: OffsetDateTime,
) -> Result<u64, LedgerError> {
    let cutoff_ms = unix_ms(cutoff);
    ledger
        .write(move |tx| {
            let deleted = tx
                .execute(
                    "DELETE FROM episodes WHERE last_seen_ms < ?1",
                    params![cutoff_ms],
                )
                .map_err(unavailable)?;
            Ok(deleted as u64)
        })
        .await
}

pub(super) fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawSummary> {
    Ok(RawSummary {
        id: row.get(0)?,
        alertname: row.get(1)?,
        status: row.get(2)?,
        state: row.get(3)?,
        group_key: row.get(4)?,
        fingerprint: row.get(5)?,
        starts_at: row.get(6)?,
        ends_at: row.get(7)?,
        first_seen_ms: row.get(8)?,
        last_seen_ms: row.get(9)?,
        repeats: row.get(10)?,
    })
}

pub(super) const SUMMARY_COLUMNS: &str = "id, alertname, status, state, group_key, fingerprint, starts_at, ends_at, first_seen_ms, last_seen_ms, repeats";

pub(super) struct RawSummary {
    id: String,
    alertname: String,
    status: String,
    state: String,
    group_key: String,
    fingerprint: String,
    starts_at: String,
    ends_at: Option<String>,
    first_seen_ms: i64,
    last_seen_ms: i64,
    repeats: i64,
}

impl RawSummary {
    pub(super) fn into_summary(self) -> Result<EpisodeSummary, LedgerError> {
        Ok(EpisodeSummary {
            status: match self.status.as_str() {
                "firing" => AlertStatus::Firing,
                "resolved" => AlertStatus::Resolved,
                other => return Err(corrupt("episode status", other)),
            },
            state: EpisodeState::parse(&self.state)
                .ok_or_else(|| corrupt("episode state", &self.state))?,
            starts_at: parse_rfc3339(&self.starts_at)?,
            ends_at: self.ends_at.as_deref().map(parse_rfc3339).transpose()?,
            first_seen: from_unix_ms(self.first_seen_ms),
            last_seen: from_unix_ms(self.last_seen_ms),
            repeats: self.repeats.max(0) as u64,
            id: self.id,
            alertname: self.alertname,
            group_key: self.group_key,
            fingerprint: self.fingerprint,
        })
    }
}

/// The episodes of `alertname` first seen at or after `since` (the recency index narrows the
/// rows: an episode first seen then was last seen then too), grouped by their stored verdict's
/// action (SQLite's JSON functions; a report that is not JSON counts without an action).
pub(super) async fn alert_history(
    ledger: &SqliteLedger,
    alertname: &str,
    exclude: &str,
    since: OffsetDateTime,
) -> Result<crate::report::history::AlertHistory, LedgerError> {
    let alertname = alertname.to_string();
    let exclude = exclude.to_string();
    let since_ms = unix_ms(since);
    ledger
        .read(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT CASE WHEN json_valid(report_json)
                                 THEN json_extract(report_json, '$.verdict.action') END AS action,
                            COUNT(*)
                     FROM episodes
                     WHERE last_seen_ms >= ?2 AND first_seen_ms >= ?2
                       AND alertname = ?1 AND id != ?3
                     GROUP BY action",
                )
                .map_err(unavailable)?;
            let rows = statement
                .query_map(params![alertname, since_ms, exclude], |row| {
                    // A non-text action (a number in a hand-edited report) counts without one.
                    let action = row.get::<_, Option<String>>(0).unwrap_or(None);
                    Ok((action, row.get::<_, i64>(1)?))
                })
                .map_err(unavailable)?;
            let mut history = crate::report::history::AlertHistory {
                since: Some(since),
                ..Default::default()
            };
            for row in rows {
                let (action, count) = row.map_err(unavailable)?;
                let count = u64::try_from(count).unwrap_or(0);
                history.episodes += count;
                if let Some(action) = action {
                    *history.by_action.entry(action).or_default() += count;
                }
            }
            Ok(history)
        })
        .await
}
