//! The DynamoDB ledger: one table shared by several replicas (`ledger.backend = "dynamodb"`).
//!
//! Each episode is one item that also carries its triage job and its delivery rows (the outbox
//! `rows` map), so every state change and the rows it causes are one conditional `UpdateItem`
//! (conditioned on the episode's `version`): atomic without multi-item transactions. Episode
//! creation is a conditional put (`attribute_not_exists`), so HA duplicates and retries cannot
//! create a second job; jobs and delivery rows are taken under leases (owner and expiry) by
//! conditional updates, found through the sparse `queue` and `outbox` indexes. Layout and
//! reasons: `docs/architecture.md`, "The DynamoDB ledger".
//!
//! The trait's integer job and delivery ids are stable hashes of the item keys; this process
//! remembers which key each id it handed out stands for (only the lease holder uses an id).
//!
//! Files, the same names and roles as the SQLite ledger's: this one (connecting, the requests,
//! the `Ledger` impl), `schema.rs`, `ingest.rs`, `jobs.rs`, `outbox.rs`, `episodes.rs`; and what
//! only DynamoDB needs: `item.rs` (the item layout), `change.rs` (update expressions),
//! `copies.rs` (remembered items, working copies, conflicts), `candidates.rs` (finding work in
//! the sparse indexes).

mod candidates;
mod change;
mod copies;
mod episodes;
mod ingest;
mod item;
mod jobs;
mod outbox;
mod retriage;
mod schema;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, ReturnValue,
    ReturnValuesOnConditionCheckFailure, Select, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use time::OffsetDateTime;

use super::*;
use crate::alert::{pagerduty_dedup_key, AlertStatus};
use crate::config::AwsConfig;
use crate::report::fit::{fit_report_json, MAX_STORED_REPORT_BYTES};
use candidates::*;
use change::Change;
use copies::*;
use episodes::Filter;
use futures::StreamExt;
use ingest::*;
use item::*;

/// How often a state change is retried when a concurrent writer changed the episode first.
const CONFLICT_RETRIES: usize = 12;
/// Locks that serialize this process's outcome records of one episode (by a hash of its id):
/// the dispatcher records the rows of one episode (Slack and PagerDuty) side by side, and two
/// versioned writes of one item started from the same copy cost a failed condition; one after
/// the other, the second starts from the item the first wrote.
const RECORD_LOCKS: usize = 64;

/// What a conditional update of an episode did.
pub(super) enum WriteOutcome {
    /// It applied; the item as it is now (`ReturnValues = ALL_NEW`).
    Applied(Item),
    /// Its condition failed; the item as it was then (`ReturnValuesOnConditionCheckFailure =
    /// ALL_OLD`; None when there is no such item), so a retry needs no read of its own.
    Conflict(Option<Item>),
}

/// The DynamoDB implementation of [`Ledger`].
pub struct DynamoLedger {
    client: Client,
    table: String,
    /// Destinations that get outbox rows, and for which changes.
    routes: Vec<Route>,
    retention: Duration,
    /// Job ids this process leased, to their episode ids.
    leased_jobs: Mutex<HashMap<i64, String>>,
    /// Delivery ids this process claimed, to (episode id, row sort key).
    claimed_rows: Mutex<HashMap<i64, (String, String)>>,
    jobs_queue: tokio::sync::Mutex<Candidates>,
    rows_queue: tokio::sync::Mutex<Candidates>,
    /// Bumped when this process creates runnable jobs / due delivery rows.
    job_generation: AtomicU64,
    row_generation: AtomicU64,
    /// The last version of episode items this process read or wrote, by episode id: the
    /// starting point of its next conditional write of that episode (see `WorkingCopy`).
    items: Mutex<ItemCache>,
    /// See `RECORD_LOCKS`.
    record_locks: Vec<tokio::sync::Mutex<()>>,
    /// See `INGEST_IN_FLIGHT`.
    ingest_slots: tokio::sync::Semaphore,
}

/// An SDK error as a ledger error an operator can act on.
pub(crate) fn sdk_error<E, R>(operation: &str, table: &str, error: SdkError<E, R>) -> LedgerError
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    if is_item_too_large(&error) {
        return LedgerError::TooLarge(format!(
            "DynamoDB {operation} refused the item: {}; an item holds at most 400 KB (alert labels and annotations included)",
            error.message().unwrap_or("item size exceeded")
        ));
    }
    LedgerError::Unavailable(format!(
        "DynamoDB {operation} on table {table} failed: {}; check aws.endpoint_url / aws.region, credentials and the IAM policy",
        DisplayErrorContext(&error)
    ))
}

/// DynamoDB's `ValidationException: Item size has exceeded the maximum allowed size` (PutItem)
/// or `Item size to update has exceeded ...` (UpdateItem): permanent, unlike other failures.
fn is_item_too_large<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().is_some_and(|service| {
        service.code() == Some("ValidationException")
            && service
                .message()
                .is_some_and(|message| message.contains("Item size"))
    })
}

impl DynamoLedger {
    /// Connects to `table` (creating it when `create_table`), with the `[aws]` settings.
    /// `credentials` replaces the default chain (tests pass static keys).
    pub async fn connect(
        aws: &AwsConfig,
        table: &str,
        create_table: bool,
        routes: Vec<Route>,
        retention: Duration,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<DynamoLedger, LedgerError> {
        let sdk = crate::aws::sdk::load_sdk_config(aws, Duration::from_secs(3), credentials).await;
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            // A few quick retries of throttled or failed calls. Every write is conditional or
            // idempotent, so a retried call cannot apply twice, except a repeat's count (an
            // `ADD`): a call that timed out after it applied counts that repeat twice, which
            // overstates a counter and loses nothing.
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(Duration::from_secs(5))
                    .operation_timeout(Duration::from_secs(12))
                    .build(),
            );
        if let Some(url) = aws.endpoint_for(crate::aws::sdk::SERVICE_DYNAMODB) {
            config = config.endpoint_url(url);
        }
        let client = Client::from_conf(config.build());
        schema::ensure(&client, table, create_table).await?;
        Ok(DynamoLedger {
            client,
            table: table.to_string(),
            routes,
            retention,
            leased_jobs: Mutex::new(HashMap::new()),
            claimed_rows: Mutex::new(HashMap::new()),
            jobs_queue: tokio::sync::Mutex::new(Candidates::default()),
            rows_queue: tokio::sync::Mutex::new(Candidates::default()),
            job_generation: AtomicU64::new(0),
            row_generation: AtomicU64::new(0),
            items: Mutex::new(ItemCache::default()),
            record_locks: (0..RECORD_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            ingest_slots: tokio::sync::Semaphore::new(INGEST_IN_FLIGHT),
        })
    }

    /// The lock that serializes this process's outcome records of episode `id`.
    pub(super) fn record_lock(&self, id: &str) -> &tokio::sync::Mutex<()> {
        &self.record_locks[(stable_id(id) % RECORD_LOCKS as i64) as usize]
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client, for tests that make DynamoDB answer what the ledger never asks.
    #[cfg(test)]
    pub(crate) fn sdk_client(&self) -> &Client {
        &self.client
    }

    fn unavailable<E, R>(&self, operation: &str, error: SdkError<E, R>) -> LedgerError
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        sdk_error(operation, &self.table, error)
    }

    fn expires_at(&self, now_ms: i64) -> AttributeValue {
        n(now_ms / 1000 + self.retention.as_secs() as i64)
    }

    /// Adds rows of `kind` for the destinations that want it, created at `version` (the
    /// episode's version after this change); false when none was added. Repeats coalesce: no
    /// new repeat row while one of the same destination is unfinished (it renders the latest
    /// count when it goes out), and none before a row that posts the episode's message
    /// (`repeat_row_wanted`).
    fn add_rows(&self, rows: &mut Rows, kind: DeliveryKind, version: i64, now_ms: i64) -> bool {
        let mut added = false;
        for (index, route) in self.routes.iter().enumerate() {
            if !route.wants(kind) {
                continue;
            }
            let destination = &route.name;
            let of_destination = || rows.values().filter(|row| row.destination == *destination);
            if kind == DeliveryKind::Repeat
                && (!repeat_row_wanted(route, of_destination().map(|row| row.kind))
                    || of_destination()
                        .any(|row| row.is_open() && row.kind == DeliveryKind::Repeat))
            {
                continue;
            }
            rows.insert(
                row_key(version, index, destination, kind),
                Row::new(destination, kind, now_ms),
            );
            added = true;
        }
        added
    }

    /// Writes the rows with a change, and the episode's place in the `outbox` index.
    fn with_rows(change: Change, id: &str, rows: &Rows) -> Change {
        let change = change.set("rows", rows_value(rows));
        match outbox_due(rows) {
            Some(due) => change
                .set(OUTBOX_PK, s(outbox_pk(id)))
                .set(OUTBOX_SK, s(outbox_sk(due, id))),
            None => change.remove(OUTBOX_PK).remove(OUTBOX_SK),
        }
    }

    /// Conditions a change on the episode's `version` still being the one read, and bumps it.
    fn versioned(change: Change, version: i64) -> Change {
        change.set("version", n(version + 1)).when(
            "#version = :expected_version",
            &["version"],
            vec![(":expected_version", n(version))],
        )
    }

    async fn get_episode_item(&self, id: &str) -> Result<Option<Item>, LedgerError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(episode_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map(|out| out.item)
            .map_err(|e| self.unavailable("GetItem", e))?;
        self.remember(id, item.as_ref(), false);
        Ok(item)
    }

    /// Puts a new episode item; `Err(existing)` when its key exists already (with the item
    /// there, from `ReturnValuesOnConditionCheckFailure`).
    async fn put_new(&self, id: &str, item: Item) -> Result<Result<(), Option<Item>>, LedgerError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item.clone()))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
        {
            Ok(_) => {
                self.remember(id, Some(&item), true);
                Ok(Ok(()))
            }
            Err(error) => match error.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Err(self.item_after_conflict(id, failed.item()).await?))
                }
                _ => Err(self.unavailable("PutItem", error)),
            },
        }
    }

    /// Runs a conditional update of episode `id` and says what it found (see `WriteOutcome`); the
    /// item it returns is remembered for the next write.
    async fn write(&self, id: &str, change: Change) -> Result<WriteOutcome, LedgerError> {
        let versioned = change.sets("version");
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(episode_key(id)))
            .update_expression(change.update_expression())
            .set_condition_expression(change.condition_expression())
            .set_expression_attribute_names(Some(change.attribute_names()))
            .set_expression_attribute_values(change.attribute_values())
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await
        {
            Ok(out) => {
                let item = out.attributes.unwrap_or_default();
                self.remember(id, Some(&item), versioned);
                Ok(WriteOutcome::Applied(item))
            }
            Err(error) => match error.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(WriteOutcome::Conflict(self.item_after_conflict(id, failed.item()).await?))
                }
                _ => Err(self.unavailable("UpdateItem", error)),
            },
        }
    }

    /// The episode item as a write that failed its condition found it: the copy DynamoDB
    /// returned with the failure (`ReturnValuesOnConditionCheckFailure = ALL_OLD`), else a
    /// consistent read. DynamoDB returns the item whenever there is one; an engine that ignores
    /// the parameter (dynalite) returns none, and taking that for "no such episode" made ingest
    /// put the episode again and again until it gave up (docs/architecture.md, "The DynamoDB
    /// ledger").
    async fn item_after_conflict(
        &self,
        id: &str,
        returned: Option<&Item>,
    ) -> Result<Option<Item>, LedgerError> {
        match returned {
            Some(item) => {
                self.remember(id, Some(item), false);
                Ok(Some(item.clone()))
            }
            None => self.get_episode_item(id).await,
        }
    }

    /// Runs a single-item conditional update; false when its condition failed.
    async fn update(&self, key: Item, change: Change) -> Result<bool, LedgerError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(change.update_expression())
            .set_condition_expression(change.condition_expression())
            .set_expression_attribute_names(Some(change.attribute_names()))
            .set_expression_attribute_values(change.attribute_values())
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(self.unavailable("UpdateItem", error)),
        }
    }

    /// Reads items by key (consistent), any number of them.
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<&[&str]>,
    ) -> Result<Vec<Item>, LedgerError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(chunk.to_vec());
            let mut rounds = 0;
            while let Some(keys) = pending.take().filter(|k| !k.is_empty()) {
                rounds += 1;
                if rounds > 20 {
                    return Err(LedgerError::Unavailable(format!(
                        "DynamoDB BatchGetItem on table {} keeps leaving keys unprocessed (throttled); retry later",
                        self.table
                    )));
                }
                let mut request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true);
                if let Some(attributes) = projection {
                    let expression = attributes
                        .iter()
                        .map(|a| format!("#{a}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    request = request
                        .projection_expression(expression)
                        .set_expression_attribute_names(Some(names(attributes)));
                }
                let request = request
                    .build()
                    .map_err(|e| LedgerError::Corrupt(format!("cannot build a read: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| self.unavailable("BatchGetItem", e))?;
                if let Some(mut responses) = out.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                pending = out
                    .unprocessed_keys
                    .and_then(|mut left| left.remove(&self.table))
                    .map(|left| left.keys);
                if pending.as_ref().is_some_and(|k| !k.is_empty()) {
                    tokio::time::sleep(Duration::from_millis(20 * rounds)).await;
                }
            }
        }
        Ok(found)
    }

    /// Sends a query and hands its pages to `page` in order (the SDK's paginator follows
    /// `LastEvaluatedKey`), until the last page or until `page` returns false. Every query of
    /// the ledger that may span pages goes through here.
    async fn query_pages(
        &self,
        request: QueryFluentBuilder,
        mut page: impl FnMut(QueryOutput) -> bool,
    ) -> Result<(), LedgerError> {
        let mut pages = request.into_paginator().send();
        while let Some(out) = pages.next().await {
            if !page(out.map_err(|e| self.unavailable("Query", e))?) {
                break;
            }
        }
        Ok(())
    }

    /// Queries one partition of an index (all pages, or up to `limit` items).
    #[allow(clippy::too_many_arguments)]
    async fn query_index(
        &self,
        index: &str,
        partition: (&str, String),
        range: Option<(&str, &str, String)>,
        forward: bool,
        filter: Option<Filter>,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, LedgerError> {
        let mut condition = "#ipk = :ipk".to_string();
        let mut names = HashMap::from([("#ipk".to_string(), partition.0.to_string())]);
        let mut values = HashMap::from([(":ipk".to_string(), s(partition.1))]);
        if let Some((attribute, operator, value)) = range {
            condition.push_str(&format!(" AND #isk {operator} :isk"));
            names.insert("#isk".into(), attribute.to_string());
            values.insert(":isk".into(), s(value));
        }
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression(condition)
            .scan_index_forward(forward);
        if let Some((expression, filter_names, filter_values)) = filter {
            request = request.filter_expression(expression);
            names.extend(filter_names);
            values.extend(filter_values);
        }
        if let Some(limit) = limit {
            request = request.limit(limit.clamp(1, 1000) as i32);
        }
        let request = request
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values));
        let mut items = Vec::new();
        self.query_pages(request, |out| {
            items.extend(out.items.unwrap_or_default());
            limit.is_none_or(|limit| items.len() < limit)
        })
        .await?;
        if let Some(limit) = limit {
            items.truncate(limit);
        }
        Ok(items)
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn ingest(
        &self,
        alerts: Vec<IncomingAlert>,
        now: OffsetDateTime,
    ) -> Result<Vec<IngestResult>, LedgerError> {
        self.ingest_all(alerts, now).await
    }

    async fn lease_next(
        &self,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<Option<LeasedJob>, LedgerError> {
        jobs::lease_next(self, owner, lease, unix_ms(now)).await
    }

    async fn renew_lease(
        &self,
        job_id: i64,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        jobs::renew(self, job_id, owner, lease, unix_ms(now)).await
    }

    async fn complete_job(
        &self,
        job_id: i64,
        owner: &str,
        report_json: String,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        let report_json = fit_report_json(report_json, MAX_STORED_REPORT_BYTES);
        jobs::complete(self, job_id, owner, report_json, unix_ms(now)).await
    }

    async fn fail_attempt(
        &self,
        job_id: i64,
        owner: &str,
        error: String,
        retry_after: Duration,
        now: OffsetDateTime,
    ) -> Result<JobState, LedgerError> {
        jobs::fail(self, job_id, owner, error, retry_after, unix_ms(now)).await
    }

    async fn release(
        &self,
        job_id: i64,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<(), LedgerError> {
        jobs::release(self, job_id, owner, unix_ms(now)).await
    }

    async fn list_episodes(&self, query: EpisodeQuery) -> Result<Vec<EpisodeSummary>, LedgerError> {
        self.list(query).await
    }

    async fn get_episode(&self, id: &str) -> Result<Option<EpisodeDetail>, LedgerError> {
        self.detail(id).await
    }

    async fn alert_history(
        &self,
        alertname: &str,
        exclude: &str,
        since: OffsetDateTime,
    ) -> Result<crate::report::history::AlertHistory, LedgerError> {
        self.history(alertname, exclude, since).await
    }

    async fn stats(&self, now: OffsetDateTime) -> Result<LedgerStats, LedgerError> {
        self.counts(now).await
    }

    async fn purge(&self, cutoff: OffsetDateTime) -> Result<u64, LedgerError> {
        self.purge_before(cutoff).await
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        lease: Duration,
        now: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, LedgerError> {
        outbox::claim(self, owner, lease, unix_ms(now), limit).await
    }

    async fn record_delivery(
        &self,
        delivery_id: i64,
        owner: &str,
        result: DeliveryResult,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        outbox::record(self, delivery_id, owner, result, &[], unix_ms(now)).await
    }

    async fn record_delivery_with_refs(
        &self,
        delivery_id: i64,
        owner: &str,
        result: DeliveryResult,
        (episode_id, refs): (&str, &[(&str, &str)]),
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        let recorded = outbox::record(self, delivery_id, owner, result, refs, unix_ms(now)).await?;
        if !recorded && !refs.is_empty() {
            // Not this owner's row any more (or not a row this process claimed): the
            // references still name what exists.
            outbox::set_refs(self, episode_id, refs, unix_ms(now)).await?;
        }
        Ok(recorded)
    }

    async fn claim_retriage(
        &self,
        episode_id: &str,
        verdict_before: OffsetDateTime,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        retriage::claim(
            self,
            episode_id,
            unix_ms(verdict_before),
            reason,
            unix_ms(now),
        )
        .await
    }

    async fn record_operator_action(
        &self,
        episode_id: &str,
        action: &str,
        what: &str,
        now: OffsetDateTime,
    ) -> Result<bool, LedgerError> {
        retriage::record_action(self, episode_id, action, what, now).await
    }

    async fn check_writable(&self, now: OffsetDateTime) -> Result<(), LedgerError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(HashMap::from([
                (PK.to_string(), s("META")),
                (SK.to_string(), s("write-check")),
                ("at".to_string(), s(rfc3339(now))),
            ])))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.unavailable("PutItem", e))
    }
}

#[cfg(test)]
mod conflict_tests;
#[cfg(test)]
pub(crate) mod test_dynalite;
