//! Recording a notification in the SQLite ledger: each alert creates its episode (with a
//! triage job when it has a runbook and fires), or counts a repeat, or resolves the episode,
//! all in one group commit.

use super::*;

pub(super) async fn ingest(
    ledger: &SqliteLedger,
    alerts: Vec<IncomingAlert>,
    now: OffsetDateTime,
) -> Result<Vec<IngestResult>, LedgerError> {
    let routes = Arc::clone(&ledger.routes);
    let now_ms = unix_ms(now);
    ledger
        .write(move |tx| {
            alerts
                .iter()
                .map(|incoming| ingest_one(tx, &routes, incoming, now_ms))
                .collect()
        })
        .await
}

fn ingest_one(
    tx: &Transaction<'_>,
    routes: &[Route],
    incoming: &IncomingAlert,
    now_ms: i64,
) -> Result<IngestResult, LedgerError> {
    let id = incoming.key.id();
    let alertname = incoming.alert.alertname().to_string();
    let existing: Option<(String, String)> = tx
        .query_row(
            "SELECT state, status FROM episodes WHERE id = ?1",
            params![id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
    let ends_at = incoming.alert.ends_at.map(rfc3339);
    match existing {
        None => {
            let firing = incoming.alert.status == AlertStatus::Firing;
            let state = match (incoming.has_runbook, firing) {
                (false, _) => EpisodeState::NoRunbook,
                (true, true) => EpisodeState::Queued,
                (true, false) => EpisodeState::Skipped,
            };
            let alert_json =
                serde_json::to_string(&incoming.alert).map_err(|e| corrupt("alert", e))?;
            tx.execute(
                "INSERT INTO episodes (id, group_key, fingerprint, starts_at, alertname, status, state,
                     ends_at, first_seen_ms, last_seen_ms, repeats, alert_json, receiver, external_url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, 0, ?10, ?11, ?12)",
                params![
                    id,
                    incoming.key.group_key,
                    incoming.key.fingerprint,
                    incoming.key.starts_at_text(),
                    alertname,
                    incoming.alert.status.as_str(),
                    state.as_str(),
                    ends_at,
                    now_ms,
                    alert_json,
                    incoming.receiver,
                    incoming.external_url,
                ],
            )
            .map_err(unavailable)?;
            if state == EpisodeState::Queued {
                tx.execute(
                    "INSERT INTO jobs (episode_id, state, attempts, max_attempts, not_before_ms, created_ms, updated_ms)
                     VALUES (?1, 'queued', 0, ?2, ?3, ?3, ?3)",
                    params![id, incoming.max_attempts, now_ms],
                )
                .map_err(unavailable)?;
            }
            if state == EpisodeState::NoRunbook && incoming.announce {
                enqueue_deliveries(tx, routes, &id, DeliveryKind::Started, now_ms)?;
            }
            Ok(IngestResult {
                id,
                alertname,
                state,
                outcome: IngestOutcome::Created,
            })
        }
        Some((state_text, status_text)) => {
            let state = EpisodeState::parse(&state_text)
                .ok_or_else(|| corrupt("episode state", &state_text))?;
            let resolves =
                incoming.alert.status == AlertStatus::Resolved && status_text == "firing";
            if resolves {
                // A resolution is news, not a repeat. Once resolved an episode stays resolved: in
                // HA, a firing notification from a slower peer can arrive after the resolution.
                tx.execute(
                    "UPDATE episodes SET status = 'resolved', ends_at = ?2, last_seen_ms = ?3 WHERE id = ?1",
                    params![id, ends_at, now_ms],
                )
                .map_err(unavailable)?;
                enqueue_deliveries(tx, routes, &id, DeliveryKind::Resolved, now_ms)?;
                Ok(IngestResult {
                    id,
                    alertname,
                    state,
                    outcome: IngestOutcome::Resolved,
                })
            } else {
                tx.execute(
                    "UPDATE episodes SET repeats = repeats + 1, last_seen_ms = ?2 WHERE id = ?1",
                    params![id, now_ms],
                )
                .map_err(unavailable)?;
                if status_text == "firing"
                    && !matches!(state, EpisodeState::NoRunbook | EpisodeState::Skipped)
                {
                    enqueue_deliveries(tx, routes, &id, DeliveryKind::Repeat, now_ms)?;
                }
                Ok(IngestResult {
                    id,
                    alertname,
                    state,
                    outcome: IngestOutcome::Repeat,
                })
            }
        }
    }
}
