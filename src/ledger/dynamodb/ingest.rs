//! Recording a notification in the DynamoDB ledger: each alert creates its episode item (a
//! conditional put, so HA duplicates cannot create a second job), or counts a repeat (an
//! atomic `ADD`), or resolves the episode (a versioned write with its outbox rows).

use super::*;
use crate::report::fit::MAX_STORED_ALERT_BYTES;

/// What ingest reads of existing episodes.
pub(super) const SNAPSHOT_ATTRIBUTES: &[&str] = &[
    "episode_id",
    "status",
    "state",
    "version",
    "first_seen_ms",
    "rows",
    "alertname",
];

/// Alerts of one notification recorded at the same time.
pub(super) const INGEST_CONCURRENCY: usize = 16;

/// Alerts this process records at the same time, over all notifications. Beyond this, alerts
/// wait here rather than in DynamoDB's queue: a burst of notifications (an HA pair re-sending
/// a storm) would otherwise send hundreds of requests at once, and requests that wait out
/// their attempt timeout at a saturated endpoint are retried, adding load, until the webhook
/// answers 503.
pub(super) const INGEST_IN_FLIGHT: usize = 32;

/// The episode's triage state on an item.
pub(super) fn counted_state(item: &Item) -> Result<EpisodeState, LedgerError> {
    let text = require_s(item, "state")?;
    EpisodeState::parse(text).ok_or_else(|| LedgerError::Corrupt(format!("episode state: {text}")))
}

/// What ingest answers for an alert recorded on `item`.
pub(super) fn ingest_result(
    id: &str,
    item: &Item,
    outcome: IngestOutcome,
) -> Result<IngestResult, LedgerError> {
    Ok(IngestResult {
        id: id.to_string(),
        alertname: require_s(item, "alertname")?.to_string(),
        state: counted_state(item)?,
        outcome,
    })
}

impl DynamoLedger {
    pub(super) async fn ingest_all(
        &self,
        alerts: Vec<IncomingAlert>,
        now: OffsetDateTime,
    ) -> Result<Vec<IngestResult>, LedgerError> {
        let now_ms = unix_ms(now);
        let ids: Vec<String> = alerts.iter().map(|a| a.key.id()).collect();
        // Refused before anything is written: an alert whose episode item leaves no room for
        // its report can never be stored, and a 5xx would make Alertmanager resend it forever.
        for (incoming, id) in alerts.iter().zip(&ids) {
            let (item, _) = self.new_episode(incoming, id, now_ms)?;
            let size = item_size(&item);
            if size > MAX_STORED_ALERT_BYTES {
                return Err(LedgerError::TooLarge(format!(
                    "the alert of episode {id} makes a ledger item of {size} bytes; at most {MAX_STORED_ALERT_BYTES} are stored so that its report fits beside it in one DynamoDB item (400 KB): shorten the alert's labels and annotations"
                )));
            }
        }
        let mut snapshots = self.read_snapshots(&ids).await?;
        // The alerts of one episode in order (a notification may name one twice), episodes
        // side by side.
        let mut by_episode: Vec<(String, Vec<usize>)> = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            match by_episode.iter_mut().find(|(known, _)| known == id) {
                Some((_, indexes)) => indexes.push(index),
                None => by_episode.push((id.clone(), vec![index])),
            }
        }
        let alerts = &alerts;
        let outcomes: Vec<Result<Vec<(usize, IngestResult)>, LedgerError>> =
            futures::stream::iter(by_episode.into_iter().map(|(id, indexes)| {
                let snapshot = snapshots.remove(&id);
                async move {
                    let _slot = self
                        .ingest_slots
                        .acquire()
                        .await
                        .map_err(|_| LedgerError::Closed)?;
                    let mut snapshot = snapshot;
                    let mut done = Vec::with_capacity(indexes.len());
                    for index in indexes {
                        let result = self
                            .ingest_one(&alerts[index], &id, snapshot.take(), now_ms)
                            .await?;
                        done.push((index, result));
                    }
                    Ok(done)
                }
            }))
            .buffer_unordered(INGEST_CONCURRENCY)
            .collect()
            .await;
        let mut results: Vec<Option<IngestResult>> = vec![None; alerts.len()];
        for outcome in outcomes {
            for (index, result) in outcome? {
                results[index] = Some(result);
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// What ingest needs to know of existing episodes, by id.
    pub(super) async fn read_snapshots(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, Item>, LedgerError> {
        let keys: Vec<Item> = ids
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|id| episode_key(id))
            .collect();
        let items = self.batch_get(keys, Some(SNAPSHOT_ATTRIBUTES)).await?;
        Ok(items
            .into_iter()
            .filter_map(|item| get_s(&item, "episode_id").map(|id| (id.to_string(), item.clone())))
            .collect())
    }

    /// Records one alert: creates its episode, or records a repeat or the resolution.
    /// `snapshot` is what a read just before found (None: not there then).
    pub(super) async fn ingest_one(
        &self,
        incoming: &IncomingAlert,
        id: &str,
        snapshot: Option<Item>,
        now_ms: i64,
    ) -> Result<IngestResult, LedgerError> {
        let mut snapshot = snapshot;
        let mut conflicts = 0;
        for _ in 0..CONFLICT_RETRIES {
            pause_after_conflicts(conflicts).await;
            let Some(existing) = &snapshot else {
                let (item, state) = self.new_episode(incoming, id, now_ms)?;
                let item_has_rows = item.contains_key(OUTBOX_PK);
                match self.put_new(id, item).await? {
                    Ok(()) => {
                        if state == EpisodeState::Queued {
                            self.job_generation.fetch_add(1, Ordering::Relaxed);
                        }
                        if item_has_rows {
                            self.row_generation.fetch_add(1, Ordering::Relaxed);
                        }
                        return Ok(IngestResult {
                            id: id.to_string(),
                            alertname: incoming.alert.alertname().to_string(),
                            state,
                            outcome: IngestOutcome::Created,
                        });
                    }
                    // Another replica created it first (an HA duplicate): a repeat after all.
                    Err(existing) => {
                        snapshot = existing;
                        continue;
                    }
                }
            };
            let resolves = incoming.alert.status == AlertStatus::Resolved
                && require_s(existing, "status")? == "firing";
            if !resolves {
                match self.record_repeat(id, existing, now_ms).await? {
                    Some(result) => return Ok(result),
                    // Purged meanwhile: a new episode.
                    None => {
                        snapshot = None;
                        continue;
                    }
                }
            }
            // A resolution is news, not a repeat. Once resolved an episode stays resolved: in
            // HA, a firing notification from a slower peer can arrive after it.
            let version = require_n(existing, "version")?;
            let mut rows = rows_of(existing)?;
            let added = self.add_rows(&mut rows, DeliveryKind::Resolved, version + 1, now_ms);
            let change = self
                .seen(id, existing, now_ms)?
                .set("status", s(AlertStatus::Resolved.as_str()));
            let change = match incoming.alert.ends_at {
                Some(ends_at) => change.set("ends_at", s(rfc3339(ends_at))),
                None => change.remove("ends_at"),
            };
            let change = Self::versioned(Self::with_rows(change, id, &rows), version);
            match self.write(id, change).await? {
                WriteOutcome::Applied(now) => {
                    if added {
                        self.row_generation.fetch_add(1, Ordering::Relaxed);
                    }
                    return ingest_result(id, &now, IngestOutcome::Resolved);
                }
                WriteOutcome::Conflict(now) => {
                    snapshot = now;
                    conflicts += 1;
                }
            }
        }
        Err(contention(id, conflicts, "not recorded, retry"))
    }

    /// The attributes every alert of an episode updates: when it was last seen.
    pub(super) fn seen(
        &self,
        id: &str,
        existing: &Item,
        now_ms: i64,
    ) -> Result<Change, LedgerError> {
        let first_seen_ms = require_n(existing, "first_seen_ms")?;
        Ok(Change::new()
            .set("last_seen_ms", n(now_ms))
            .set(LIST_SK, s(list_sk(now_ms, first_seen_ms, id)))
            .set(EXPIRES_AT, self.expires_at(now_ms)))
    }

    /// Records a repeat of an existing episode. The count is an atomic `ADD` that checks no
    /// version, so it never conflicts with the triage's writes or another replica's count;
    /// then, when the episode wants a repeat row (see `add_rows`), the row is added by a
    /// versioned write that starts from the item the count returned. None: the episode is gone.
    pub(super) async fn record_repeat(
        &self,
        id: &str,
        existing: &Item,
        now_ms: i64,
    ) -> Result<Option<IngestResult>, LedgerError> {
        let count = self.seen(id, existing, now_ms)?.add("repeats", n(1)).when(
            "attribute_exists(#pk)",
            &[PK],
            Vec::new(),
        );
        let mut current = match self.write(id, count).await? {
            WriteOutcome::Applied(now) => now,
            WriteOutcome::Conflict(_) => return Ok(None),
        };
        let counted = ingest_result(id, &current, IngestOutcome::Repeat)?;
        let mut conflicts = 0;
        for _ in 0..CONFLICT_RETRIES {
            let state = counted_state(&current)?;
            let firing = require_s(&current, "status")? == AlertStatus::Firing.as_str();
            if !firing || matches!(state, EpisodeState::NoRunbook | EpisodeState::Skipped) {
                return Ok(Some(counted));
            }
            let version = require_n(&current, "version")?;
            let mut rows = rows_of(&current)?;
            if !self.add_rows(&mut rows, DeliveryKind::Repeat, version + 1, now_ms) {
                return Ok(Some(counted));
            }
            pause_after_conflicts(conflicts).await;
            let change = Self::versioned(Self::with_rows(Change::new(), id, &rows), version);
            match self.write(id, change).await? {
                WriteOutcome::Applied(_) => {
                    self.row_generation.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(counted));
                }
                WriteOutcome::Conflict(Some(now)) => {
                    current = now;
                    conflicts += 1;
                }
                WriteOutcome::Conflict(None) => return Ok(Some(counted)),
            }
        }
        Err(contention(
            id,
            conflicts,
            "the repeat is counted but its notification row is not written; retry",
        ))
    }

    /// A new episode item (with its job when it has a runbook and fires).
    pub(super) fn new_episode(
        &self,
        incoming: &IncomingAlert,
        id: &str,
        now_ms: i64,
    ) -> Result<(Item, EpisodeState), LedgerError> {
        let firing = incoming.alert.status == AlertStatus::Firing;
        let state = match (incoming.has_runbook, firing) {
            (false, _) => EpisodeState::NoRunbook,
            (true, true) => EpisodeState::Queued,
            (true, false) => EpisodeState::Skipped,
        };
        let alert_json = serde_json::to_string(&incoming.alert)
            .map_err(|e| LedgerError::Corrupt(format!("alert: {e}")))?;
        let mut episode: Item = HashMap::from([
            (PK.to_string(), s(episode_pk(id))),
            (SK.to_string(), s(EPISODE_SK)),
            ("episode_id".to_string(), s(id)),
            ("group_key".to_string(), s(incoming.key.group_key.clone())),
            (
                "fingerprint".to_string(),
                s(incoming.key.fingerprint.clone()),
            ),
            ("starts_at".to_string(), s(incoming.key.starts_at_text())),
            ("alertname".to_string(), s(incoming.alert.alertname())),
            ("status".to_string(), s(incoming.alert.status.as_str())),
            ("state".to_string(), s(state.as_str())),
            ("first_seen_ms".to_string(), n(now_ms)),
            ("last_seen_ms".to_string(), n(now_ms)),
            ("repeats".to_string(), n(0)),
            ("alert_json".to_string(), s(alert_json)),
            ("receiver".to_string(), s(incoming.receiver.clone())),
            ("external_url".to_string(), s(incoming.external_url.clone())),
            ("version".to_string(), n(0)),
            ("refs".to_string(), AttributeValue::M(HashMap::new())),
            ("rows".to_string(), AttributeValue::M(HashMap::new())),
            (LIST_PK.to_string(), s(list_pk(id))),
            (LIST_SK.to_string(), s(list_sk(now_ms, now_ms, id))),
            (EXPIRES_AT.to_string(), self.expires_at(now_ms)),
        ]);
        if let Some(ends_at) = incoming.alert.ends_at {
            episode.insert("ends_at".into(), s(rfc3339(ends_at)));
        }
        if state == EpisodeState::NoRunbook && incoming.announce {
            let mut rows = Rows::new();
            if self.add_rows(&mut rows, DeliveryKind::Started, 0, now_ms) {
                if let Some(due) = outbox_due(&rows) {
                    episode.insert(OUTBOX_PK.to_string(), s(outbox_pk(id)));
                    episode.insert(OUTBOX_SK.to_string(), s(outbox_sk(due, id)));
                }
                episode.insert("rows".to_string(), rows_value(&rows));
            }
        }
        if state == EpisodeState::Queued {
            episode.extend([
                ("job_state".to_string(), s(JobState::Queued.as_str())),
                ("attempts".to_string(), n(0)),
                (
                    "max_attempts".to_string(),
                    n(i64::from(incoming.max_attempts)),
                ),
                ("not_before_ms".to_string(), n(now_ms)),
                (QUEUE_PK.to_string(), s(job_queue_pk(id))),
                (QUEUE_SK.to_string(), s(job_queue_sk(now_ms, id))),
            ]);
        }
        Ok((episode, state))
    }
}

#[cfg(test)]
mod tests {
    use crate::alert::AlertStatus;
    use crate::ledger::tests::{incoming, T0};
    use crate::ledger::{Ledger, LedgerError};

    /// An alert whose item leaves no room for its report is refused before anything is written,
    /// as a permanent error; DynamoDB's own item-size refusal (PutItem and UpdateItem) is the same
    /// permanent error, never "unavailable, retry".
    #[tokio::test]
    async fn dynamodb_item_limits_are_permanent_errors() {
        use aws_sdk_dynamodb::types::AttributeValue;

        let dynalite = super::super::test_dynalite::Dynalite::start();
        let ledger = dynalite.ledger("limits", Vec::new()).await;
        let small = incoming("00000000000small", T0, AlertStatus::Firing, true);
        let mut big = incoming("000000000000big1", T0, AlertStatus::Firing, true);
        big.alert.labels.insert("huge".into(), "x".repeat(900_000));
        let error = ledger
            .ingest(vec![small.clone(), big], T0)
            .await
            .expect_err("too large");
        let text = error.to_string();
        assert!(matches!(error, LedgerError::TooLarge(_)), "{text}");
        assert!(
            text.contains("400 KB") && !text.contains("xxxxxxxx"),
            "{text}"
        );
        assert!(ledger.get_episode(&small.key.id()).await.unwrap().is_none());
        // An alert of ordinary size is stored.
        ledger.ingest(vec![small.clone()], T0).await.unwrap();

        let client = ledger.sdk_client();
        let blob = AttributeValue::S("y".repeat(500_000));
        let put = client
            .put_item()
            .table_name(ledger.table())
            .item("pk", AttributeValue::S("EP#big".into()))
            .item("sk", AttributeValue::S("EP".into()))
            .item("blob", blob.clone())
            .send()
            .await
            .expect_err("over 400 KB");
        let error = super::super::sdk_error("PutItem", ledger.table(), put);
        assert!(matches!(error, LedgerError::TooLarge(_)), "{error}");
        let update = client
            .update_item()
            .table_name(ledger.table())
            .key("pk", AttributeValue::S(format!("EP#{}", small.key.id())))
            .key("sk", AttributeValue::S("EP".into()))
            .update_expression("SET #b = :b")
            .expression_attribute_names("#b", "blob")
            .expression_attribute_values(":b", blob)
            .send()
            .await
            .expect_err("over 400 KB");
        let error = super::super::sdk_error("UpdateItem", ledger.table(), update);
        assert!(matches!(error, LedgerError::TooLarge(_)), "{error}");
        assert!(error.to_string().contains("Item size"), "{error}");
    }
}
