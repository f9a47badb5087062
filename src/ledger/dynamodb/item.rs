//! The DynamoDB ledger's item layout: key formats, attribute names, and the pure conversions
//! between items and the ledger's records. No I/O here (see `docs/architecture.md`, "DynamoDB
//! ledger", for the layout this encodes).

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::alert::AlertStatus;
use crate::ledger::{
    from_unix_ms, DeliveryKind, DeliveryState, DeliveryView, DoubtWindow, EpisodeState,
    EpisodeSummary, JobState, JobView, LedgerError,
};

/// An item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

/// Partitions of the two sharded indexes. Writes to one index key value are limited per
/// partition in DynamoDB, so queues and the recency list are spread over this many values.
pub const SHARDS: u32 = 2;

pub const PK: &str = "pk";
pub const SK: &str = "sk";
/// The sort key of the episode item in its partition.
pub const EPISODE_SK: &str = "EP";
pub const QUEUE_INDEX: &str = "queue";
pub const QUEUE_PK: &str = "queue_pk";
pub const QUEUE_SK: &str = "queue_sk";
pub const OUTBOX_INDEX: &str = "outbox";
pub const OUTBOX_PK: &str = "outbox_pk";
pub const OUTBOX_SK: &str = "outbox_sk";
pub const RECENT_INDEX: &str = "recent";
pub const LIST_PK: &str = "list_pk";
pub const LIST_SK: &str = "list_sk";
/// The TTL attribute (epoch seconds).
pub const EXPIRES_AT: &str = "expires_at";

/// Attributes the `recent` index projects (besides the keys): what a summary, the purge and the
/// stats need.
pub const RECENT_PROJECTION: [&str; 11] = [
    "episode_id",
    "alertname",
    "status",
    "state",
    "group_key",
    "fingerprint",
    "starts_at",
    "ends_at",
    "first_seen_ms",
    "last_seen_ms",
    "repeats",
];

pub fn episode_pk(id: &str) -> String {
    format!("EP#{id}")
}

/// The episode id of a partition key written by `episode_pk`.
pub fn episode_id_of_pk(pk: &str) -> Option<&str> {
    pk.strip_prefix("EP#")
}

/// A stable number for a string key (job and delivery ids of the trait are integers).
pub fn stable_id(key: &str) -> i64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) & (i64::MAX as u64)) as i64
}

pub fn shard_of(id: &str) -> u32 {
    (stable_id(id) % i64::from(SHARDS)) as u32
}

/// An item's size as DynamoDB counts it against its 400 KB limit: each attribute's name and
/// value, strings and binaries by their bytes, numbers by about one byte per two digits, maps and
/// lists with their elements and a few bytes of overhead each (an estimate that errs high).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number.len().div_ceil(2) + 1,
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Ss(texts) => texts.iter().map(String::len).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, value)| 1 + name.len() + value_size(value))
                .sum::<usize>()
        }
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        _ => 1,
    }
}

/// Millisecond times in sort keys: fixed width, so that text order is time order.
pub fn ms_key(ms: i64) -> String {
    format!("{:013}", ms.max(0))
}

pub fn job_queue_pk(id: &str) -> String {
    format!("J#{}", shard_of(id))
}

pub fn job_queue_sk(due_ms: i64, id: &str) -> String {
    format!("{}#{id}", ms_key(due_ms))
}

pub fn outbox_pk(id: &str) -> String {
    format!("D#{}", shard_of(id))
}

pub fn outbox_sk(due_ms: i64, id: &str) -> String {
    format!("{}#{id}", ms_key(due_ms))
}

/// Everything due at `now_ms` sorts at or before this.
pub fn due_bound(now_ms: i64) -> String {
    format!("{}~", ms_key(now_ms))
}

pub fn list_pk(id: &str) -> String {
    format!("L#{}", shard_of(id))
}

pub fn list_sk(last_seen_ms: i64, first_seen_ms: i64, id: &str) -> String {
    format!("{}#{}#{id}", ms_key(last_seen_ms), ms_key(first_seen_ms))
}

/// The key of a delivery row in the episode's `rows` map: the episode version that created it,
/// then the destination's position in the configuration, so that keys sort in write order.
pub fn row_key(
    version: i64,
    destination_index: usize,
    destination: &str,
    kind: DeliveryKind,
) -> String {
    format!(
        "{version:010}#{destination_index:02}#{destination}#{}",
        kind.as_str()
    )
}

/// One delivery row (an element of the episode item's `rows` map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub destination: String,
    pub kind: DeliveryKind,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_ms: Option<i64>,
    pub last_error: Option<String>,
    pub external_ref: Option<String>,
    pub created_ms: i64,
    /// When the current (or last) lease on the row began.
    pub claimed_ms: Option<i64>,
    /// The window in which earlier attempts may have delivered something unrecorded.
    pub doubt_from_ms: Option<i64>,
    pub doubt_to_ms: Option<i64>,
}

impl Row {
    pub fn new(destination: &str, kind: DeliveryKind, now_ms: i64) -> Row {
        Row {
            destination: destination.to_string(),
            kind,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_ms: now_ms,
            lease_owner: None,
            lease_expires_ms: None,
            last_error: None,
            external_ref: None,
            created_ms: now_ms,
            claimed_ms: None,
            doubt_from_ms: None,
            doubt_to_ms: None,
        }
    }

    /// Widens the window of doubt to cover `[from, to]`.
    pub fn widen_doubt(&mut self, from: i64, to: i64) {
        let (from, to) = DoubtWindow::widen_ms((self.doubt_from_ms, self.doubt_to_ms), from, to);
        self.doubt_from_ms = Some(from);
        self.doubt_to_ms = Some(to);
    }

    pub fn is_open(&self) -> bool {
        matches!(self.state, DeliveryState::Pending | DeliveryState::Sending)
    }

    /// When the row can be taken: its next attempt, or the expiry of the lease on it.
    pub fn due_ms(&self) -> i64 {
        match self.state {
            DeliveryState::Sending => self.lease_expires_ms.unwrap_or(0),
            _ => self.next_attempt_ms,
        }
    }

    pub fn view(&self) -> DeliveryView {
        DeliveryView {
            destination: self.destination.clone(),
            kind: self.kind.as_str().to_string(),
            state: self.state.as_str().to_string(),
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            external_ref: self.external_ref.clone(),
        }
    }
}

pub type Rows = BTreeMap<String, Row>;

fn parse_delivery_state(text: &str) -> Option<DeliveryState> {
    [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Delivered,
        DeliveryState::Skipped,
        DeliveryState::Failed,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

/// The `rows` map of an episode item.
pub fn rows_of(item: &Item) -> Result<Rows, LedgerError> {
    let Some(AttributeValue::M(map)) = item.get("rows") else {
        return Ok(Rows::new());
    };
    map.iter()
        .map(|(key, value)| {
            let AttributeValue::M(row) = value else {
                return Err(corrupt("delivery row", key));
            };
            let kind_text = require_s(row, "kind")?;
            let state_text = require_s(row, "state")?;
            Ok((
                key.clone(),
                Row {
                    destination: require_s(row, "destination")?.to_string(),
                    kind: DeliveryKind::parse(kind_text)
                        .ok_or_else(|| corrupt("delivery kind", kind_text))?,
                    state: parse_delivery_state(state_text)
                        .ok_or_else(|| corrupt("delivery state", state_text))?,
                    attempts: get_n(row, "attempts").unwrap_or(0).max(0) as u32,
                    next_attempt_ms: get_n(row, "next_attempt_ms").unwrap_or(0),
                    lease_owner: get_s(row, "lease_owner").map(str::to_string),
                    lease_expires_ms: get_n(row, "lease_expires_ms"),
                    last_error: get_s(row, "last_error").map(str::to_string),
                    external_ref: get_s(row, "external_ref").map(str::to_string),
                    created_ms: get_n(row, "created_ms").unwrap_or(0),
                    claimed_ms: get_n(row, "claimed_ms"),
                    doubt_from_ms: get_n(row, "doubt_from_ms"),
                    doubt_to_ms: get_n(row, "doubt_to_ms"),
                },
            ))
        })
        .collect()
}

/// The `rows` map as an attribute value.
pub fn rows_value(rows: &Rows) -> AttributeValue {
    AttributeValue::M(
        rows.iter()
            .map(|(key, row)| {
                let mut map: Item = HashMap::from([
                    ("destination".to_string(), s(row.destination.clone())),
                    ("kind".to_string(), s(row.kind.as_str())),
                    ("state".to_string(), s(row.state.as_str())),
                    ("attempts".to_string(), n(i64::from(row.attempts))),
                    ("next_attempt_ms".to_string(), n(row.next_attempt_ms)),
                    ("created_ms".to_string(), n(row.created_ms)),
                ]);
                if let Some(owner) = &row.lease_owner {
                    map.insert("lease_owner".into(), s(owner.clone()));
                }
                if let Some(expires) = row.lease_expires_ms {
                    map.insert("lease_expires_ms".into(), n(expires));
                }
                if let Some(error) = &row.last_error {
                    map.insert("last_error".into(), s(error.clone()));
                }
                if let Some(reference) = &row.external_ref {
                    map.insert("external_ref".into(), s(reference.clone()));
                }
                for (name, value) in [
                    ("claimed_ms", row.claimed_ms),
                    ("doubt_from_ms", row.doubt_from_ms),
                    ("doubt_to_ms", row.doubt_to_ms),
                ] {
                    if let Some(value) = value {
                        map.insert(name.into(), n(value));
                    }
                }
                (key.clone(), AttributeValue::M(map))
            })
            .collect(),
    )
}

/// The oldest unfinished row of each destination: the only rows that may be sent now.
pub fn heads(rows: &Rows) -> Vec<&str> {
    let mut seen: HashSet<&str> = HashSet::new();
    rows.iter()
        .filter(|(_, row)| row.is_open() && seen.insert(row.destination.as_str()))
        .map(|(key, _)| key.as_str())
        .collect()
}

/// When the episode next has a row to take (None: nothing unfinished).
pub fn outbox_due(rows: &Rows) -> Option<i64> {
    heads(rows).into_iter().map(|key| rows[key].due_ms()).min()
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

pub fn episode_key(id: &str) -> Item {
    key(episode_pk(id), EPISODE_SK)
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Some(text),
        _ => None,
    }
}

pub fn get_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(text)) => text.parse().ok(),
        _ => None,
    }
}

pub fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

pub fn get_map(item: &Item, name: &str) -> BTreeMap<String, String> {
    match item.get(name) {
        Some(AttributeValue::M(map)) => map
            .iter()
            .filter_map(|(k, v)| match v {
                AttributeValue::S(text) => Some((k.clone(), text.clone())),
                _ => None,
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("{what}: {detail}"))
}

pub fn require_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, LedgerError> {
    get_s(item, name).ok_or_else(|| corrupt("ledger item", format!("attribute {name} missing")))
}

pub fn require_n(item: &Item, name: &str) -> Result<i64, LedgerError> {
    get_n(item, name).ok_or_else(|| corrupt("ledger item", format!("attribute {name} missing")))
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, LedgerError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| corrupt("timestamp", e))
}

/// The summary of an episode item (or of its projection in the `recent` index).
pub fn summary(item: &Item) -> Result<EpisodeSummary, LedgerError> {
    let status = match require_s(item, "status")? {
        "firing" => AlertStatus::Firing,
        "resolved" => AlertStatus::Resolved,
        other => return Err(corrupt("episode status", other)),
    };
    let state_text = require_s(item, "state")?;
    Ok(EpisodeSummary {
        id: require_s(item, "episode_id")?.to_string(),
        alertname: require_s(item, "alertname")?.to_string(),
        status,
        state: EpisodeState::parse(state_text)
            .ok_or_else(|| corrupt("episode state", state_text))?,
        group_key: require_s(item, "group_key")?.to_string(),
        fingerprint: require_s(item, "fingerprint")?.to_string(),
        starts_at: parse_rfc3339(require_s(item, "starts_at")?)?,
        ends_at: get_s(item, "ends_at").map(parse_rfc3339).transpose()?,
        first_seen: from_unix_ms(require_n(item, "first_seen_ms")?),
        last_seen: from_unix_ms(require_n(item, "last_seen_ms")?),
        repeats: get_n(item, "repeats").unwrap_or(0).max(0) as u64,
    })
}

/// The job of an episode item, when it has one.
pub fn job_view(item: &Item) -> Result<Option<JobView>, LedgerError> {
    let Some(state_text) = get_s(item, "job_state") else {
        return Ok(None);
    };
    Ok(Some(JobView {
        state: JobState::parse(state_text).ok_or_else(|| corrupt("job state", state_text))?,
        attempts: get_n(item, "attempts").unwrap_or(0).max(0) as u32,
        max_attempts: get_n(item, "max_attempts").unwrap_or(0).max(0) as u32,
        last_error: get_s(item, "last_error").map(str::to_string),
        lease_expires_at: get_n(item, "lease_expires_ms").map(from_unix_ms),
        duration_ms: get_n(item, "duration_ms").map(|d| d.max(0) as u64),
    }))
}

/// `#name` placeholders for every attribute name an expression uses (several are reserved
/// words in DynamoDB: `state`, `status`, ...).
pub fn names(attributes: &[&str]) -> HashMap<String, String> {
    attributes
        .iter()
        .map(|name| (format!("#{name}"), name.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_sort_in_write_order_and_have_one_head_per_destination() {
        let mut rows = Rows::new();
        rows.insert(
            row_key(10, 0, "slack", DeliveryKind::Repeat),
            Row::new("slack", DeliveryKind::Repeat, 5),
        );
        rows.insert(
            row_key(2, 1, "pagerduty", DeliveryKind::Verdict),
            Row::new("pagerduty", DeliveryKind::Verdict, 3),
        );
        rows.insert(
            row_key(2, 0, "slack", DeliveryKind::Verdict),
            Row::new("slack", DeliveryKind::Verdict, 2),
        );
        let mut started = Row::new("slack", DeliveryKind::Started, 1);
        started.state = DeliveryState::Sending;
        started.lease_owner = Some("w".into());
        started.lease_expires_ms = Some(100);
        started.attempts = 1;
        rows.insert(row_key(1, 0, "slack", DeliveryKind::Started), started);
        let kinds: Vec<DeliveryKind> = rows.values().map(|r| r.kind).collect();
        assert_eq!(
            kinds,
            vec![
                DeliveryKind::Started,
                DeliveryKind::Verdict,
                DeliveryKind::Verdict,
                DeliveryKind::Repeat
            ]
        );
        let item: Item = HashMap::from([("rows".to_string(), rows_value(&rows))]);
        assert_eq!(rows_of(&item).unwrap(), rows);
        assert_eq!(
            heads(&rows),
            vec![
                row_key(1, 0, "slack", DeliveryKind::Started).as_str(),
                row_key(2, 1, "pagerduty", DeliveryKind::Verdict).as_str()
            ]
        );
        // The sending head is due at its lease expiry, the pending one at its next attempt.
        assert_eq!(outbox_due(&rows), Some(3));
        for row in rows.values_mut() {
            row.state = DeliveryState::Delivered;
        }
        assert_eq!(outbox_due(&rows), None);
        let broken: Item = HashMap::from([(
            "rows".to_string(),
            AttributeValue::M(HashMap::from([("k".to_string(), s("not a map"))])),
        )]);
        assert!(matches!(rows_of(&broken), Err(LedgerError::Corrupt(_))));
    }

    #[test]
    fn due_bound_includes_everything_due_and_nothing_later() {
        let bound = due_bound(1_000);
        assert!(job_queue_sk(1_000, "zzz").as_str() <= bound.as_str());
        assert!(job_queue_sk(999, "a").as_str() <= bound.as_str());
        assert!(job_queue_sk(1_001, "a").as_str() > bound.as_str());
    }

    #[test]
    fn ids_are_stable_positive_and_shards_in_range() {
        assert_eq!(stable_id("abc"), stable_id("abc"));
        assert_ne!(stable_id("abc"), stable_id("abd"));
        for text in ["", "a", "episode"] {
            assert!(stable_id(text) >= 0);
            assert!(shard_of(text) < SHARDS);
        }
    }

    #[test]
    fn missing_or_wrong_attributes_are_corrupt_not_panics() {
        let item: Item = HashMap::from([("status".to_string(), s("sideways"))]);
        assert!(matches!(summary(&item), Err(LedgerError::Corrupt(_))));
        assert!(matches!(
            summary(&Item::new()),
            Err(LedgerError::Corrupt(_))
        ));
        let job: Item = HashMap::from([("job_state".to_string(), s("odd"))]);
        assert!(matches!(job_view(&job), Err(LedgerError::Corrupt(_))));
        assert!(job_view(&Item::new()).unwrap().is_none());
    }
}
