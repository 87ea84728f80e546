//! The values of [`MemoryStore`](super::MemoryStore)'s ephemeral state, in sharded maps.
//!
//! A million pending challenges must fit in well under 300 MB: each entry is its key and its
//! value, each one allocation of exactly its length, and the expiry second, in a plain
//! `HashMap` under one of [`SHARDS`] mutexes (about 260 bytes for an `mfa_token` with its
//! ticket, against about 620 in a moka cache, whose entries carry access-order nodes, timer
//! nodes, their own `Arc`s and statistics). Every call is one critical section on one shard, so
//! each check-and-write is atomic.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::expiry_after;

/// Shards: enough that concurrent callers rarely wait on each other, and that a purge scans a
/// small part of the values.
const SHARDS: usize = 64;

/// A shard is never purged below this many entries.
const MIN_PURGE_AT: usize = 1024;

/// How long past its expiry (by the injected clock) an entry's memory is kept: clones of a store
/// may be given clocks a little apart, and a purge by one never removes what another still
/// counts as live within this slack.
const RECLAIM_GRACE: u64 = 60;

/// A value and the Unix second (by the injected clock) at which it expires; live while strictly
/// before it.
struct Entry {
    value: Box<[u8]>,
    expires_at: u64,
}

impl Entry {
    fn new(value: &[u8], now: u64, ttl: Duration) -> Self {
        Self {
            value: Box::from(value),
            expires_at: expiry_after(now, ttl),
        }
    }

    fn live(&self, now: u64) -> bool {
        self.expires_at > now
    }
}

#[derive(Default)]
struct Shard {
    entries: HashMap<Box<str>, Entry>,
    /// Purge expired entries when a new key would make the shard this big.
    purge_at: usize,
}

impl Shard {
    /// Stores `entry` under `key`, purging entries long expired first when the shard has doubled
    /// since its last purge (so purging costs O(1) per write on average).
    fn put(&mut self, key: &str, entry: Entry, now: u64) {
        if let Some(current) = self.entries.get_mut(key) {
            *current = entry;
            return;
        }
        if self.entries.len() >= self.purge_at.max(MIN_PURGE_AT) {
            let horizon = now.saturating_sub(RECLAIM_GRACE);
            self.entries.retain(|_, entry| entry.expires_at > horizon);
            self.purge_at = self.entries.len().saturating_mul(2);
            // Give back the memory of a burst that has expired.
            if self.entries.capacity() > 4 * self.purge_at.max(MIN_PURGE_AT) {
                self.entries.shrink_to(self.purge_at);
            }
        }
        self.entries.insert(Box::from(key), entry);
    }
}

/// The values, sharded by a random hash of their key.
pub(super) struct Values {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
}

impl Values {
    pub(super) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// A shard; every change to it is one map operation after its checks, so a poisoned lock
    /// guards no half-done change and is recovered.
    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = usize::try_from(self.hasher.hash_one(key) % SHARDS as u64).unwrap_or(0);
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `value` unless a live value is there; whether it stored.
    pub(super) fn insert_if_absent(
        &self,
        key: &str,
        value: &[u8],
        now: u64,
        ttl: Duration,
    ) -> bool {
        let mut shard = self.shard(key);
        if shard.entries.get(key).is_some_and(|entry| entry.live(now)) {
            return false;
        }
        shard.put(key, Entry::new(value, now, ttl), now);
        true
    }

    /// The live value.
    pub(super) fn get(&self, key: &str, now: u64) -> Option<Vec<u8>> {
        self.shard(key)
            .entries
            .get(key)
            .filter(|entry| entry.live(now))
            .map(|entry| entry.value.to_vec())
    }

    /// Removes the entry, live or expired; hands out a live one.
    pub(super) fn take(&self, key: &str, now: u64) -> Option<Vec<u8>> {
        self.shard(key)
            .entries
            .remove(key)
            .filter(|entry| entry.live(now))
            .map(|entry| entry.value.into_vec())
    }

    /// Stores `new` if the live value is `expected` (`None`: no live value); whether it stored.
    pub(super) fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        now: u64,
        ttl: Duration,
    ) -> bool {
        let mut shard = self.shard(key);
        let live = shard.entries.get(key).filter(|entry| entry.live(now));
        let matches = match (live, expected) {
            (None, None) => true,
            (Some(current), Some(expected)) => *current.value == *expected,
            _ => false,
        };
        if matches {
            shard.put(key, Entry::new(new, now, ttl), now);
        }
        matches
    }

    pub(super) fn remove(&self, key: &str) {
        self.shard(key).entries.remove(key);
    }

    /// Entries held, live or not yet purged.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap().entries.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn long_expired_values_are_purged_as_a_shard_grows() {
        let values = Values::new();
        for index in 0..100_000 {
            assert!(values.insert_if_absent(&format!("old-{index}"), b"v", 1_000, MINUTE));
        }
        // Much later, new keys arrive: the long expired ones make room.
        for index in 0..100_000 {
            assert!(values.insert_if_absent(&format!("new-{index}"), b"v", 2_000, MINUTE));
        }
        let held = values.held();
        assert!(held < 150_000, "{held} values kept");
        assert_eq!(values.get("new-7", 2_000), Some(b"v".to_vec()));
        assert_eq!(values.get("old-7", 2_000), None);
    }

    #[test]
    fn a_purge_keeps_what_is_live_or_within_the_grace() {
        let values = Values::new();
        // Expiring at 1,070, 1,000 and 1,150; the purges below run at 1,120, keeping what
        // expired after 1,060.
        assert!(values.insert_if_absent("recent", b"r", 1_010, MINUTE));
        assert!(values.insert_if_absent("long-gone", b"g", 940, MINUTE));
        assert!(values.insert_if_absent("live", b"l", 1_090, MINUTE));
        for index in 0..SHARDS * MIN_PURGE_AT * 2 {
            values.insert_if_absent(&format!("filler-{index}"), b"f", 1_120, MINUTE);
        }
        // Within the grace: kept, though a reader at 1,120 sees it absent.
        assert_eq!(values.get("recent", 1_069), Some(b"r".to_vec()));
        assert_eq!(values.get("recent", 1_120), None);
        assert_eq!(values.get("live", 1_120), Some(b"l".to_vec()));
        assert_eq!(values.get("long-gone", 999), None, "purged");
    }

    #[test]
    fn take_removes_an_expired_value_without_handing_it_out() {
        let values = Values::new();
        assert!(values.insert_if_absent("k", b"v", 1_000, MINUTE));
        assert_eq!(values.take("k", 1_060), None);
        assert_eq!(values.get("k", 1_000), None, "removed");
    }
}
