//! Every user's generation, copied into this process, so that the check every authenticated
//! request makes ("was this token's user reset since?") costs no I/O.
//!
//! Resets are rare, so the copy is small: one entry per user ever reset. It is kept current from
//! the store's feed of generation changes ([`FactorStore::generation_changes`]): a background
//! task reads the changes after the last position it saw, every [`CATCH_UP_EVERY`] and as soon
//! as the store says something changed; a reset made by this process is copied at once.
//!
//! **The bound.** A reset on one instance is enforced on every other within the catch-up period
//! (well under a second). When the copy has not been brought up to date for longer than
//! [`FRESHNESS_BOUND`] (the store unreachable, the task stalled), it is not trusted: the check
//! asks the store itself, and fails closed (`503`) when the store cannot answer either; the copy
//! recovers by itself at the next successful catch-up.
//!
//! **The rule**, given the copy's generation `g` of the user (the store's is `g` or more):
//! a token of generation below `g` is void; of `g`, it stands; above `g` (minted after a reset
//! this process has not copied yet), the store is asked. A token without a generation (another
//! issuer's) stands when issued after the user's last reset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use stepup_store::{FactorStore, Generation, GenerationChange};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How often the copy catches up with the store's feed.
pub const CATCH_UP_EVERY: Duration = Duration::from_millis(200);
/// How stale the copy may be before the check fails closed.
pub const FRESHNESS_BOUND: Duration = Duration::from_secs(1);
/// Changes read per catch-up query.
const PAGE: usize = 1_000;

/// The copy. See the [module](self).
pub(crate) struct Replica {
    generations: RwLock<HashMap<String, Generation>>,
    state: RwLock<SyncState>,
    /// Whether the catch-up task runs.
    started: AtomicBool,
    /// Wakes the catch-up task early (a change this process made, or one the store announced).
    wake: Arc<Notify>,
    bound: Duration,
}

struct SyncState {
    /// The feed position caught up to.
    cursor: u64,
    /// When the copy was last known complete (a catch-up that reached the end of the feed).
    synced_at: Option<Instant>,
}

/// The copy could not vouch for itself: it has not caught up within the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stale;

impl Replica {
    pub(crate) fn new(bound: Duration) -> Self {
        Self {
            generations: RwLock::new(HashMap::new()),
            state: RwLock::new(SyncState {
                cursor: 0,
                synced_at: None,
            }),
            started: AtomicBool::new(false),
            wake: Arc::new(Notify::new()),
            bound,
        }
    }

    /// The user's generation as copied, if the copy is fresh.
    pub(crate) fn generation(&self, user: &str) -> Result<Generation, Stale> {
        let fresh = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .synced_at
            .is_some_and(|at| at.elapsed() <= self.bound);
        if !fresh {
            return Err(Stale);
        }
        Ok(self
            .generations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
            .copied()
            .unwrap_or_default())
    }

    /// Copies a generation this process knows of (a reset it made), at once.
    pub(crate) fn learn(&self, user: &str, generation: Generation) {
        let mut generations = self
            .generations
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = generations.entry(user.to_owned()).or_default();
        if generation.value > entry.value {
            *entry = generation;
        }
    }

    fn apply(&self, changes: &[GenerationChange]) {
        for change in changes {
            self.learn(&change.user, change.generation);
        }
    }

    /// Starts the catch-up task for `store` once, on the current tokio runtime (none: nothing
    /// starts, and the copy stays stale, so checks ask the store).
    pub(crate) fn start(self: &Arc<Self>, store: &Arc<dyn FactorStore>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self
            .started
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            runtime.spawn(catch_up(Arc::downgrade(self), store.clone()));
        }
    }

    /// Asks the task to catch up now.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Reads the feed to its end once; `true` if it got there.
    async fn catch_up_once(&self, store: &dyn FactorStore) -> bool {
        let mut cursor = self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .cursor;
        loop {
            let changes = match store.generation_changes(cursor, PAGE).await {
                Ok(changes) => changes,
                Err(error) => {
                    tracing::warn!(%error, "the generation feed could not be read; checks fail closed once the copy is stale");
                    return false;
                }
            };
            self.apply(&changes);
            let read = changes.len();
            if let Some(last) = changes.last() {
                cursor = cursor.max(last.seq);
            }
            if read < PAGE {
                let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
                state.cursor = cursor;
                state.synced_at = Some(Instant::now());
                return true;
            }
        }
    }
}

/// The catch-up loop: ends when the engine that owns the copy is gone.
async fn catch_up(replica: Weak<Replica>, store: Arc<dyn FactorStore>) {
    loop {
        let Some(replica) = replica.upgrade() else {
            return;
        };
        replica.catch_up_once(store.as_ref()).await;
        // Hold no strong reference while waiting, so dropping the engine ends the task. A wake
        // meanwhile is kept by the `Notify` as a permit, not lost.
        let wake = replica.wake.clone();
        drop(replica);
        let _ = tokio::time::timeout(CATCH_UP_EVERY, wake.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stepup_store::{FactorStore, MemoryStore};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_copy_follows_the_feed_and_fails_closed_when_stale() {
        let store = Arc::new(MemoryStore::new());
        let replica = Arc::new(Replica::new(FRESHNESS_BOUND));
        assert_eq!(replica.generation("ada"), Err(Stale), "never synced");
        let shared: Arc<dyn FactorStore> = store.clone();
        replica.start(&shared);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(replica.generation("ada").unwrap().value, 0);
        store.advance_generation("ada", 100).await.unwrap();
        tokio::time::sleep(CATCH_UP_EVERY + Duration::from_millis(10)).await;
        let copied = replica.generation("ada").unwrap();
        assert_eq!((copied.value, copied.changed_at), (1, Some(100)));
        replica.learn(
            "bob",
            Generation {
                value: 3,
                changed_at: Some(7),
            },
        );
        assert_eq!(
            replica.generation("bob").unwrap().value,
            3,
            "learned at once"
        );
        replica.learn(
            "bob",
            Generation {
                value: 2,
                changed_at: Some(5),
            },
        );
        assert_eq!(
            replica.generation("bob").unwrap().value,
            3,
            "never moves back"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_engine_ends_the_task() {
        let store: Arc<dyn FactorStore> = Arc::new(MemoryStore::new());
        let replica = Arc::new(Replica::new(FRESHNESS_BOUND));
        replica.start(&store);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let weak = Arc::downgrade(&replica);
        drop(replica);
        tokio::time::sleep(CATCH_UP_EVERY * 3).await;
        assert!(weak.upgrade().is_none());
        assert_eq!(Arc::strong_count(&store), 1, "the task let go of the store");
    }
}
