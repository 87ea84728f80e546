//! [`EphemeralStore`] on Redis: each call one `GETDEL`, one `DEL` or one script.

use std::time::Duration;

use stepup_store::{EphemeralStore, StoreError, StoreResult, async_trait, expiry_after};

use crate::entry::{decode_live, encode, redis_ttl_millis};
use crate::{RedisStore, redis_error, scripts};

/// A script's 0-or-1 answer as a boolean.
fn stored(answer: i64) -> StoreResult<bool> {
    match answer {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(StoreError::Corrupt(format!(
            "a script answered {answer} instead of 0 or 1"
        ))),
    }
}

/// A script's count as a count.
fn count(answer: i64) -> StoreResult<u64> {
    u64::try_from(answer)
        .map_err(|_| StoreError::Corrupt("a stored counter is negative".to_owned()))
}

#[async_trait]
impl EphemeralStore for RedisStore {
    async fn insert_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let now = self.now();
        let answer: i64 = scripts::INSERT_IF_ABSENT
            .key(self.value_key(key))
            .arg(now)
            .arg(encode(expiry_after(now, ttl), value))
            .arg(redis_ttl_millis(ttl))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        stored(answer)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        scripts::GET
            .key(self.value_key(key))
            .arg(self.now())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        // Concurrent GETDELs of one key: one gets the entry, the others nothing. An entry that
        // expired by the clock is deleted all the same, and reads as absent.
        let entry: Option<Vec<u8>> = redis::cmd("GETDEL")
            .arg(self.value_key(key))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        match entry {
            Some(entry) => decode_live(&entry, self.now()),
            None => Ok(None),
        }
    }

    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<u64> {
        let now = self.now();
        let answer: i64 = scripts::INCREMENT
            .key(self.counter_key(key))
            .arg(now)
            .arg(expiry_after(now, ttl))
            .arg(redis_ttl_millis(ttl))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        count(answer)
    }

    async fn decrement(&self, key: &str) -> StoreResult<u64> {
        let answer: i64 = scripts::DECREMENT
            .key(self.counter_key(key))
            .arg(self.now())
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        count(answer)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = self.now();
        let entry = encode(expiry_after(now, ttl), new);
        let redis_ttl = redis_ttl_millis(ttl);
        let mut connection = self.connection.clone();
        let answer: i64 = match expected {
            // No live value expected: the same script as an insert-if-absent.
            None => {
                scripts::INSERT_IF_ABSENT
                    .key(self.value_key(key))
                    .arg(now)
                    .arg(entry)
                    .arg(redis_ttl)
                    .invoke_async(&mut connection)
                    .await
            }
            Some(expected) => {
                scripts::COMPARE_AND_SWAP
                    .key(self.value_key(key))
                    .arg(now)
                    .arg(expected)
                    .arg(entry)
                    .arg(redis_ttl)
                    .invoke_async(&mut connection)
                    .await
            }
        }
        .map_err(redis_error)?;
        stored(answer)
    }

    async fn remove(&self, key: &str) -> StoreResult<()> {
        let _removed: i64 = redis::cmd("DEL")
            .arg(self.value_key(key))
            .arg(self.counter_key(key))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(redis_error)?;
        Ok(())
    }
}
