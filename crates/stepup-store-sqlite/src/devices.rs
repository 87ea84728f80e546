//! [`DeviceStore`] on the `devices` table.
//!
//! A device is live while its `expires_at` is after the clock's current second, bound to every
//! statement; an expired device counts as absent everywhere.

use stepup_store::{DeviceRecord, DeviceStore, StoreResult, async_trait};

use crate::SqliteStore;
use crate::rows::{DeviceRow, db_error, device, device_columns, to_db};

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn insert_device(&self, device: DeviceRecord) -> StoreResult<()> {
        let now = self.now_db()?;
        let created_at = to_db(device.created_at, "device creation time")?;
        let last_used_at = to_db(device.last_used_at, "device last use time")?;
        let expires_at = to_db(device.expires_at, "device expiry")?;
        let mfa_at = to_db(device.mfa_at, "device second factor time")?;
        let generation = to_db(device.generation, "device generation")?;
        let mut tx = self.begin_immediate().await?;
        // The user's expired devices go first (an expired device is absent anyway).
        sqlx::query("DELETE FROM devices WHERE user_id = ?1 AND expires_at <= ?2")
            .bind(&device.user)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        // A taken id or token hash fails the insert (a constraint error, naming the column but
        // not the value); dropping the transaction rolls it back.
        sqlx::query(
            "INSERT INTO devices (id, user_id, token_hash, created_at, last_used_at, expires_at, \
             mfa_at, address, user_agent, generation) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .bind(&device.id)
        .bind(&device.user)
        .bind(&device.token_hash)
        .bind(created_at)
        .bind(last_used_at)
        .bind(expires_at)
        .bind(mfa_at)
        .bind(&device.address)
        .bind(&device.user_agent)
        .bind(generation)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceRecord>> {
        let row: Option<DeviceRow> = sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE token_hash = ?1 AND expires_at > ?2"
        ))
        .bind(token_hash)
        .bind(self.now_db()?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(device).transpose()
    }

    async fn touch_device(
        &self,
        id: &str,
        last_used_at: u64,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE devices SET last_used_at = ?2, address = ?3, user_agent = ?4 \
             WHERE id = ?1 AND expires_at > ?5",
        )
        .bind(id)
        .bind(to_db(last_used_at, "device last use time")?)
        .bind(address)
        .bind(user_agent)
        .bind(self.now_db()?)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn devices(&self, user: &str) -> StoreResult<Vec<DeviceRecord>> {
        let rows: Vec<DeviceRow> = sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE user_id = ?1 AND expires_at > ?2 \
             ORDER BY last_used_at DESC, created_at DESC, id ASC"
        ))
        .bind(user)
        .bind(self.now_db()?)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(device).collect()
    }

    async fn delete_device(&self, user: &str, id: &str) -> StoreResult<bool> {
        let now = self.now_db()?;
        // Deletes the device live or expired; only a live one counts.
        let expires_at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM devices WHERE user_id = ?1 AND id = ?2 RETURNING expires_at",
        )
        .bind(user)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(expires_at.is_some_and(|expires_at| expires_at > now))
    }

    async fn delete_devices(&self, user: &str) -> StoreResult<usize> {
        let now = self.now_db()?;
        let expiries: Vec<i64> =
            sqlx::query_scalar("DELETE FROM devices WHERE user_id = ?1 RETURNING expires_at")
                .bind(user)
                .fetch_all(&self.pool)
                .await
                .map_err(db_error)?;
        // Deletes every device live or expired; only the live ones count.
        Ok(expiries
            .into_iter()
            .filter(|expires_at| *expires_at > now)
            .count())
    }
}
