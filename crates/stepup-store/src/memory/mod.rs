//! [`MemoryStore`]: every kind of state in this process's memory.

mod audit;
mod counters;
mod devices;
mod ephemeral;
mod factors;
mod grants;
mod values;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use stepup_core::clock::{SharedClock, SystemClock};

/// The Unix second at which an entry written at `now` with `ttl` expires.
///
/// A fractional second of `ttl` is rounded up, so a positive `ttl` never expires at once; a zero
/// `ttl` expires at `now`, which already counts as expired. Saturates at `u64::MAX`. Every
/// backend converts TTLs to expiry seconds with it, so they agree on the second an entry dies.
///
/// ```
/// use std::time::Duration;
/// use stepup_store::expiry_after;
///
/// assert_eq!(expiry_after(100, Duration::from_secs(30)), 130);
/// assert_eq!(expiry_after(100, Duration::from_millis(1)), 101);
/// ```
pub fn expiry_after(now: u64, ttl: Duration) -> u64 {
    let seconds = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    now.saturating_add(seconds)
}

/// A single-process store: durable state (factors, remembered devices, the audit trail, the
/// authorization server's clients and refresh-token families) in maps
/// behind one mutex, ephemeral values and counters in sharded maps.
///
/// Clones share the same state. Nothing survives the process; use it for tests, development and
/// single-instance deployments that accept losing enrollments on restart.
///
/// Every check-and-update call holds the durable mutex from the check to the last write, so it is
/// atomic; each ephemeral call is one critical section on the shard holding its key.
///
/// Expiry is judged by the injected clock at every read (an entry whose expiry is at or before
/// the clock's current second counts as absent). The memory of expired entries is reclaimed as
/// their shard grows, a minute after they expired by the same clock. The maps have no size bound,
/// so no live entry (a one-time token's "used" marker, an attempt counter) is ever evicted early;
/// their size is bounded by the callers' TTLs. A pending `mfa_token` costs about 260 bytes of
/// memory (`benches/memory.rs`).
///
/// ```
/// use stepup_store::MemoryStore;
///
/// let store = MemoryStore::new();
/// let shared = store.clone(); // the same state
/// # drop(shared);
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    clock: SharedClock,
}

struct Inner {
    durable: Mutex<Durable>,
    values: values::Values,
    counters: counters::Counters,
}

/// The durable state, behind one mutex.
#[derive(Default)]
struct Durable {
    factors: factors::Factors,
    devices: devices::Devices,
    audit: audit::Audit,
    grants: grants::Grants,
}

impl MemoryStore {
    /// An empty store judging expiry by the system clock.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                durable: Mutex::new(Durable::default()),
                values: values::Values::new(),
                counters: counters::Counters::new(),
            }),
            clock: Arc::new(SystemClock),
        }
    }

    /// Judges expiry by `clock` instead (tests pass a
    /// [`ManualClock`](stepup_core::clock::ManualClock)). The state is kept.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// The durable state. Every change makes its checks before its first write, and nothing
    /// between its first and last write can panic (map operations only), so a lock poisoned by a
    /// panic elsewhere guards no half-done change and is recovered.
    fn durable(&self) -> MutexGuard<'_, Durable> {
        self.inner
            .durable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EphemeralStore;
    use stepup_core::clock::ManualClock;

    #[test]
    fn expiry_rounds_fractions_up() {
        assert_eq!(expiry_after(100, Duration::from_secs(30)), 130);
        assert_eq!(expiry_after(100, Duration::from_millis(1)), 101);
        assert_eq!(expiry_after(100, Duration::ZERO), 100);
        assert_eq!(expiry_after(u64::MAX, Duration::from_secs(1)), u64::MAX);
    }

    #[tokio::test]
    async fn clones_share_state_and_with_clock_keeps_it() {
        // Far ahead of the system clock.
        let clock = ManualClock::at_unix(4_000_000_000);
        let store = MemoryStore::new();
        assert!(
            store
                .insert_if_absent("k", b"v", Duration::from_secs(60))
                .await
                .unwrap()
        );
        let clone = store.clone().with_clock(Arc::new(clock.clone()));
        // The system clock is far behind the manual one: by it, the entry expired long ago.
        assert_eq!(store.get("k").await.unwrap(), Some(b"v".to_vec()));
        assert_eq!(clone.get("k").await.unwrap(), None);
        clone.remove("k").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
    }
}
