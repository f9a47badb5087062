//! Finding work in the sparse `queue` and `outbox` indexes: due keys read a page at a time and
//! tried one by one, this process's own work first, and the rules that keep the replicas from
//! racing for the same keys (docs/architecture.md, "The DynamoDB ledger").

use super::*;

/// Candidates fetched per shard from the `queue` index at once.
pub(super) const QUERY_LIMIT: i32 = 50;

/// After a queue query found nothing, the next one waits this long (unless this process wrote
/// new work meanwhile), so idle workers do not hammer the index.
pub(super) const EMPTY_REQUERY: Duration = Duration::from_secs(1);

/// How a queue treats the candidates this process did not write last (see `next_candidate`).
pub(super) struct CandidatePolicy {
    /// Re-read them (one `BatchGetItem` per refill) even when this process has a copy.
    reread: bool,
    /// Take them only once they have been due this long (ms): whoever wrote them takes them
    /// first, and the replicas do not race for them.
    grace_ms: i64,
}

/// Jobs are due after the put that created them (or a lease that expired): a copy is usually
/// current, and a replica that created jobs cannot take them all at once, so the other helps
/// at once.
pub(super) const JOB_CANDIDATES: CandidatePolicy = CandidatePolicy {
    reread: false,
    grace_ms: 0,
};

/// Delivery rows are due after the change that wrote them (a lease, a report, an outcome), which
/// the writer's dispatcher takes up within its poll interval (`delivery.poll_interval_ms`,
/// 500 ms by default). Another replica's copy is often stale, and it waits 2 s before helping.
pub(super) const ROW_CANDIDATES: CandidatePolicy = CandidatePolicy {
    reread: true,
    grace_ms: 2_000,
};

/// What one `lease_next` / `claim` call did with the candidate list: whether it queried the
/// index, and whether it dropped the list because another replica had taken a candidate.
#[derive(Default)]
pub(super) struct RefillsDone {
    queried: bool,
    dropped: bool,
}

/// Keys of due items read from the `queue` index, tried one by one.
#[derive(Default)]
pub(super) struct Candidates {
    keys: VecDeque<Item>,
    /// When the last query found nothing: (wall clock, the `now` it asked for, generation).
    empty: Option<(Instant, i64, u64)>,
}

impl DynamoLedger {
    /// The next due candidate key from the `queue` (or `outbox`) index, refilling at most once
    /// per call (see `RefillsDone`); `policy` says what to do with the candidates this process
    /// did not write last.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn next_candidate(
        &self,
        queue: &tokio::sync::Mutex<Candidates>,
        (index, pk_attribute, sk_attribute): (&str, &str, &str),
        prefix: &str,
        policy: &CandidatePolicy,
        generation: u64,
        now_ms: i64,
        refill: &mut RefillsDone,
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
        let settled = due_bound(now_ms.saturating_sub(policy.grace_ms));
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
            .filter(|key| policy.reread || written_here(key).is_none())
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
    pub(super) async fn taken_elsewhere(
        &self,
        queue: &tokio::sync::Mutex<Candidates>,
        refill: &mut RefillsDone,
    ) {
        if refill.dropped {
            return;
        }
        refill.dropped = true;
        refill.queried = false;
        queue.lock().await.keys.clear();
    }
}
