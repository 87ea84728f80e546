//! Fixed-window counters of [`MemoryStore`](super::MemoryStore), in sharded maps.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::expiry_after;

/// Fixed-window counters in sharded maps under plain mutexes. The rate-limit check runs on every
/// login request: a short critical section costs a fraction of a moka compute. Expired counters
/// are purged when a shard has doubled since its last purge.
pub(super) struct Counters {
    shards: Box<[Mutex<CounterShard>]>,
    hasher: RandomState,
}

#[derive(Default)]
struct CounterShard {
    /// key → (count, expires_at in Unix seconds by the injected clock).
    counts: HashMap<String, (u64, u64)>,
    /// Purge expired counters when the shard reaches this size.
    purge_at: usize,
}

const COUNTER_SHARDS: usize = 16;
const MIN_PURGE_AT: usize = 1024;

impl Counters {
    pub(super) fn new() -> Self {
        Self {
            shards: (0..COUNTER_SHARDS)
                .map(|_| Mutex::new(CounterShard::default()))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// A shard; every change to it is one map operation, so a poisoned lock is recovered.
    fn shard(&self, key: &str) -> MutexGuard<'_, CounterShard> {
        let index = usize::try_from(self.hasher.hash_one(key) % COUNTER_SHARDS as u64).unwrap_or(0);
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One atomic step: the new count, starting a window of `ttl` if there is no live one.
    pub(super) fn increment(&self, key: &str, now: u64, ttl: Duration) -> u64 {
        let mut shard = self.shard(key);
        if let Some((count, expires_at)) = shard.counts.get_mut(key) {
            if *expires_at > now {
                *count = count.saturating_add(1);
            } else {
                *count = 1;
                *expires_at = expiry_after(now, ttl);
            }
            return *count;
        }
        if shard.counts.len() >= shard.purge_at.max(MIN_PURGE_AT) {
            shard.counts.retain(|_, (_, expires_at)| *expires_at > now);
            shard.purge_at = shard.counts.len().saturating_mul(2);
        }
        shard
            .counts
            .insert(key.to_owned(), (1, expiry_after(now, ttl)));
        1
    }

    /// One less on a live counter, never below zero; an absent or expired one reads 0.
    pub(super) fn decrement(&self, key: &str, now: u64) -> u64 {
        let mut shard = self.shard(key);
        match shard.counts.get_mut(key) {
            Some((count, expires_at)) if *expires_at > now => {
                *count = count.saturating_sub(1);
                *count
            }
            _ => 0,
        }
    }

    pub(super) fn remove(&self, key: &str) {
        self.shard(key).counts.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_counters_are_purged_as_a_shard_grows() {
        let counters = Counters::new();
        let ttl = Duration::from_secs(60);
        for index in 0..20_000 {
            counters.increment(&format!("old-{index}"), 1_000, ttl);
        }
        // Much later, new keys arrive: the expired ones make room.
        for index in 0..20_000 {
            counters.increment(&format!("new-{index}"), 2_000, ttl);
        }
        let stored: usize = counters
            .shards
            .iter()
            .map(|shard| shard.lock().unwrap().counts.len())
            .sum();
        assert!(stored < 30_000, "{stored} counters kept");
        assert_eq!(counters.increment("new-7", 2_000, ttl), 2);
        assert_eq!(counters.increment("old-7", 2_000, ttl), 1, "a new window");
    }
}
