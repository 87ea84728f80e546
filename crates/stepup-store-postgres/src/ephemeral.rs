//! [`EphemeralStore`] on PostgreSQL: `ephemeral` values and `counters`, and the purge of their
//! expired rows.

use std::sync::atomic::Ordering;
use std::time::Duration;

use stepup_store::{EphemeralStore, StoreResult, async_trait, expiry_after};

use crate::rows::{from_db, to_db};
use crate::{PostgresStore, db_error};

/// Expired ephemeral rows are purged on every this many-th ephemeral write.
const PURGE_EVERY: u64 = 16;

/// At most this many expired rows are purged per table at a time.
const PURGE_LIMIT: i64 = 256;

/// Inserts a value (`$1` key, `$2` value, `$3` expiry), or replaces an expired one (`$4` now).
/// A live row is left alone and no row is affected. A concurrent insert of the same key waits for
/// the other's outcome and then judges the row it left, so exactly one caller wins.
const INSERT_IF_ABSENT: &str = "INSERT INTO ephemeral (key, value, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
     WHERE ephemeral.expires_at <= $4";

impl PostgresStore {
    /// The current second (bound to statements) and the expiry of a row written now for `ttl`.
    fn now_and_expiry(&self, ttl: Duration) -> StoreResult<(i64, i64)> {
        let now = self.now();
        Ok((
            to_db(now, "current time")?,
            to_db(expiry_after(now, ttl), "expiry")?,
        ))
    }

    /// Now and then, deletes a bounded number of expired ephemeral rows and counters. Failing to
    /// purge changes no answer, so a failure is only logged.
    ///
    /// Rows another call holds (e.g. one reviving an expired key) are skipped, not waited for; the
    /// outer condition re-checks expiry on the row actually deleted.
    async fn maybe_purge(&self, now: i64) {
        if !self
            .writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY)
        {
            return;
        }
        let values = sqlx::query(
            "DELETE FROM ephemeral WHERE key IN \
             (SELECT key FROM ephemeral WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) \
             AND expires_at <= $1",
        )
        .bind(now)
        .bind(PURGE_LIMIT)
        .execute(&self.pool)
        .await;
        let counters = sqlx::query(
            "DELETE FROM counters WHERE key IN \
             (SELECT key FROM counters WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) \
             AND expires_at <= $1",
        )
        .bind(now)
        .bind(PURGE_LIMIT)
        .execute(&self.pool)
        .await;
        if let Err(error) = values.and(counters) {
            let error = db_error(error);
            tracing::warn!(%error, "purging expired ephemeral state failed");
        }
    }
}

#[async_trait]
impl EphemeralStore for PostgresStore {
    async fn insert_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let (now, expires_at) = self.now_and_expiry(ttl)?;
        let result = sqlx::query(INSERT_IF_ABSENT)
            .bind(key)
            .bind(value)
            .bind(expires_at)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        self.maybe_purge(now).await;
        Ok(result.rows_affected() == 1)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = to_db(self.now(), "current time")?;
        sqlx::query_scalar("SELECT value FROM ephemeral WHERE key = $1 AND expires_at > $2")
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = to_db(self.now(), "current time")?;
        // Concurrent deletes of one row: one gets it back, the others find it gone.
        sqlx::query_scalar(
            "DELETE FROM ephemeral WHERE key = $1 AND expires_at > $2 RETURNING value",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<u64> {
        let (now, expires_at) = self.now_and_expiry(ttl)?;
        // SET expressions read the row as it was before the update (the latest committed version,
        // locked): an expired counter restarts at 1 with a new window, a live one counts on within
        // its window.
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO counters (key, count, expires_at) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN counters.expires_at <= $3 THEN 1 ELSE counters.count + 1 END, \
             expires_at = CASE WHEN counters.expires_at <= $3 \
                 THEN excluded.expires_at ELSE counters.expires_at END \
             RETURNING count",
        )
        .bind(key)
        .bind(expires_at)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        self.maybe_purge(now).await;
        from_db(count, "counter")
    }

    async fn decrement(&self, key: &str) -> StoreResult<u64> {
        let now = to_db(self.now(), "current time")?;
        // One statement on the locked row: concurrent decrements each take one off. A count at
        // zero stays zero (a negative one, corrupt, is left as it is and reported).
        let count: Option<i64> = sqlx::query_scalar(
            "UPDATE counters SET count = CASE WHEN count > 0 THEN count - 1 ELSE count END \
             WHERE key = $1 AND expires_at > $2 RETURNING count",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        count.map_or(Ok(0), |count| from_db(count, "counter"))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> StoreResult<bool> {
        let (now, expires_at) = self.now_and_expiry(ttl)?;
        let result = match expected {
            // No live value expected: the same statement as an insert-if-absent.
            None => sqlx::query(INSERT_IF_ABSENT)
                .bind(key)
                .bind(new)
                .bind(expires_at)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(db_error)?,
            // Concurrent callers wait on the row's lock and re-check the condition against the
            // winner's value: those expecting the replaced value change nothing.
            Some(expected) => sqlx::query(
                "UPDATE ephemeral SET value = $3, expires_at = $4 \
                 WHERE key = $1 AND value = $2 AND expires_at > $5",
            )
            .bind(key)
            .bind(expected)
            .bind(new)
            .bind(expires_at)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db_error)?,
        };
        self.maybe_purge(now).await;
        Ok(result.rows_affected() == 1)
    }

    async fn remove(&self, key: &str) -> StoreResult<()> {
        sqlx::query(
            "WITH gone_value AS (DELETE FROM ephemeral WHERE key = $1) \
             DELETE FROM counters WHERE key = $1",
        )
        .bind(key)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
