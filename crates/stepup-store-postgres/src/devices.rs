//! [`DeviceStore`] on PostgreSQL: the `devices` table.

use stepup_store::{DeviceRecord, DeviceStore, StoreResult, async_trait};

use crate::rows::{self, DeviceRow, device_columns, to_db};
use crate::{PostgresStore, db_error};

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn insert_device(&self, device: DeviceRecord) -> StoreResult<()> {
        let now = to_db(self.now(), "current time")?;
        let created_at = to_db(device.created_at, "device creation time")?;
        let last_used_at = to_db(device.last_used_at, "device last use time")?;
        let expires_at = to_db(device.expires_at, "device expiry")?;
        let mfa_at = to_db(device.mfa_at, "device second factor time")?;
        let generation = to_db(device.generation, "device generation")?;
        let mut tx = self.begin().await?;
        // The user's expired devices go first (an expired device is absent anyway). Concurrent
        // inserts for the user may both try to delete one: the second waits and finds it gone.
        sqlx::query("DELETE FROM devices WHERE user_id = $1 AND expires_at <= $2")
            .bind(&device.user)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        // A taken id or token hash fails the insert (the unique indexes also settle concurrent
        // inserts of the same one); dropping the transaction rolls the deletion back.
        sqlx::query(
            "INSERT INTO devices (id, user_id, token_hash, created_at, last_used_at, expires_at, \
             mfa_at, address, user_agent, generation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
        let now = to_db(self.now(), "current time")?;
        let row: Option<DeviceRow> = sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE token_hash = $1 AND expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(rows::device).transpose()
    }

    async fn touch_device(
        &self,
        id: &str,
        last_used_at: u64,
        address: Option<&str>,
        user_agent: Option<&str>,
    ) -> StoreResult<bool> {
        let now = to_db(self.now(), "current time")?;
        let result = sqlx::query(
            "UPDATE devices SET last_used_at = $2, address = $3, user_agent = $4 \
             WHERE id = $1 AND expires_at > $5",
        )
        .bind(id)
        .bind(to_db(last_used_at, "device last use time")?)
        .bind(address)
        .bind(user_agent)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn devices(&self, user: &str) -> StoreResult<Vec<DeviceRecord>> {
        let now = to_db(self.now(), "current time")?;
        // Byte order for the last tie, whatever the database's collation.
        let rows: Vec<DeviceRow> = sqlx::query_as(concat!(
            "SELECT ",
            device_columns!(),
            " FROM devices WHERE user_id = $1 AND expires_at > $2 \
             ORDER BY last_used_at DESC, created_at DESC, id COLLATE \"C\" ASC"
        ))
        .bind(user)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(rows::device).collect()
    }

    async fn delete_device(&self, user: &str, id: &str) -> StoreResult<bool> {
        let now = to_db(self.now(), "current time")?;
        let expires_at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM devices WHERE user_id = $1 AND id = $2 RETURNING expires_at",
        )
        .bind(user)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(expires_at.is_some_and(|expires_at| expires_at > now))
    }

    async fn delete_devices(&self, user: &str) -> StoreResult<usize> {
        let now = to_db(self.now(), "current time")?;
        let live: i64 = sqlx::query_scalar(
            "WITH gone AS (DELETE FROM devices WHERE user_id = $1 RETURNING expires_at) \
             SELECT COUNT(*) FROM gone WHERE expires_at > $2",
        )
        .bind(user)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        rows::count_from_db(live, "device count")
    }
}
