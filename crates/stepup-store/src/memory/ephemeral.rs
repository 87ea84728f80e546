//! The [`EphemeralStore`] half of [`MemoryStore`]: values in a moka cache, counters in
//! [`Counters`](super::counters::Counters).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::ops::compute::{CompResult, Op};
use moka::sync::Cache;

use super::{MemoryStore, expiry_after};
use crate::{EphemeralStore, StoreResult, async_trait};

/// How long moka keeps an entry beyond its expiry by the injected clock before reclaiming the
/// memory. Expiry itself is always judged by the injected clock at read time; this slack only
/// keeps moka's real-time reclamation from removing an entry the clock still counts as live.
const RECLAIM_GRACE: Duration = Duration::from_secs(60);

/// A value of the ephemeral store.
#[derive(Clone)]
pub(super) struct ValueEntry {
    value: Arc<[u8]>,
    /// Unix seconds by the injected clock; live while strictly before it.
    expires_at: u64,
    /// The TTL it was written with (for moka's reclamation).
    ttl: Duration,
}

impl ValueEntry {
    fn new(value: &[u8], now: u64, ttl: Duration) -> Self {
        Self {
            value: Arc::from(value),
            expires_at: expiry_after(now, ttl),
            ttl,
        }
    }

    fn live(&self, now: u64) -> bool {
        self.expires_at > now
    }
}

/// The cache holding the values, reclaiming their memory a little after they expire.
pub(super) fn value_cache() -> Cache<String, ValueEntry> {
    Cache::builder().expire_after(Reclaim).build()
}

/// moka's reclamation policy: an entry's memory is freed `RECLAIM_GRACE` after its TTL (in real
/// time) from the write that set its expiry.
struct Reclaim;

impl Expiry<String, ValueEntry> for Reclaim {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &ValueEntry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl.saturating_add(RECLAIM_GRACE))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &ValueEntry,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        // Every write (over an expired value, or a compare-and-swap) sets a new TTL.
        Some(value.ttl.saturating_add(RECLAIM_GRACE))
    }
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn insert_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let now = self.now();
        let entry = ValueEntry::new(value, now, ttl);
        // moka runs compute calls on one key one at a time: the check and the write are atomic.
        let result =
            self.inner
                .values
                .entry_by_ref(key)
                .and_compute_with(|current| match current {
                    Some(current) if current.value().live(now) => Op::Nop,
                    _ => Op::Put(entry),
                });
        Ok(matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        ))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = self.now();
        Ok(self
            .inner
            .values
            .get(key)
            .filter(|entry| entry.live(now))
            .map(|entry| entry.value.to_vec()))
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = self.now();
        // Removes the entry whether live or expired; only a live one is handed out.
        let result =
            self.inner
                .values
                .entry_by_ref(key)
                .and_compute_with(|current| match current {
                    Some(_) => Op::Remove,
                    None => Op::Nop,
                });
        Ok(match result {
            CompResult::Removed(entry) if entry.value().live(now) => {
                Some(entry.value().value.to_vec())
            }
            _ => None,
        })
    }

    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<u64> {
        Ok(self.inner.counters.increment(key, self.now(), ttl))
    }

    async fn decrement(&self, key: &str) -> StoreResult<u64> {
        Ok(self.inner.counters.decrement(key, self.now()))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = self.now();
        let entry = ValueEntry::new(new, now, ttl);
        // One compute call: the comparison and the write are atomic, as in `insert_if_absent`.
        let result = self
            .inner
            .values
            .entry_by_ref(key)
            .and_compute_with(|current| {
                let live = current
                    .as_ref()
                    .map(moka::Entry::value)
                    .filter(|current| current.live(now));
                let matches = match (live, expected) {
                    (None, None) => true,
                    (Some(current), Some(expected)) => *current.value == *expected,
                    _ => false,
                };
                if matches { Op::Put(entry) } else { Op::Nop }
            });
        Ok(matches!(
            result,
            CompResult::Inserted(_) | CompResult::ReplacedWith(_)
        ))
    }

    async fn remove(&self, key: &str) -> StoreResult<()> {
        self.inner.values.invalidate(key);
        self.inner.counters.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepup_core::clock::ManualClock;

    #[tokio::test]
    async fn compare_and_swap_counts_an_expired_value_as_absent() {
        let clock = ManualClock::at_unix(1_800_000_000);
        let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
        let minute = Duration::from_secs(60);
        assert!(
            store
                .compare_and_swap("k", None, b"a", minute)
                .await
                .unwrap()
        );
        assert!(
            !store
                .compare_and_swap("k", None, b"b", minute)
                .await
                .unwrap()
        );
        clock.advance(minute);
        assert!(
            !store
                .compare_and_swap("k", Some(b"a"), b"b", minute)
                .await
                .unwrap()
        );
        assert!(
            store
                .compare_and_swap("k", None, b"c", minute)
                .await
                .unwrap()
        );
        assert_eq!(store.get("k").await.unwrap(), Some(b"c".to_vec()));
    }
}
