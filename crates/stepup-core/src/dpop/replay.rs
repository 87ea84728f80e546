//! The replay memory of one process: for a verify-only service running a single instance. A
//! service of several instances shares stepup's engine (`Mfa`) or another [`ProofReplay`] instead.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::clock::{SharedClock, SystemClock};
use crate::policy::{ProofReplay, Unavailable, async_trait};

/// The default number of proofs remembered at once ([`InProcessReplay::with_capacity`]).
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// Remembers each key until its time to live has passed, by the injected clock.
///
/// Bounded: when full, expired entries are swept, and if none has expired the proof is refused
/// as unverifiable (`503`) rather than an unexpired entry forgotten — forgetting one would let
/// its proof be replayed. Only proofs that passed every other check (a valid token, a valid
/// signature) are recorded.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use stepup_core::dpop::InProcessReplay;
/// use stepup_core::policy::ProofReplay;
///
/// let replay = InProcessReplay::new();
/// assert_eq!(replay.first_use("k", Duration::from_secs(66)).await, Ok(true));
/// assert_eq!(replay.first_use("k", Duration::from_secs(66)).await, Ok(false));
/// # });
/// ```
pub struct InProcessReplay {
    clock: SharedClock,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Key → when it expires (Unix milliseconds).
    seen: HashMap<String, u64>,
    /// When the next sweep of expired entries is due (Unix milliseconds).
    next_sweep: u64,
}

impl InProcessReplay {
    /// An empty memory of [`DEFAULT_REPLAY_CAPACITY`] entries, on the system clock.
    pub fn new() -> Self {
        Self {
            clock: std::sync::Arc::new(SystemClock),
            capacity: DEFAULT_REPLAY_CAPACITY,
            state: Mutex::new(State::default()),
        }
    }

    /// The clock expiry is judged by.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How many unexpired proofs may be remembered at once (at least 1).
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// How many entries are held now (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seen
            .len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now_ms(&self) -> u64 {
        self.clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            })
    }

    fn record(&self, key: &str, ttl: Duration) -> Result<bool, Unavailable> {
        let now = self.now_ms();
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&expires) = state.seen.get(key)
            && expires > now
        {
            return Ok(false);
        }
        if now >= state.next_sweep || state.seen.len() >= self.capacity {
            state.seen.retain(|_, expires| *expires > now);
            // Sweeping once per time to live keeps the memory to about two windows of proofs.
            state.next_sweep = now.saturating_add(ttl_ms.max(1_000));
        }
        if state.seen.len() >= self.capacity && !state.seen.contains_key(key) {
            return Err(Unavailable);
        }
        state
            .seen
            .insert(key.to_owned(), now.saturating_add(ttl_ms));
        Ok(true)
    }
}

impl Default for InProcessReplay {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for InProcessReplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessReplay")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ProofReplay for InProcessReplay {
    async fn first_use(&self, key: &str, ttl: Duration) -> Result<bool, Unavailable> {
        self.record(key, ttl)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_key_is_new_once_per_ttl_and_a_full_memory_fails_closed() {
        let clock = ManualClock::at_unix(1_000);
        let replay = InProcessReplay::new()
            .with_clock(Arc::new(clock.clone()))
            .with_capacity(2);
        let ttl = Duration::from_secs(66);
        assert_eq!(replay.record("a", ttl), Ok(true));
        assert_eq!(replay.record("a", ttl), Ok(false));
        assert_eq!(replay.record("b", ttl), Ok(true));
        // Full of live entries: refused, never forgotten.
        assert_eq!(replay.record("c", ttl), Err(Unavailable));
        assert_eq!(replay.record("a", ttl), Ok(false));
        clock.advance(Duration::from_secs(66));
        assert_eq!(replay.record("c", ttl), Ok(true));
        assert_eq!(replay.record("a", ttl), Ok(true));
        assert_eq!(replay.len(), 2);
    }
}
