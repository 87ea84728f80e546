//! The [`EphemeralStore`] half of [`MemoryStore`]: values in [`Values`](super::values::Values),
//! counters in [`Counters`](super::counters::Counters).

use std::time::Duration;

use super::MemoryStore;
use crate::{EphemeralStore, StoreResult, async_trait};

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn insert_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        Ok(self
            .inner
            .values
            .insert_if_absent(key, value, self.now(), ttl))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.inner.values.get(key, self.now()))
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.inner.values.take(key, self.now()))
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
        Ok(self
            .inner
            .values
            .compare_and_swap(key, expected, new, self.now(), ttl))
    }

    async fn remove(&self, key: &str) -> StoreResult<()> {
        self.inner.values.remove(key);
        self.inner.counters.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
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
