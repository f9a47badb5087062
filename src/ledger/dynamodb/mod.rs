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

mod change;
mod item;
mod jobs;
mod outbox;
mod table;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
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
use change::Change;
use futures::StreamExt;
use item::*;

/// A query filter: the expression, its `#names` and its `:values`.
type Filter = (
    String,
    HashMap<String, String>,
    HashMap<String, AttributeValue>,
);

/// What ingest reads of existing episodes.
const SNAPSHOT_ATTRIBUTES: &[&str] = &[
    "episode_id",
    "status",
    "state",
    "version",
    "first_seen_ms",
    "rows",
    "alertname",
];

/// How often a state change is retried when a concurrent writer changed the episode first.
const CONFLICT_RETRIES: usize = 12;
/// Candidates fetched per shard from the `queue` index at once.
const QUERY_LIMIT: i32 = 50;
/// After a queue query found nothing, the next one waits this long (unless this process wrote
/// new work meanwhile), so idle workers do not hammer the index.
const EMPTY_REQUERY: Duration = Duration::from_secs(1);
/// Locks that serialize this process's outcome records of one episode (by a hash of its id):
/// the dispatcher records the rows of one episode (Slack and PagerDuty) side by side, and two
/// versioned writes of one item started from the same copy cost a failed condition; one after
/// the other, the second starts from the item the first wrote.
const RECORD_LOCKS: usize = 64;
/// Alerts of one notification recorded at the same time.
const INGEST_CONCURRENCY: usize = 16;
/// Alerts this process records at the same time, over all notifications. Beyond this, alerts
/// wait here rather than in DynamoDB's queue: a burst of notifications (an HA pair re-sending
/// a storm) would otherwise send hundreds of requests at once, and requests that wait out
/// their attempt timeout at a saturated endpoint are retried, adding load, until the webhook
/// answers 503.
const INGEST_IN_FLIGHT: usize = 32;
/// Episode items this process remembers (see `DynamoLedger::items`); beyond this many, some
/// are forgotten (a forgotten item costs one read when next needed).
const ITEM_CACHE: usize = 4096;

/// What a conditional update of an episode did.
pub(super) enum Written {
    /// It applied; the item as it is now (`ReturnValues = ALL_NEW`).
    Applied(Item),
    /// Its condition failed; the item as it was then (`ReturnValuesOnConditionCheckFailure =
    /// ALL_OLD`; None when there is no such item), so a retry needs no read of its own.
    Conflict(Option<Item>),
}

/// The episode item a read-modify-write works from: first the copy this process last saw
/// (possibly stale), then what DynamoDB says. Every write made from it is conditioned on the
/// episode's `version` (or on the state it relies on), so a stale copy only costs a failed
/// write, which returns the current item. A decision *not* to write (not runnable, not held,
/// nothing due) is taken only on a fresh item: `is_fresh` says whether the item was.
pub(super) struct Current<'a> {
    ledger: &'a DynamoLedger,
    id: &'a str,
    item: Option<Item>,
    fresh: bool,
    /// Writes from this item that failed their condition so far.
    conflicts: u32,
}

impl<'a> Current<'a> {
    pub(super) fn new(ledger: &'a DynamoLedger, id: &'a str) -> Current<'a> {
        Current {
            item: ledger.cached(id),
            ledger,
            id,
            fresh: false,
            conflicts: 0,
        }
    }

    /// The item to work from: the copy at hand, else a consistent read (None: no such episode).
    /// After a failed write, it first pauses (`pause_after_conflicts`).
    pub(super) async fn get(&mut self) -> Result<Option<Item>, LedgerError> {
        pause_after_conflicts(self.conflicts).await;
        if let Some(item) = self.item.take() {
            return Ok(Some(item));
        }
        self.fresh = true;
        self.ledger.get_episode_item(self.id).await
    }

    /// The error once the writes kept failing (`consequence`: what happens then).
    pub(super) fn contention(&self, consequence: &str) -> LedgerError {
        contention(self.id, self.conflicts, consequence)
    }

    /// Whether the item `get` returned last was read from DynamoDB rather than remembered.
    pub(super) fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// A write failed its condition; `now` is the item as DynamoDB had it.
    pub(super) fn conflict(&mut self, now: Option<Item>) {
        self.fresh = now.is_some();
        self.item = now;
        self.conflicts += 1;
    }
}

/// The pause before the next try after `conflicts` writes of one item failed their condition
/// in a row (none before the first): doubling from 2 ms up to 100 ms, with jitter, so that
/// writers racing for one item spread out instead of colliding again.
async fn pause_after_conflicts(conflicts: u32) {
    // TODO(a17-merge): use timing::Backoff
    const BACKOFF: crate::aws::retry::Backoff = crate::aws::retry::Backoff {
        initial: Duration::from_millis(2),
        max: Duration::from_millis(100),
    };
    if conflicts > 0 {
        tokio::time::sleep(BACKOFF.delay(conflicts - 1, rand::random::<f64>())).await;
    }
}

/// What a 503 says when DynamoDB kept refusing the writes of one episode.
fn contention(id: &str, conflicts: u32, consequence: &str) -> LedgerError {
    LedgerError::Unavailable(format!(
        "DynamoDB refused {conflicts} conditional writes of episode {id} in a row (ConditionalCheckFailedException: other writers changed the item first each time); {consequence}"
    ))
}

/// The episode's triage state on an item.
fn counted_state(item: &Item) -> Result<EpisodeState, LedgerError> {
    let text = require_s(item, "state")?;
    EpisodeState::parse(text).ok_or_else(|| LedgerError::Corrupt(format!("episode state: {text}")))
}

/// What ingest answers for an alert recorded on `item`.
fn ingest_result(
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

/// The DynamoDB implementation of [`Ledger`].
pub struct DynamoLedger {
    client: Client,
    table: String,
    destinations: Vec<String>,
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
    /// starting point of its next conditional write of that episode (see `Current`).
    items: Mutex<HashMap<String, Remembered>>,
    /// See `RECORD_LOCKS`.
    record_locks: Vec<tokio::sync::Mutex<()>>,
    /// See `INGEST_IN_FLIGHT`.
    ingest_slots: tokio::sync::Semaphore,
}

/// An episode item as this process last saw it.
struct Remembered {
    item: Item,
    /// This process wrote the item's `version` (created the episode, or made the versioned
    /// change that produced it): the copy is likely current, and the work that follows (the
    /// job of an episode it created, the rows of a triage it finished) is this replica's to take
    /// first. Candidates are ordered by it (see `next_candidate`).
    written_here: bool,
}

/// How a queue treats the candidates this process did not write last (see `next_candidate`).
pub(super) struct Others {
    /// Re-read them (one `BatchGetItem` per refill) even when this process has a copy.
    reread: bool,
    /// Take them only once they have been due this long (ms): whoever wrote them takes them
    /// first, and the replicas do not race for them.
    grace_ms: i64,
}

/// Jobs are due after the put that created them (or a lease that expired): a copy is usually
/// current, and a replica that created jobs cannot take them all at once, so the other helps
/// at once.
pub(super) const JOB_OTHERS: Others = Others {
    reread: false,
    grace_ms: 0,
};
/// Delivery rows are due after the change that wrote them (a lease, a report, an outcome), which
/// the writer's dispatcher takes up within its poll interval (`delivery.poll_interval_ms`,
/// 500 ms by default). Another replica's copy is often stale, and it waits 2 s before helping.
pub(super) const ROW_OTHERS: Others = Others {
    reread: true,
    grace_ms: 2_000,
};

/// What one `lease_next` / `claim` call did with the candidate list: whether it queried the
/// index, and whether it dropped the list because another replica had taken a candidate.
#[derive(Default)]
pub(super) struct Refill {
    queried: bool,
    dropped: bool,
}

/// Keys of due items read from the `queue` index, tried one by one.
#[derive(Default)]
struct Candidates {
    keys: VecDeque<Item>,
    /// When the last query found nothing: (wall clock, the `now` it asked for, generation).
    empty: Option<(Instant, i64, u64)>,
}

/// An SDK error as a ledger error an operator can act on.
pub(crate) fn sdk_error<E, R>(operation: &str, table: &str, error: SdkError<E, R>) -> LedgerError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    LedgerError::Unavailable(format!(
        "DynamoDB {operation} on table {table} failed: {}; check aws.endpoint_url / aws.region, credentials and the IAM policy",
        DisplayErrorContext(&error)
    ))
}

impl DynamoLedger {
    /// Connects to `table` (creating it when `create_table`), with the `[aws]` settings.
    /// `credentials` replaces the default chain (tests pass static keys).
    pub async fn connect(
        aws: &AwsConfig,
        table: &str,
        create_table: bool,
        destinations: Vec<String>,
        retention: Duration,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<DynamoLedger, LedgerError> {
        let sdk = crate::aws::sdk::load_sdk_config(aws, Duration::from_secs(3), credentials).await;
        let mut config = aws_sdk_dynamodb::config::Builder::from(&sdk)
            // A few quick retries of throttled or failed calls; every write is conditional or
            // idempotent, so a retried call cannot apply twice.
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
        table::ensure(&client, table, create_table).await?;
        Ok(DynamoLedger {
            client,
            table: table.to_string(),
            destinations,
            retention,
            leased_jobs: Mutex::new(HashMap::new()),
            claimed_rows: Mutex::new(HashMap::new()),
            jobs_queue: tokio::sync::Mutex::new(Candidates::default()),
            rows_queue: tokio::sync::Mutex::new(Candidates::default()),
            job_generation: AtomicU64::new(0),
            row_generation: AtomicU64::new(0),
            items: Mutex::new(HashMap::new()),
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

    fn unavailable<E, R>(&self, operation: &str, error: SdkError<E, R>) -> LedgerError
    where
        E: std::error::Error + 'static,
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
        for (index, destination) in self.destinations.iter().enumerate() {
            if !destination_wants(destination, kind) {
                continue;
            }
            let of_destination = || rows.values().filter(|row| row.destination == *destination);
            if kind == DeliveryKind::Repeat
                && (!repeat_row_wanted(destination, of_destination().map(|row| row.kind))
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

    /// The episode item as this process last saw it, if it remembers it.
    pub(super) fn cached(&self, id: &str) -> Option<Item> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|known| known.item.clone())
    }

    /// Whether this process remembers the episode (Some), and wrote its current version.
    fn written_here(&self, id: &str) -> Option<bool> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|known| known.written_here)
    }

    /// Remembers the latest item seen of an episode (None: it does not exist);
    /// `written_here`: this process just wrote its `version` (see `Remembered`).
    pub(super) fn remember(&self, id: &str, item: Option<&Item>, written_here: bool) {
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let Some(item) = item else {
            items.remove(id);
            return;
        };
        // Only ever move forward: a slower response must not replace a newer copy.
        let version = get_n(item, "version");
        let mut written_here = written_here;
        if let Some(known) = items.get(id) {
            let known_version = get_n(&known.item, "version");
            if known_version.is_some_and(|known| version.is_some_and(|v| v < known)) {
                return;
            }
            // Same version (a counter update, a read): whoever wrote it still did.
            written_here |= known.written_here && known_version == version;
        }
        if items.len() >= ITEM_CACHE && !items.contains_key(id) {
            let forget: Vec<String> = items.keys().take(ITEM_CACHE / 4).cloned().collect();
            for key in forget {
                items.remove(&key);
            }
        }
        items.insert(
            id.to_string(),
            Remembered {
                item: item.clone(),
                written_here,
            },
        );
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

    /// Runs a conditional update of episode `id` and says what it found (see `Written`); the
    /// item it returns is remembered for the next write.
    pub(super) async fn write(&self, id: &str, change: Change) -> Result<Written, LedgerError> {
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
                Ok(Written::Applied(item))
            }
            Err(error) => match error.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(failed)) => {
                    Ok(Written::Conflict(self.item_after_conflict(id, failed.item()).await?))
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

    /// The `state` of every episode in one shard of the recent index (only that attribute read).
    async fn states_of_shard(&self, shard: u32) -> Result<Vec<EpisodeState>, LedgerError> {
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
    async fn due_jobs_of_shard(&self, shard: u32, now_ms: i64) -> Result<u64, LedgerError> {
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

    /// The next due candidate key from the `queue` (or `outbox`) index, refilling at most once
    /// per call (see `Refill`); `treat_others` says what to do with the candidates this process
    /// did not write last.
    #[allow(clippy::too_many_arguments)]
    async fn next_candidate(
        &self,
        queue: &tokio::sync::Mutex<Candidates>,
        (index, pk_attribute, sk_attribute): (&str, &str, &str),
        prefix: &str,
        treat_others: &Others,
        generation: u64,
        now_ms: i64,
        refill: &mut Refill,
    ) -> Result<Option<Item>, LedgerError> {
        let mut candidates = queue.lock().await;
        if let Some(key) = candidates.keys.pop_front() {
            return Ok(Some(key));
        }
        if refill.queried {
            return Ok(None);
        }
        if let Some((at, asked_ms, seen_generation)) = candidates.empty {
            if seen_generation == generation
                && at.elapsed() < EMPTY_REQUERY
                && now_ms.saturating_sub(asked_ms) < EMPTY_REQUERY.as_millis() as i64
                && now_ms >= asked_ms
            {
                return Ok(None);
            }
        }
        refill.queried = true;
        let queries = (0..SHARDS).map(|shard| {
            self.query_index(
                index,
                (pk_attribute, format!("{prefix}#{shard}")),
                Some((sk_attribute, "<=", due_bound(now_ms))),
                true,
                None,
                Some(QUERY_LIMIT as usize),
            )
        });
        let mut found = Vec::new();
        for result in futures::future::join_all(queries).await {
            found.extend(result?);
        }
        if found.is_empty() {
            candidates.empty = Some((Instant::now(), now_ms, generation));
            return Ok(None);
        }
        candidates.empty = None;
        // First the candidates whose current version this process wrote (the jobs of episodes
        // it created, the rows of triages it finished): the replicas mostly take different
        // ones, and from copies that are current. Then the others, oldest first, but replicas
        // start at different places so that they do not all race for the same item.
        let written_here = |key: &Item| {
            get_s(key, PK)
                .and_then(episode_id_of_pk)
                .and_then(|id| self.written_here(id))
        };
        found.sort_by(|a, b| get_s(a, sk_attribute).cmp(&get_s(b, sk_attribute)));
        let (mine, mut others): (Vec<Item>, Vec<Item>) = found
            .into_iter()
            .partition(|key| written_here(key) == Some(true));
        let settled = due_bound(now_ms.saturating_sub(treat_others.grace_ms));
        others.retain(|key| get_s(key, sk_attribute).is_some_and(|sk| sk <= settled.as_str()));
        if mine.is_empty() && others.is_empty() {
            candidates.empty = Some((Instant::now(), now_ms, generation));
            return Ok(None);
        }
        // Read the others this process has no copy of (with `reread`, also those it has a
        // copy of) in one go, rather than one at a time when their turn comes: a copy that
        // turns out stale costs a failed conditional write, or a read when it shows nothing to
        // do. Delivery rows are due after changes another replica made (its lease, its report),
        // so copies of their episodes are often stale; jobs are due after the put that created
        // them, so a copy of one usually is not.
        let to_read: Vec<Item> = others
            .iter()
            .filter(|key| treat_others.reread || written_here(key).is_none())
            .filter_map(|key| get_s(key, PK).and_then(episode_id_of_pk))
            .map(episode_key)
            .collect();
        for item in self.batch_get(to_read, None).await? {
            if let Some(id) = get_s(&item, "episode_id") {
                self.remember(id, Some(&item), false);
            }
        }
        if !others.is_empty() {
            let offset = (rand::random::<u64>() % others.len() as u64) as usize;
            let half = others.len() / 2;
            others.rotate_left(offset.min(half));
        }
        candidates.keys.extend(mine);
        candidates.keys.extend(others);
        Ok(candidates.keys.pop_front())
    }

    /// A candidate turned out to be taken by another replica (on a fresh copy). The replicas
    /// read the same index pages, so the rest of this list is likely taken as well: trying it
    /// would cost one failed conditional write per key. Drops the list and lets this call query
    /// the index again (which lists no live lease and no claimed row), once per call.
    async fn taken_elsewhere(&self, queue: &tokio::sync::Mutex<Candidates>, refill: &mut Refill) {
        if refill.dropped {
            return;
        }
        refill.dropped = true;
        refill.queried = false;
        queue.lock().await.keys.clear();
    }

    async fn ingest_all(
        &self,
        alerts: Vec<IncomingAlert>,
        now: OffsetDateTime,
    ) -> Result<Vec<IngestResult>, LedgerError> {
        let now_ms = unix_ms(now);
        let ids: Vec<String> = alerts.iter().map(|a| a.key.id()).collect();
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
    async fn read_snapshots(&self, ids: &[String]) -> Result<HashMap<String, Item>, LedgerError> {
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
    async fn ingest_one(
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
                match self.put_new(id, item).await? {
                    Ok(()) => {
                        if state == EpisodeState::Queued {
                            self.job_generation.fetch_add(1, Ordering::Relaxed);
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
                Written::Applied(now) => {
                    if added {
                        self.row_generation.fetch_add(1, Ordering::Relaxed);
                    }
                    return ingest_result(id, &now, IngestOutcome::Resolved);
                }
                Written::Conflict(now) => {
                    snapshot = now;
                    conflicts += 1;
                }
            }
        }
        Err(contention(id, conflicts, "not recorded, retry"))
    }

    /// The attributes every alert of an episode updates: when it was last seen.
    fn seen(&self, id: &str, existing: &Item, now_ms: i64) -> Result<Change, LedgerError> {
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
    async fn record_repeat(
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
            Written::Applied(now) => now,
            Written::Conflict(_) => return Ok(None),
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
                Written::Applied(_) => {
                    self.row_generation.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(counted));
                }
                Written::Conflict(Some(now)) => {
                    current = now;
                    conflicts += 1;
                }
                Written::Conflict(None) => return Ok(Some(counted)),
            }
        }
        Err(contention(
            id,
            conflicts,
            "the repeat is counted but its notification row is not written; retry",
        ))
    }

    /// A new episode item (with its job when it has a runbook and fires).
    fn new_episode(
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

    async fn list(&self, query: EpisodeQuery) -> Result<Vec<EpisodeSummary>, LedgerError> {
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

    async fn list_shard(
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

    async fn detail(&self, id: &str) -> Result<Option<EpisodeDetail>, LedgerError> {
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

    async fn counts(&self, now: OffsetDateTime) -> Result<LedgerStats, LedgerError> {
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

    async fn purge_before(&self, cutoff: OffsetDateTime) -> Result<u64, LedgerError> {
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
