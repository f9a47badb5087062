//! The episode items this process remembers, and the working copy a read-modify-write starts
//! from: a remembered copy first (possibly stale, which costs one failed conditional write), a
//! consistent read after that. Also what a conflict costs: the jittered pause before the next
//! try, and the error once the tries are used up.

use super::*;
use crate::timing::Backoff;

/// The episode item a read-modify-write works from: first the copy this process last saw
/// (possibly stale), then what DynamoDB says. Every write made from it is conditioned on the
/// episode's `version` (or on the state it relies on), so a stale copy only costs a failed
/// write, which returns the current item. A decision *not* to write (not runnable, not held,
/// nothing due) is taken only on a fresh item: `is_fresh` says whether the item was.
pub(super) struct WorkingCopy<'a> {
    ledger: &'a DynamoLedger,
    id: &'a str,
    item: Option<Item>,
    fresh: bool,
    /// Writes from this item that failed their condition so far.
    conflicts: u32,
}

impl<'a> WorkingCopy<'a> {
    pub(super) fn new(ledger: &'a DynamoLedger, id: &'a str) -> WorkingCopy<'a> {
        WorkingCopy {
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
pub(super) async fn pause_after_conflicts(conflicts: u32) {
    const BACKOFF: Backoff =
        Backoff::equal_jitter(Duration::from_millis(2), Duration::from_millis(100));
    if conflicts > 0 {
        tokio::time::sleep(BACKOFF.pause(conflicts - 1)).await;
    }
}

/// What a 503 says when DynamoDB kept refusing the writes of one episode.
pub(super) fn contention(id: &str, conflicts: u32, consequence: &str) -> LedgerError {
    LedgerError::Unavailable(format!(
        "DynamoDB refused {conflicts} conditional writes of episode {id} in a row (ConditionalCheckFailedException: other writers changed the item first each time); {consequence}"
    ))
}

/// An episode item as this process last saw it.
pub(super) struct KnownItem {
    item: Item,
    /// This process wrote the item's `version` (created the episode, or made the versioned
    /// change that produced it): the copy is likely current, and the work that follows (the
    /// job of an episode it created, the rows of a triage it finished) is this replica's to take
    /// first. Candidates are ordered by it (see `next_candidate`).
    written_here: bool,
}

/// Episode items this process remembers (see `DynamoLedger::items`); beyond this many, some
/// are forgotten (a forgotten item costs one read when next needed).
pub(super) const ITEM_CACHE: usize = 4096;

impl DynamoLedger {
    /// The episode item as this process last saw it, if it remembers it.
    pub(super) fn cached(&self, id: &str) -> Option<Item> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|known| known.item.clone())
    }

    /// Whether this process remembers the episode (Some), and wrote its current version.
    pub(super) fn written_here(&self, id: &str) -> Option<bool> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .map(|known| known.written_here)
    }

    /// Remembers the latest item seen of an episode (None: it does not exist);
    /// `written_here`: this process just wrote its `version` (see `KnownItem`).
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
            KnownItem {
                item: item.clone(),
                written_here,
            },
        );
    }
}
