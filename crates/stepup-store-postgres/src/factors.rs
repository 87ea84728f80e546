//! [`FactorStore`] on PostgreSQL: `credentials`, `codes`, `factor_failures` and `generations`
//! (with the sequence `generation_seq`, the positions of the feed).

use std::collections::HashMap;

use sqlx::{Executor, Postgres, Transaction};
use stepup_store::{
    CodeSet, Credential, CredentialRef, CredentialStatus, Enrollment, FactorStore, Generation,
    GenerationChange, StoreError, StoreResult, async_trait,
};

use crate::rows::{self, CredentialRow, credential_columns, from_db, to_db, to_db_opt};
use crate::{PostgresStore, db_error};

/// Turns a pending credential active (`$1`–`$3` the key, `$4` the counter); no row is affected
/// when it is absent or already active, so exactly one concurrent caller wins.
const ACTIVATE: &str = "UPDATE credentials SET status = 'active', counter = $4 \
     WHERE user_id = $1 AND kind = $2 AND id = $3 AND status = 'pending'";

/// A credential about to be stored, its integers converted.
struct NewCredential<'a> {
    credential: &'a Credential,
    counter: i64,
    created_at: i64,
    last_used_at: Option<i64>,
    generation: i64,
}

impl<'a> NewCredential<'a> {
    fn of(credential: &'a Credential) -> StoreResult<Self> {
        Ok(Self {
            credential,
            counter: to_db(credential.counter, "credential counter")?,
            created_at: to_db(credential.created_at, "credential creation time")?,
            last_used_at: to_db_opt(credential.last_used_at, "credential last use time")?,
            generation: to_db(credential.generation, "credential generation")?,
        })
    }

    /// Inserts it, pending, unless any user holds a credential of its kind with its id; `true`
    /// if inserted. Run in `tx` after [`lock_credential_id`] of the same kind and id: the
    /// statement's snapshot, taken once the lock is held, sees every committed row of the
    /// id, so concurrent callers with the same kind and id cannot both insert.
    async fn insert_unless_id_held(
        &self,
        tx: &mut Transaction<'static, Postgres>,
    ) -> StoreResult<bool> {
        let credential = self.credential;
        // A key conflict can only come from a one-per-user enrollment of the same user, kind and
        // id (which takes another lock) committing meanwhile: the call is then refused as well.
        let result = sqlx::query(
            "INSERT INTO credentials (user_id, kind, id, status, label, payload, counter, \
             created_at, last_used_at, generation) \
             SELECT $1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9 \
             WHERE NOT EXISTS (SELECT 1 FROM credentials WHERE kind = $2 AND id = $3) \
             ON CONFLICT (user_id, kind, id) DO NOTHING",
        )
        .bind(&credential.user)
        .bind(&credential.kind)
        .bind(&credential.id)
        .bind(&credential.label)
        .bind(&credential.payload)
        .bind(self.counter)
        .bind(self.created_at)
        .bind(self.last_used_at)
        .bind(self.generation)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    /// Inserts it, pending, unless its key is taken; `true` if inserted.
    async fn insert<'c>(
        &self,
        executor: impl Executor<'c, Database = Postgres>,
    ) -> StoreResult<bool> {
        let credential = self.credential;
        let result = sqlx::query(
            "INSERT INTO credentials (user_id, kind, id, status, label, payload, counter, \
             created_at, last_used_at, generation) \
             VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (user_id, kind, id) DO NOTHING",
        )
        .bind(&credential.user)
        .bind(&credential.kind)
        .bind(&credential.id)
        .bind(&credential.label)
        .bind(&credential.payload)
        .bind(self.counter)
        .bind(self.created_at)
        .bind(self.last_used_at)
        .bind(self.generation)
        .execute(executor)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }
}

/// A code set as bound to one statement: parallel arrays, one entry per distinct lookup (a
/// repeated lookup keeps its last code).
struct CodeRows {
    kind: String,
    lookups: Vec<String>,
    hashes: Vec<String>,
    expiries: Vec<Option<i64>>,
}

impl CodeRows {
    fn of(set: CodeSet) -> StoreResult<Self> {
        let mut rows = Self {
            kind: set.kind,
            lookups: Vec::with_capacity(set.codes.len()),
            hashes: Vec::with_capacity(set.codes.len()),
            expiries: Vec::with_capacity(set.codes.len()),
        };
        let mut positions: HashMap<String, usize> = HashMap::with_capacity(set.codes.len());
        for code in set.codes {
            let expires_at = to_db_opt(code.expires_at, "code expiry")?;
            if let Some(&position) = positions.get(&code.lookup) {
                rows.hashes[position] = code.hash;
                rows.expiries[position] = expires_at;
            } else {
                positions.insert(code.lookup.clone(), rows.lookups.len());
                rows.lookups.push(code.lookup);
                rows.hashes.push(code.hash);
                rows.expiries.push(expires_at);
            }
        }
        Ok(rows)
    }

    /// Replaces the user's codes of this kind inside `tx`.
    ///
    /// Writers of one (user, kind) take turns on an advisory lock held to the end of the
    /// transaction: under `READ COMMITTED` a concurrent writer's fresh rows are invisible to the
    /// `DELETE`, so without it two replacements could leave the union of both sets.
    async fn write(&self, tx: &mut Transaction<'static, Postgres>, user: &str) -> StoreResult<()> {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext('stepup_store.codes/' || $1), hashtext($2))",
        )
        .bind(user)
        .bind(&self.kind)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        // A new statement, so a new snapshot: it sees the codes of the writer we waited for.
        sqlx::query("DELETE FROM codes WHERE user_id = $1 AND kind = $2")
            .bind(user)
            .bind(&self.kind)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        if self.lookups.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO codes (user_id, kind, lookup, hash, expires_at) \
             SELECT $1, $2, code.lookup, code.hash, code.expires_at \
             FROM UNNEST($3::TEXT[], $4::TEXT[], $5::BIGINT[]) AS code (lookup, hash, expires_at) \
             ON CONFLICT (user_id, kind, lookup) DO UPDATE \
             SET hash = excluded.hash, expires_at = excluded.expires_at",
        )
        .bind(user)
        .bind(&self.kind)
        .bind(&self.lookups)
        .bind(&self.hashes)
        .bind(&self.expiries)
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

/// Makes the enrollments of one (kind, id) with [`Enrollment::Many`] take turns, to the end of
/// `tx`: under `READ COMMITTED` a row another transaction is inserting is invisible (and cannot be
/// locked), so without it two users could both find the id free.
async fn lock_credential_id(
    tx: &mut Transaction<'static, Postgres>,
    kind: &str,
    id: &str,
) -> StoreResult<()> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtext('stepup_store.credential_id/' || $1), \
         hashtext($2))",
    )
    .bind(kind)
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

impl PostgresStore {
    /// [`Enrollment::Many`]: inserts the credential unless any user holds its (kind, id), in one
    /// transaction holding an advisory lock on the (kind, id).
    async fn put_many_pending(&self, new: NewCredential<'_>) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        lock_credential_id(&mut tx, &new.credential.kind, &new.credential.id).await?;
        // A new statement, so a new snapshot: it sees the row of the holder we waited for.
        if !new.insert_unless_id_held(&mut tx).await? {
            tx.rollback().await.map_err(db_error)?;
            return Ok(false);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// [`Enrollment::OnePerUser`]: replaces the user's other credentials of the kind, refused
    /// while an active one of the new credential's generation, or any of a newer generation,
    /// exists, in one transaction.
    ///
    /// Two locks make it race-safe under `READ COMMITTED`: an advisory lock on (user, kind) makes
    /// concurrent one-per-user enrollments take turns (a row another one is inserting is invisible,
    /// so it could not be locked), and `FOR UPDATE` on the kind's rows waits for a concurrent
    /// activation (or disabling) and reads its outcome, so a credential activated meanwhile
    /// refuses the call.
    async fn put_only_pending(&self, new: NewCredential<'_>) -> StoreResult<bool> {
        let credential = new.credential;
        let mut tx = self.begin().await?;
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext('stepup_store.credentials/' || $1), \
             hashtext($2))",
        )
        .bind(&credential.user)
        .bind(&credential.kind)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let stored: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, generation FROM credentials WHERE user_id = $1 AND kind = $2 \
             FOR UPDATE",
        )
        .bind(&credential.user)
        .bind(&credential.kind)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        for (name, generation) in &stored {
            // An active credential of the same generation holds the place; anything of a newer
            // generation means this write comes from before a reset and must not replace it.
            let holds = rows::status_from_db(name)? == CredentialStatus::Active
                && *generation == new.generation;
            if holds || *generation > new.generation {
                tx.rollback().await.map_err(db_error)?;
                return Ok(false);
            }
        }
        // Every row of the kind seen is locked by this transaction, and none holds the place:
        // pending ones, and those of an older generation, active or not, are replaced.
        sqlx::query(
            "DELETE FROM credentials WHERE user_id = $1 AND kind = $2 \
             AND NOT (status = 'active' AND generation = $3)",
        )
        .bind(&credential.user)
        .bind(&credential.kind)
        .bind(new.generation)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if !new.insert(&mut *tx).await? {
            // The id was taken meanwhile under another rule: change nothing.
            tx.rollback().await.map_err(db_error)?;
            return Ok(false);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }
}

#[async_trait]
impl FactorStore for PostgresStore {
    async fn put_pending(&self, credential: Credential, rule: Enrollment) -> StoreResult<bool> {
        let new = NewCredential::of(&credential)?;
        match rule {
            Enrollment::Many => self.put_many_pending(new).await,
            Enrollment::OnePerUser => self.put_only_pending(new).await,
        }
    }

    async fn activate(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        codes: Option<CodeSet>,
    ) -> StoreResult<bool> {
        let counter = to_db(counter, "credential counter")?;
        let Some(codes) = codes.map(CodeRows::of).transpose()? else {
            let result = sqlx::query(ACTIVATE)
                .bind(key.user)
                .bind(key.kind)
                .bind(key.id)
                .bind(counter)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
            return Ok(result.rows_affected() == 1);
        };
        let mut tx = self.begin().await?;
        // Concurrent activations wait on the row's lock; the losers find it active and stop here.
        let activated = sqlx::query(ACTIVATE)
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
        codes.write(&mut tx, key.user).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn credential(&self, key: CredentialRef<'_>) -> StoreResult<Option<Credential>> {
        let row: Option<CredentialRow> = sqlx::query_as(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE user_id = $1 AND kind = $2 AND id = $3"
        ))
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(rows::credential).transpose()
    }

    async fn credentials(&self, user: &str) -> StoreResult<Vec<Credential>> {
        // Byte order for the ties, whatever the database's collation.
        let rows: Vec<CredentialRow> = sqlx::query_as(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE user_id = $1 \
             ORDER BY created_at, kind COLLATE \"C\", id COLLATE \"C\""
        ))
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(rows::credential).collect()
    }

    async fn credentials_of_kind(&self, kind: &str) -> StoreResult<Vec<Credential>> {
        let rows: Vec<CredentialRow> = sqlx::query_as(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE kind = $1 ORDER BY user_id COLLATE \"C\", id COLLATE \"C\""
        ))
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(rows::credential).collect()
    }

    async fn credential_by_id(&self, kind: &str, id: &str) -> StoreResult<Option<Credential>> {
        // Found through the (kind, id) index; the order picks the oldest if several users hold
        // it, ties in byte order whatever the database's collation.
        let row: Option<CredentialRow> = sqlx::query_as(concat!(
            "SELECT ",
            credential_columns!(),
            " FROM credentials WHERE kind = $1 AND id = $2 \
             ORDER BY created_at, user_id COLLATE \"C\" LIMIT 1"
        ))
        .bind(kind)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(rows::credential).transpose()
    }

    async fn advance_counter(
        &self,
        key: CredentialRef<'_>,
        counter: u64,
        payload: Option<&str>,
        used_at: u64,
    ) -> StoreResult<bool> {
        // Concurrent callers wait on the row's lock and re-check the condition against the
        // winner's counter: exactly one of those with the same counter changes the row.
        let result = sqlx::query(
            "UPDATE credentials SET counter = $4, payload = COALESCE($5, payload), \
             last_used_at = $6 \
             WHERE user_id = $1 AND kind = $2 AND id = $3 AND status = 'active' AND counter < $4",
        )
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .bind(to_db(counter, "credential counter")?)
        .bind(payload)
        .bind(to_db(used_at, "credential last use time")?)
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
        // Concurrent callers wait on the row's lock and re-check the payload against the
        // winner's: exactly one of those with the same `old` (and another `new`) changes it.
        let result = sqlx::query(
            "UPDATE credentials SET payload = $5, last_used_at = COALESCE($6, last_used_at) \
             WHERE user_id = $1 AND kind = $2 AND id = $3 AND payload = $4",
        )
        .bind(key.user)
        .bind(key.kind)
        .bind(key.id)
        .bind(old)
        .bind(new)
        .bind(to_db_opt(used_at, "credential last use time")?)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn disable_credential(&self, key: CredentialRef<'_>) -> StoreResult<bool> {
        // Concurrent callers wait on the row's lock and re-check the status: one changes it.
        let result = sqlx::query(
            "UPDATE credentials SET status = 'disabled' \
             WHERE user_id = $1 AND kind = $2 AND id = $3 AND status = 'active'",
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
        let result = sqlx::query(
            "UPDATE credentials SET label = $4 WHERE user_id = $1 AND kind = $2 AND id = $3",
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
            sqlx::query("DELETE FROM credentials WHERE user_id = $1 AND kind = $2 AND id = $3")
                .bind(key.user)
                .bind(key.kind)
                .bind(key.id)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(result.rows_affected() > 0)
    }

    async fn replace_codes(&self, user: &str, set: CodeSet) -> StoreResult<()> {
        let codes = CodeRows::of(set)?;
        let mut tx = self.begin().await?;
        codes.write(&mut tx, user).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn code_hash(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT hash FROM codes WHERE user_id = $1 AND kind = $2 AND lookup = $3 \
             AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(user)
        .bind(kind)
        .bind(lookup)
        .bind(to_db(self.now(), "current time")?)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)
    }

    async fn consume_code(&self, user: &str, kind: &str, lookup: &str) -> StoreResult<bool> {
        // Concurrent deletes of one row: one deletes it, the others find it gone.
        let result = sqlx::query(
            "DELETE FROM codes WHERE user_id = $1 AND kind = $2 AND lookup = $3 \
             AND (expires_at IS NULL OR expires_at > $4)",
        )
        .bind(user)
        .bind(kind)
        .bind(lookup)
        .bind(to_db(self.now(), "current time")?)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn count_codes(&self, user: &str, kind: &str) -> StoreResult<usize> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM codes WHERE user_id = $1 AND kind = $2 \
             AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(user)
        .bind(kind)
        .bind(to_db(self.now(), "current time")?)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        rows::count_from_db(count, "code count")
    }

    async fn record_failure(&self, user: &str, kind: &str) -> StoreResult<u64> {
        let streak: i64 = sqlx::query_scalar(
            "INSERT INTO factor_failures (user_id, kind, streak) VALUES ($1, $2, 1) \
             ON CONFLICT (user_id, kind) DO UPDATE SET streak = factor_failures.streak + 1 \
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
            "SELECT streak FROM factor_failures WHERE user_id = $1 AND kind = $2",
        )
        .bind(user)
        .bind(kind)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        streak.map_or(Ok(0), |streak| from_db(streak, "failure streak"))
    }

    async fn clear_failures(&self, user: &str, kind: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM factor_failures WHERE user_id = $1 AND kind = $2")
            .bind(user)
            .bind(kind)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn generation(&self, user: &str) -> StoreResult<Generation> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT generation, changed_at FROM generations WHERE user_id = $1")
                .bind(user)
                .fetch_optional(&self.pool)
                .await
                .map_err(db_error)?;
        row.map_or(Ok(Generation::default()), |(value, changed_at)| {
            rows::generation(value, changed_at)
        })
    }

    async fn advance_generation(&self, user: &str, at: u64) -> StoreResult<Generation> {
        let at = to_db(at, "generation change time")?;
        let mut tx = self.begin().await?;
        // Every move of this schema's generations takes its turn before taking its position, and
        // holds the lock until it is committed (and visible): positions are handed out, and
        // become visible, in order. Without it, a move could take position 5, another 6, and 6
        // commit first: a reader resuming after 6 would never see 5.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtext('stepup_store.generations/' || \
             current_schema()), 0)",
        )
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        // A generation at PostgreSQL's greatest integer matches no row to update: the call fails
        // as corrupt, changing nothing (the position it drew is skipped, as a rolled-back move's).
        let row: Option<(i64, i64)> = sqlx::query_as(
            "INSERT INTO generations (user_id, generation, changed_at, seq) \
             VALUES ($1, 1, $2, nextval('generation_seq')) \
             ON CONFLICT (user_id) DO UPDATE SET generation = generations.generation + 1, \
                 changed_at = excluded.changed_at, seq = excluded.seq \
             WHERE generations.generation < 9223372036854775807 \
             RETURNING generation, changed_at",
        )
        .bind(user)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some((value, changed_at)) = row else {
            tx.rollback().await.map_err(db_error)?;
            return Err(StoreError::Corrupt(
                "the stored generation cannot move any further".to_owned(),
            ));
        };
        tx.commit().await.map_err(db_error)?;
        rows::generation(value, changed_at)
    }

    async fn generation_changes(
        &self,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<GenerationChange>> {
        // Beyond PostgreSQL's integers there is no position.
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found: Vec<(i64, String, i64, i64)> = sqlx::query_as(
            "SELECT seq, user_id, generation, changed_at FROM generations \
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        found
            .into_iter()
            .map(|(seq, user, value, changed_at)| {
                Ok(GenerationChange {
                    seq: from_db(seq, "generation feed position")?,
                    user,
                    generation: rows::generation(value, changed_at)?,
                })
            })
            .collect()
    }

    async fn delete_user_factors(&self, user: &str) -> StoreResult<()> {
        // One transaction, so one atomic step; the generation stays. Credentials are locked before
        // codes, the order an activation takes them in, so the two cannot deadlock.
        let mut tx = self.begin().await?;
        for statement in [
            "DELETE FROM credentials WHERE user_id = $1",
            "DELETE FROM codes WHERE user_id = $1",
            "DELETE FROM factor_failures WHERE user_id = $1",
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
        // Answers, and is neither a standby nor read-only.
        let writable: bool = sqlx::query_scalar(
            "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off'",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        if writable {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "the database accepts no writes (a standby, or read-only)".to_owned(),
            ))
        }
    }
}
