//! [`EphemeralStore`] on the `ephemeral` (values) and `counters` tables.
//!
//! A row is live while its `expires_at` is after the clock's current second, bound to every
//! statement; an expired row counts as absent and is replaced in place by the next write.

use std::time::Duration;

use stepup_store::{EphemeralStore, StoreResult, async_trait, expiry_after};

use crate::SqliteStore;
use crate::rows::{db_error, from_db, to_db};

impl SqliteStore {
    /// The current second and the expiry of a row written now for `ttl`, as bound to statements.
    fn now_and_expiry(&self, ttl: Duration) -> StoreResult<(i64, i64)> {
        let now = self.now();
        Ok((
            to_db(now, "current time")?,
            to_db(expiry_after(now, ttl), "expiry")?,
        ))
    }

    /// Inserts `value` under `key` unless a live value is stored: one statement.
    async fn insert_unless_live(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> StoreResult<bool> {
        let (now, expires_at) = self.now_and_expiry(ttl)?;
        // Inserts, or replaces an expired row; a live row is left alone (no row affected).
        let result = sqlx::query(
            "INSERT INTO ephemeral (key, value, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO UPDATE SET \
             value = excluded.value, expires_at = excluded.expires_at \
             WHERE ephemeral.expires_at <= ?4",
        )
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
}

#[async_trait]
impl EphemeralStore for SqliteStore {
    async fn insert_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        self.insert_unless_live(key, value, ttl).await
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar("SELECT value FROM ephemeral WHERE key = ?1 AND expires_at > ?2")
            .bind(key)
            .bind(self.now_db()?)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query_scalar(
            "DELETE FROM ephemeral WHERE key = ?1 AND expires_at > ?2 RETURNING value",
        )
        .bind(key)
        .bind(self.now_db()?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<u64> {
        let (now, expires_at) = self.now_and_expiry(ttl)?;
        // SET expressions read the row as it was before the update: an expired counter restarts
        // at 1 with a new window, a live one counts on within its window (saturating rather than
        // overflowing into a floating-point count).
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO counters (key, count, expires_at) VALUES (?1, 1, ?2) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN counters.expires_at <= ?3 THEN 1 \
                 WHEN counters.count < 9223372036854775807 THEN counters.count + 1 \
                 ELSE counters.count END, \
             expires_at = CASE WHEN counters.expires_at <= ?3 \
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
        // One statement on the live counter only: its expiry is kept, an expired or absent one
        // matches no row and stays absent. A count at zero stays there (a negative one, which
        // no call writes, is left as stored and reported corrupt).
        let count: Option<i64> = sqlx::query_scalar(
            "UPDATE counters SET count = CASE WHEN count > 0 THEN count - 1 ELSE count END \
             WHERE key = ?1 AND expires_at > ?2 RETURNING count",
        )
        .bind(key)
        .bind(self.now_db()?)
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
        let Some(expected) = expected else {
            // Expecting no live value is inserting unless one is live.
            return self.insert_unless_live(key, new, ttl).await;
        };
        let (now, expires_at) = self.now_and_expiry(ttl)?;
        // One statement: only a live row still holding `expected` is replaced.
        let result = sqlx::query(
            "UPDATE ephemeral SET value = ?3, expires_at = ?4 \
             WHERE key = ?1 AND value = ?2 AND expires_at > ?5",
        )
        .bind(key)
        .bind(expected)
        .bind(new)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        self.maybe_purge(now).await;
        Ok(result.rows_affected() == 1)
    }

    async fn remove(&self, key: &str) -> StoreResult<()> {
        // One transaction, so no reader sees the value gone and the counter still there.
        let mut tx = self.begin_immediate().await?;
        for statement in [
            "DELETE FROM ephemeral WHERE key = ?1",
            "DELETE FROM counters WHERE key = ?1",
        ] {
            sqlx::query(statement)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }
}
