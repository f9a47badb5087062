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

/// The episode items this process remembers, with the bytes they hold: a count alone let a
/// replica's memory grow with the size of what it remembered (4096 items with their reports).
#[derive(Default)]
pub(super) struct ItemCache {
    items: HashMap<String, KnownItem>,
    bytes: usize,
}

impl ItemCache {
    fn forget(&mut self, id: &str) {
        if let Some(known) = self.items.remove(id) {
            self.bytes -= known.bytes;
        }
    }

    /// Room for an item of `bytes`: some items forgotten when the cache is full by count or
    /// by size (a quarter of them, or more until the new item fits).
    fn make_room(&mut self, bytes: usize) {
        if self.items.len() < ITEM_CACHE && self.bytes + bytes <= ITEM_CACHE_BYTES {
            return;
        }
        let mut forget: Vec<String> = Vec::new();
        let mut freed = 0;
        for (id, known) in &self.items {
            if forget.len() >= ITEM_CACHE / 4 && self.bytes - freed + bytes <= ITEM_CACHE_BYTES {
                break;
            }
            forget.push(id.clone());
            freed += known.bytes;
        }
        for id in forget {
            self.forget(&id);
        }
    }

    /// How many items and bytes are remembered.
    #[cfg(test)]
    pub(super) fn usage(&self) -> (usize, usize) {
        (self.items.len(), self.bytes)
    }
}

/// An episode item as this process last saw it.
pub(super) struct KnownItem {
    /// `item_size` of `item`.
    bytes: usize,
    item: Item,
    /// This process wrote the item's `version` (created the episode, or made the versioned
    /// change that produced it): the copy is likely current, and the work that follows (the
    /// job of an episode it created, the rows of a triage it finished) is this replica's to take
    /// first. Candidates are ordered by it (see `next_candidate`).
    written_here: bool,
}

/// Episode items this process remembers (see `DynamoLedger::items`); beyond this many, some
/// are forgotten (a forgotten item costs one read when next needed). The episodes in flight
/// (being triaged or delivered) are a few dozen; 4096 remembered items held 30 MiB more at
/// 10,000 episodes than at 500 (`bench/memory-episodes.sh`, docs/benchmarks.md).
pub(super) const ITEM_CACHE: usize = 1024;
/// The most bytes of items (as DynamoDB counts them; the SDK's copy in memory takes a few times
/// that) this process remembers: 4 MiB, some sixteen items with reports at their largest.
pub(super) const ITEM_CACHE_BYTES: usize = 4 << 20;

impl DynamoLedger {
    /// The episode item as this process last saw it, if it remembers it.
    pub(super) fn cached(&self, id: &str) -> Option<Item> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .items
            .get(id)
            .map(|known| known.item.clone())
    }

    /// Whether this process remembers the episode (Some), and wrote its current version.
    pub(super) fn written_here(&self, id: &str) -> Option<bool> {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .items
            .get(id)
            .map(|known| known.written_here)
    }

    /// Remembers the latest item seen of an episode (None: it does not exist);
    /// `written_here`: this process just wrote its `version` (see `KnownItem`).
    pub(super) fn remember(&self, id: &str, item: Option<&Item>, written_here: bool) {
        let mut cache = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let Some(item) = item else {
            cache.forget(id);
            return;
        };
        // Only ever move forward: a slower response must not replace a newer copy.
        let version = get_n(item, "version");
        let mut written_here = written_here;
        if let Some(known) = cache.items.get(id) {
            let known_version = get_n(&known.item, "version");
            if known_version.is_some_and(|known| version.is_some_and(|v| v < known)) {
                return;
            }
            // Same version (a counter update, a read): whoever wrote it still did.
            written_here |= known.written_here && known_version == version;
        }
        cache.forget(id);
        let bytes = item_size(item) + id.len();
        if bytes > ITEM_CACHE_BYTES / 4 {
            return; // not worth what it would push out
        }
        cache.make_room(bytes);
        cache.bytes += bytes;
        cache.items.insert(
            id.to_string(),
            KnownItem {
                bytes,
                item: item.clone(),
                written_here,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembering many large items keeps the cache within its byte bound, and the item just
    /// written is remembered.
    #[tokio::test]
    async fn the_item_cache_is_bounded_by_bytes_as_well_as_count() {
        let dynalite = super::super::test_dynalite::Dynalite::start();
        let ledger = dynalite.ledger("cache", Vec::new()).await;
        let report = s("r".repeat(200_000));
        for i in 0..400 {
            let id = format!("episode-{i}");
            let item = Item::from([
                ("version".to_string(), n(1)),
                ("report_json".to_string(), report.clone()),
            ]);
            ledger.remember(&id, Some(&item), true);
            assert!(ledger.cached(&id).is_some(), "{i}");
            let (_, bytes) = ledger.items.lock().unwrap().usage();
            assert!(bytes <= ITEM_CACHE_BYTES, "{i}: {bytes}");
        }
        let (count, _) = ledger.items.lock().unwrap().usage();
        assert!(count < 100, "{count}");
        // Small items: the count bound.
        for i in 0..(ITEM_CACHE + 100) {
            let item = Item::from([("version".to_string(), n(1))]);
            ledger.remember(&format!("small-{i}"), Some(&item), false);
        }
        let (count, bytes) = ledger.items.lock().unwrap().usage();
        assert!(count <= ITEM_CACHE, "{count}");
        assert!(bytes <= ITEM_CACHE_BYTES, "{bytes}");
        // Forgetting gives the bytes back.
        ledger.remember("small-0", None, false);
        ledger.remember(&format!("small-{}", ITEM_CACHE + 99), None, false);
        let (_, after) = ledger.items.lock().unwrap().usage();
        assert!(after < bytes, "{after} {bytes}");
    }
}
