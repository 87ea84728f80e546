//! [`FactorStore`] on the `credentials`, `codes`, `factor_failures` and `generations` tables.

use stepup_store::{
    CodeSet, Credential, CredentialRef, CredentialStatus, Enrollment, FactorStore, Generation,
    GenerationChange, StoreError, StoreResult, async_trait,
};

use crate::SqliteStore;
use crate::rows::{
    CredentialRow, count_from_db, credential, credential_columns, db_error, from_db, generation,
    to_db,
};

#[async_trait]
impl FactorStore for SqliteStore {
    async fn put_pending(&self, credential: Credential, rule: Enrollment) -> StoreResult<bool> {
        let counter = to_db(credential.counter, "credential counter")?;
        let created_at = to_db(credential.created_at, "credential creation time")?;
        let last_used_at = credential
            .last_used_at
            .map(|at| to_db(at, "credential last use time"))
            .transpose()?;
        let generation = to_db(credential.generation, "credential generation")?;
        let statement = match rule {
            // One statement, so one step under the write lock: a credential of the kind with this
            // id, any user's (pending or active), leaves the table alone.
            Enrollment::Many => {
                "INSERT INTO credentials (user_id, kind, id, status, label, payload, counter, \
                 created_at, last_used_at, generation) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
                 WHERE NOT EXISTS (SELECT 1 FROM credentials WHERE kind = ?2 AND id = ?3)"
            }
            Enrollment::OnePerUser => {
                "INSERT INTO credentials (user_id, kind, id, status, label, payload, counter, \
                 created_at, last_used_at, generation) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (user_id, kind, id) DO NOTHING"
            }
        };
        let insert = sqlx::query(statement)
            .bind(&credential.user)
            .bind(&credential.kind)
            .bind(&credential.id)
            .bind(CredentialStatus::Pending.as_str())
            .bind(&credential.label)
            .bind(&credential.payload)
            .bind(counter)
            .bind(created_at)
            .bind(last_used_at)
            .bind(generation);
        match rule {
            Enrollment::Many => {
                let result = insert.execute(&self.pool).await.map_err(db_error)?;
                Ok(result.rows_affected() == 1)
            }
            // Check, clear and insert under the write lock, so two enrollments of the kind cannot
            // both pass the check.
            Enrollment::OnePerUser => {
                let mut tx = self.begin_immediate().await?;
                let holding: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM credentials WHERE user_id = ?1 AND kind = ?2 \
                     AND ((status = 'active' AND generation = ?3) OR generation > ?3)",
                )
                .bind(&credential.user)
                .bind(&credential.kind)
                .bind(generation)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                if holding > 0 {
                    tx.rollback().await.map_err(db_error)?;
                    return Ok(false);
                }
                // Every other credential of the kind: pending ones, and those of an older
                // generation, active or not (a newer one refused the call above).
                sqlx::query(
                    "DELETE FROM credentials WHERE user_id = ?1 AND kind = ?2 \
                     AND NOT (status = 'active' AND generation = ?3)",
                )
                .bind(&credential.user)
                .bind(&credential.kind)
                .bind(generation)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let result = insert.execute(&mut *tx).await.map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(result.rows_affected() == 1)
            }
        }
    }

    async fn activate(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        codes: Option<CodeSet>,
    ) -> StoreResult<bool> {
        let counter = to_db(counter, "credential counter")?;
        let codes = codes.map(StoredCodes::new).transpose()?;
        let mut tx = self.begin_immediate().await?;
        let activated = sqlx::query(
            "UPDATE credentials SET status = 'active', counter = ?4 \
             WHERE user_id = ?1 AND kind = ?2 AND id = ?3 AND status = 'pending'",
        )
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .bind(counter)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if activated.rows_affected() != 1 {
            tx.rollback().await.map_err(db_error)?;
            return Ok(false);
        }
        if let Some(codes) = codes {
            codes.write(&mut tx, key.user).await?;
        }
        // Dropping the transaction on an earlier error rolls it back: no half-enrolled user.
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn credential(&self, key: CredentialRef<'_>) -> StoreResult<Option<Credential>> {
        let row: Option<CredentialRow> = sqlx::query_as(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE user_id = ?1 AND kind = ?2 AND id = ?3"
        ))
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(credential).transpose()
    }

    async fn credentials(&self, user: &str) -> StoreResult<Vec<Credential>> {
        let rows: Vec<CredentialRow> = sqlx::query_as(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE user_id = ?1 ORDER BY created_at, kind, id"
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(credential).collect()
    }

    async fn credentials_of_kind(&self, kind: &str) -> StoreResult<Vec<Credential>> {
        let rows: Vec<CredentialRow> = sqlx::query_as(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE kind = ?1 ORDER BY user_id, created_at, id"
        ))
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(credential).collect()
    }

    async fn credential_by_id(&self, kind: &str, id: &str) -> StoreResult<Option<Credential>> {
        // Found through the (kind, id) index; the order picks the oldest if several users hold
        // it, ties in byte order (the column's collation is BINARY).
        let row: Option<CredentialRow> = sqlx::query_as(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE kind = ?1 AND id = ?2 ORDER BY created_at, user_id LIMIT 1"
        ))
        .bind(kind)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(credential).transpose()
    }

    async fn advance_counter(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        payload: Option<&str>,
        used_at: u64,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE credentials SET counter = ?4, last_used_at = ?5, \
             payload = COALESCE(?6, payload) \
             WHERE user_id = ?1 AND kind = ?2 AND id = ?3 AND status = 'active' AND counter < ?4",
        )
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .bind(to_db(counter, "credential counter")?)
        .bind(to_db(used_at, "credential last use time")?)
        .bind(payload)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn replace_payload(
        &self,
        key: CredentialRef<'_>,
        old: &str,
        new: &str,
        used_at: Option<u64>,
    ) -> StoreResult<bool> {
        let used_at = used_at
            .map(|at| to_db(at, "credential last use time"))
            .transpose()?;
        let result = sqlx::query(
            "UPDATE credentials SET payload = ?5, last_used_at = COALESCE(?6, last_used_at) \
             WHERE user_id = ?1 AND kind = ?2 AND id = ?3 AND payload = ?4",
        )
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .bind(old)
        .bind(new)
        .bind(used_at)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn disable_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE credentials SET status = 'disabled' \
             WHERE user_id = ?1 AND kind = ?2 AND id = ?3 AND status = 'active'",
        )
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn set_label(&self, key: CredentialRef<'_>, label: Option<&str>) -> StoreResult<bool> {
        // SQLite counts every row the WHERE matched, also one whose label was already `label`.
        let result = sqlx::query(
            "UPDATE credentials SET label = ?4 WHERE user_id = ?1 AND kind = ?2 AND id = ?3",
        )
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .bind(label)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn delete_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool> {
        let result =
            sqlx::query("DELETE FROM credentials WHERE user_id = ?1 AND kind = ?2 AND id = ?3")
                .bind(key.user)
                .bind(key.kind)
                .bind(key.id)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn replace_codes(&self, user: &str, set: CodeSet) -> StoreResult<()> {
        let codes = StoredCodes::new(set)?;
        let mut tx = self.begin_immediate().await?;
        codes.write(&mut tx, user).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn code_hash(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT hash FROM codes WHERE user_id = ?1 AND kind = ?2 AND lookup = ?3 \
             AND (expires_at IS NULL OR expires_at > ?4)",
        )
        .bind(user)
        .bind(kind)
        .bind(lookup)
        .bind(self.now_db()?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn consume_code(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<bool> {
        let result = sqlx::query(
            "DELETE FROM codes WHERE user_id = ?1 AND kind = ?2 AND lookup = ?3 \
             AND (expires_at IS NULL OR expires_at > ?4)",
        )
        .bind(user)
        .bind(kind)
        .bind(lookup)
        .bind(self.now_db()?)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn count_codes(&self, user: &str, kind: &str) -> StoreResult<usize> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM codes WHERE user_id = ?1 AND kind = ?2 \
             AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(user)
        .bind(kind)
        .bind(self.now_db()?)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        count_from_db(count, "code count")
    }

    async fn record_failure(&self, user: &str, kind: &str) -> StoreResult<u64> {
        // Saturates rather than overflowing into a floating-point streak.
        let streak: i64 = sqlx::query_scalar(
            "INSERT INTO factor_failures (user_id, kind, streak) VALUES (?1, ?2, 1) \
             ON CONFLICT (user_id, kind) DO UPDATE SET streak = CASE \
                 WHEN factor_failures.streak < 9223372036854775807 \
                 THEN factor_failures.streak + 1 ELSE factor_failures.streak END \
             RETURNING streak",
        )
        .bind(user)
        .bind(kind)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        from_db(streak, "failure streak")
    }

    async fn failures(&self, user: &str, kind: &str) -> StoreResult<u64> {
        let streak: Option<i64> = sqlx::query_scalar(
            "SELECT streak FROM factor_failures WHERE user_id = ?1 AND kind = ?2",
        )
        .bind(user)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        streak.map_or(Ok(0), |streak| from_db(streak, "failure streak"))
    }

    async fn clear_failures(&self, user: &str, kind: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM factor_failures WHERE user_id = ?1 AND kind = ?2")
            .bind(user)
            .bind(kind)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn generation(&self, user: &str) -> StoreResult<Generation> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT generation, changed_at FROM generations WHERE user_id = ?1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        row.map_or(Ok(Generation::default()), |(value, changed_at)| {
            generation(value, changed_at)
        })
    }

    async fn advance_generation(&self, user: &str, at: u64) -> StoreResult<Generation> {
        // One statement, so one step under the write lock, which serialises every move: the next
        // position is one more than the greatest, and a move is visible only once committed,
        // after every move of a lower position. A generation at SQLite's greatest integer
        // matches no row to update: the call fails as corrupt, changing nothing, rather than
        // overflowing.
        let row: Option<(i64, i64)> = sqlx::query_as(
            "INSERT INTO generations (user_id, generation, changed_at, seq) \
             VALUES (?1, 1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM generations)) \
             ON CONFLICT (user_id) DO UPDATE SET generation = generations.generation + 1, \
                 changed_at = excluded.changed_at, seq = excluded.seq \
             WHERE generations.generation < 9223372036854775807 \
             RETURNING generation, changed_at",
        )
        .bind(user)
        .bind(to_db(at, "generation change time")?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        let Some((value, changed_at)) = row else {
            return Err(StoreError::Corrupt(
                "the stored generation cannot move any further".to_owned(),
            ));
        };
        generation(value, changed_at)
    }

    async fn generation_changes(
        &self,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<GenerationChange>> {
        // Beyond SQLite's integers there is no position.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT seq, user_id, generation, changed_at FROM generations \
             WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter()
            .map(|(seq, user, value, changed_at)| {
                Ok(GenerationChange {
                    seq: from_db(seq, "generation feed position")?,
                    user,
                    generation: generation(value, changed_at)?,
                })
            })
            .collect()
    }

    async fn delete_user_factors(&self, user: &str) -> StoreResult<()> {
        let mut tx = self.begin_immediate().await?;
        for statement in [
            "DELETE FROM credentials WHERE user_id = ?1",
            "DELETE FROM codes WHERE user_id = ?1",
            "DELETE FROM factor_failures WHERE user_id = ?1",
        ] {
            sqlx::query(statement)
                .bind(user)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn ping(&self) -> StoreResult<()> {
        // A write that matches no row: it still takes the write lock (waiting on the busy
        // timeout), so a read-only or write-locked database fails it, yet nothing changes.
        sqlx::query("DELETE FROM generations WHERE 0")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

/// A code set with its expiries converted, checked before any transaction starts.
struct StoredCodes {
    kind: String,
    codes: Vec<(String, String, Option<i64>)>,
}

impl StoredCodes {
    fn new(set: CodeSet) -> StoreResult<Self> {
        let codes = set
            .codes
            .into_iter()
            .map(|code| {
                let expires_at = code
                    .expires_at
                    .map(|at| to_db(at, "code expiry"))
                    .transpose()?;
                Ok((code.lookup, code.hash, expires_at))
            })
            .collect::<StoreResult<_>>()?;
        Ok(Self {
            kind: set.kind,
            codes,
        })
    }

    /// Replaces the user's codes of the kind inside an open transaction.
    async fn write(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        user: &str,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM codes WHERE user_id = ?1 AND kind = ?2")
            .bind(user)
            .bind(&self.kind)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        for (lookup, hash, expires_at) in &self.codes {
            // A lookup given twice keeps its last hash and expiry.
            sqlx::query(
                "INSERT INTO codes (user_id, kind, lookup, hash, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (user_id, kind, lookup) DO UPDATE SET \
                 hash = excluded.hash, expires_at = excluded.expires_at",
            )
            .bind(user)
            .bind(&self.kind)
            .bind(lookup)
            .bind(hash)
            .bind(*expires_at)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
        Ok(())
    }
}
