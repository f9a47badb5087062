//! Reading episodes from the DynamoDB ledger: the list (the `recent` index, merged over its
//! shards), one episode's detail, the counts behind `/metrics`, and the purge of old episodes.

use super::*;

/// A query filter: the expression, its `#names` and its `:values`.
pub(super) type Filter = (
    String,
    HashMap<String, String>,
    HashMap<String, AttributeValue>,
);

impl DynamoLedger {
    /// The `state` of every episode in one shard of the recent index (only that attribute read).
    pub(super) async fn states_of_shard(
        &self,
        shard: u32,
    ) -> Result<Vec<EpisodeState>, LedgerError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(RECENT_INDEX)
            .key_condition_expression("#ipk = :ipk")
            .expression_attribute_names("#ipk", LIST_PK)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":ipk", s(format!("L#{shard}")))
            .projection_expression("#state");
        let mut states = Vec::new();
        self.query_pages(request, |out| {
            states.extend(
                out.items
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|item| get_s(item, "state").and_then(EpisodeState::parse)),
            );
            true
        })
        .await?;
        Ok(states)
    }

    /// How many jobs are due at `now_ms` in one shard of the queue index (a count, no items).
    pub(super) async fn due_jobs_of_shard(
        &self,
        shard: u32,
        now_ms: i64,
    ) -> Result<u64, LedgerError> {
        let request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(QUEUE_INDEX)
            .key_condition_expression("#ipk = :ipk AND #isk <= :isk")
            .expression_attribute_names("#ipk", QUEUE_PK)
            .expression_attribute_names("#isk", QUEUE_SK)
            .expression_attribute_values(":ipk", s(format!("J#{shard}")))
            .expression_attribute_values(":isk", s(due_bound(now_ms)))
            .select(Select::Count);
        let mut due = 0u64;
        self.query_pages(request, |out| {
            due += out.count.max(0) as u64;
            true
        })
        .await?;
        Ok(due)
    }

    pub(super) async fn list(
        &self,
        query: EpisodeQuery,
    ) -> Result<Vec<EpisodeSummary>, LedgerError> {
        let mut filters = Vec::new();
        let mut filter_names = HashMap::new();
        let mut filter_values = HashMap::new();
        if let Some(state) = query.state {
            filters.push("#state = :state");
            filter_names.insert("#state".to_string(), "state".to_string());
            filter_values.insert(":state".to_string(), s(state.as_str()));
        }
        if let Some(status) = query.status {
            filters.push("#status = :status");
            filter_names.insert("#status".to_string(), "status".to_string());
            filter_values.insert(":status".to_string(), s(status.as_str()));
        }
        let filter =
            (!filters.is_empty()).then(|| (filters.join(" AND "), filter_names, filter_values));
        let queries = (0..SHARDS).map(|shard| self.list_shard(shard, filter.clone(), query.limit));
        let mut episodes = Vec::new();
        for result in futures::future::join_all(queries).await {
            for item in result? {
                episodes.push(summary(&item)?);
            }
        }
        episodes.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then(b.first_seen.cmp(&a.first_seen))
                .then(a.id.cmp(&b.id))
        });
        episodes.truncate(query.limit);
        Ok(episodes)
    }

    pub(super) async fn list_shard(
        &self,
        shard: u32,
        filter: Option<Filter>,
        limit: usize,
    ) -> Result<Vec<Item>, LedgerError> {
        // With a filter, a page may hold fewer matches than asked: keep reading pages until
        // `limit` matched or the shard is done.
        let mut names = HashMap::from([("#ipk".to_string(), LIST_PK.to_string())]);
        let mut values = HashMap::from([(":ipk".to_string(), s(format!("L#{shard}")))]);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(RECENT_INDEX)
            .key_condition_expression("#ipk = :ipk")
            .scan_index_forward(false)
            .limit(limit.clamp(1, 1000) as i32);
        if let Some((expression, filter_names, filter_values)) = filter {
            request = request.filter_expression(expression);
            names.extend(filter_names);
            values.extend(filter_values);
        }
        let request = request
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values));
        let mut matched = Vec::new();
        self.query_pages(request, |out| {
            matched.extend(out.items.unwrap_or_default());
            matched.len() < limit
        })
        .await?;
        Ok(matched)
    }

    pub(super) async fn detail(&self, id: &str) -> Result<Option<EpisodeDetail>, LedgerError> {
        let Some(item) = self.get_episode_item(id).await? else {
            return Ok(None);
        };
        let summary = summary(&item)?;
        let alert = serde_json::from_str(require_s(&item, "alert_json")?)
            .map_err(|e| LedgerError::Corrupt(format!("stored alert: {e}")))?;
        let report = get_s(&item, "report_json")
            .map(|text| {
                serde_json::from_str(text)
                    .map_err(|e| LedgerError::Corrupt(format!("stored report: {e}")))
            })
            .transpose()?;
        let deliveries = rows_of(&item)?.values().map(Row::view).collect();
        Ok(Some(EpisodeDetail {
            external_refs: get_map(&item, "refs"),
            pagerduty_dedup_key: pagerduty_dedup_key(&summary.group_key),
            job: job_view(&item)?,
            summary,
            alert,
            report,
            deliveries,
        }))
    }

    pub(super) async fn counts(&self, now: OffsetDateTime) -> Result<LedgerStats, LedgerError> {
        let mut by_state: HashMap<EpisodeState, u64> = HashMap::new();
        // Only `state` is read: whole items (reports included) would cost a page per few hundred
        // episodes, and /metrics reads this on every scrape.
        let shards = (0..SHARDS).map(|shard| self.states_of_shard(shard));
        for result in futures::future::join_all(shards).await {
            for state in result? {
                *by_state.entry(state).or_default() += 1;
            }
        }
        let mut queue_depth = 0u64;
        for shard in 0..SHARDS {
            queue_depth += self.due_jobs_of_shard(shard, unix_ms(now)).await?;
        }
        Ok(LedgerStats {
            episodes_by_state: EpisodeState::ALL
                .into_iter()
                .map(|state| (state, by_state.get(&state).copied().unwrap_or(0)))
                .collect(),
            queue_depth,
        })
    }

    /// The episodes of `alertname` first seen at or after `since`: the recent index from
    /// `since` (an episode first seen then was last seen then too), every shard, filtered by
    /// alertname and first sighting; then their verdicts' actions, read by key without the
    /// reports (`verdict_action`, written beside the report).
    pub(super) async fn history(
        &self,
        alertname: &str,
        exclude: &str,
        since: OffsetDateTime,
    ) -> Result<crate::report::history::AlertHistory, LedgerError> {
        let since_ms = unix_ms(since);
        let filter: Filter = (
            "#alertname = :alertname AND #first >= :first".to_string(),
            HashMap::from([
                ("#alertname".to_string(), "alertname".to_string()),
                ("#first".to_string(), "first_seen_ms".to_string()),
            ]),
            HashMap::from([
                (":alertname".to_string(), s(alertname)),
                (":first".to_string(), n(since_ms)),
            ]),
        );
        let shards = (0..SHARDS).map(|shard| {
            self.query_index(
                RECENT_INDEX,
                (LIST_PK, format!("L#{shard}")),
                Some((LIST_SK, ">=", ms_key(since_ms))),
                true,
                Some(filter.clone()),
                None,
            )
        });
        let mut ids: Vec<String> = Vec::new();
        for result in futures::future::join_all(shards).await {
            ids.extend(
                result?
                    .iter()
                    .filter_map(|item| get_s(item, "episode_id"))
                    .filter(|id| *id != exclude)
                    .map(str::to_string),
            );
        }
        ids.sort_unstable();
        ids.dedup();
        let mut history = crate::report::history::AlertHistory {
            since: Some(since),
            episodes: ids.len() as u64,
            ..Default::default()
        };
        if ids.is_empty() {
            return Ok(history);
        }
        let keys = ids.iter().map(|id| episode_key(id)).collect();
        let items = self
            .batch_get(keys, Some(&[super::jobs::VERDICT_ACTION]))
            .await?;
        for item in &items {
            if let Some(action) = get_s(item, super::jobs::VERDICT_ACTION) {
                *history.by_action.entry(action.to_string()).or_default() += 1;
            }
        }
        Ok(history)
    }

    pub(super) async fn purge_before(&self, cutoff: OffsetDateTime) -> Result<u64, LedgerError> {
        let bound = ms_key(unix_ms(cutoff));
        let mut purged = 0u64;
        for shard in 0..SHARDS {
            let old = self
                .query_index(
                    RECENT_INDEX,
                    (LIST_PK, format!("L#{shard}")),
                    Some((LIST_SK, "<", bound.clone())),
                    true,
                    None,
                    None,
                )
                .await?;
            let mut deletes = Vec::new();
            for item in &old {
                let Some(id) = get_s(item, "episode_id") else {
                    continue;
                };
                deletes.push(episode_key(id));
                self.remember(id, None, false);
                purged += 1;
            }
            for chunk in deletes.chunks(25) {
                let mut requests: Vec<WriteRequest> = chunk
                    .iter()
                    .map(|key| {
                        DeleteRequest::builder()
                            .set_key(Some(key.clone()))
                            .build()
                            .map(|delete| WriteRequest::builder().delete_request(delete).build())
                            .map_err(|e| {
                                LedgerError::Corrupt(format!("cannot build a delete: {e}"))
                            })
                    })
                    .collect::<Result<_, _>>()?;
                let mut rounds = 0;
                while !requests.is_empty() {
                    rounds += 1;
                    if rounds > 20 {
                        return Err(LedgerError::Unavailable(format!(
                            "DynamoDB BatchWriteItem on table {} keeps leaving deletes unprocessed (throttled); the next purge continues",
                            self.table
                        )));
                    }
                    let out = self
                        .client
                        .batch_write_item()
                        .request_items(&self.table, requests)
                        .send()
                        .await
                        .map_err(|e| self.unavailable("BatchWriteItem", e))?;
                    requests = out
                        .unprocessed_items
                        .and_then(|mut left| left.remove(&self.table))
                        .unwrap_or_default();
                    if !requests.is_empty() {
                        tokio::time::sleep(Duration::from_millis(20 * rounds)).await;
                    }
                }
            }
        }
        Ok(purged)
    }
}
