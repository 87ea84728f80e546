//! [`AuditStore`] on PostgreSQL: the `audit_events` table, whose `seq` keeps the append order.

use stepup_store::{AuditRecord, AuditStore, StoreResult, async_trait};

use crate::rows::{self, AuditRow, to_db};
use crate::{PostgresStore, db_error};

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, record: AuditRecord) -> StoreResult<()> {
        // A retried append (same id) changes nothing, even when racing the first one.
        sqlx::query(
            "INSERT INTO audit_events (id, user_id, kind, at, detail) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&record.id)
        .bind(&record.user)
        .bind(&record.kind)
        .bind(to_db(record.at, "audit event time")?)
        .bind(&record.detail)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn audit_events(&self, user: &str, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        // A limit beyond PostgreSQL's integers is no limit.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, user_id, kind, at, detail FROM \
             (SELECT seq, id, user_id, kind, at, detail FROM audit_events WHERE user_id = $1 \
             ORDER BY at DESC, seq DESC LIMIT $2) AS recent \
             ORDER BY at ASC, seq ASC",
        )
        .bind(user)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(rows::audit).collect()
    }
}
