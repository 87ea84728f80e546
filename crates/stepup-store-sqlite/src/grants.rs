//! [`GrantStore`] on the `oauth_clients`, `refresh_families` and `refresh_tokens` tables.
//!
//! A rotation is one `BEGIN IMMEDIATE` transaction: it holds the write lock from its first read,
//! so concurrent presentations of one token are served one after the other.

use stepup_store::{
    ClientRecord, GrantStore, RefreshFamily, Rotation, StoreError, StoreResult, async_trait,
};

use crate::SqliteStore;
use crate::rows::{db_error, from_db, to_db};

/// The columns of `refresh_families`, in the order of [`FamilyRow`] (a literal, for `concat!`).
macro_rules! family_columns {
    () => {
        "f.id, f.user_id, f.client_id, f.acr, f.amr, f.auth_time, f.generation, f.scope, \
         f.resource, f.token_hash, f.created_at, f.expires_at, f.revoked, f.dpop_jkt"
    };
}

type FamilyRow = (
    String,
    String,
    String,
    String,
    String,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    Option<String>,
);

fn family(row: FamilyRow) -> StoreResult<RefreshFamily> {
    let (
        id,
        user,
        client_id,
        acr,
        amr,
        auth_time,
        generation,
        scope,
        resource,
        token_hash,
        created_at,
        expires_at,
        revoked,
        dpop_jkt,
    ) = row;
    Ok(RefreshFamily {
        id,
        user,
        client_id,
        acr,
        amr: amr_from_db(&amr)?,
        auth_time: auth_time
            .map(|at| from_db(at, "family authentication time"))
            .transpose()?,
        generation: from_db(generation, "family generation")?,
        scope,
        resource,
        token_hash,
        created_at: from_db(created_at, "family creation time")?,
        expires_at: from_db(expires_at, "family expiry")?,
        revoked: revoked != 0,
        dpop_jkt,
    })
}

/// `amr` as stored: a JSON array of strings.
fn amr_to_db(amr: &[String]) -> String {
    serde_json::Value::from(amr.to_vec()).to_string()
}

fn amr_from_db(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text)
        .map_err(|_| StoreError::Corrupt("stored amr is not an array of strings".to_owned()))
}

type ClientRow = (String, String, i64, Option<String>, i64);

fn client(row: ClientRow) -> StoreResult<ClientRecord> {
    let (id, metadata, created_at, registered_by, revoked) = row;
    Ok(ClientRecord {
        id,
        metadata,
        created_at: from_db(created_at, "client registration time")?,
        registered_by,
        revoked: revoked != 0,
    })
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn insert_client(&self, client: ClientRecord) -> StoreResult<bool> {
        let result = sqlx::query(
            "INSERT INTO oauth_clients (id, metadata, created_at, registered_by, revoked) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&client.id)
        .bind(&client.metadata)
        .bind(to_db(client.created_at, "client registration time")?)
        .bind(&client.registered_by)
        .bind(i64::from(client.revoked))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn client(&self, id: &str) -> StoreResult<Option<ClientRecord>> {
        let row: Option<ClientRow> = sqlx::query_as(
            "SELECT id, metadata, created_at, registered_by, revoked FROM oauth_clients \
             WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(client).transpose()
    }

    async fn clients(&self, limit: usize) -> StoreResult<Vec<ClientRecord>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<ClientRow> = sqlx::query_as(
            "SELECT id, metadata, created_at, registered_by, revoked FROM oauth_clients \
             ORDER BY created_at DESC, id ASC LIMIT ?1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(client).collect()
    }

    async fn revoke_client(&self, id: &str) -> StoreResult<bool> {
        let result =
            sqlx::query("UPDATE oauth_clients SET revoked = 1 WHERE id = ?1 AND revoked = 0")
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db_error)?;
        Ok(result.rows_affected() == 1)
    }

    async fn insert_family(&self, family: RefreshFamily) -> StoreResult<()> {
        let mut tx = self.begin_immediate().await?;
        // A taken id or token hash fails on a constraint; dropping the transaction rolls back.
        sqlx::query(
            "INSERT INTO refresh_families (id, user_id, client_id, acr, amr, auth_time, \
             generation, scope, resource, token_hash, created_at, expires_at, revoked, dpop_jkt) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .bind(&family.id)
        .bind(&family.user)
        .bind(&family.client_id)
        .bind(&family.acr)
        .bind(amr_to_db(&family.amr))
        .bind(
            family
                .auth_time
                .map(|at| to_db(at, "family authentication time"))
                .transpose()?,
        )
        .bind(to_db(family.generation, "family generation")?)
        .bind(&family.scope)
        .bind(&family.resource)
        .bind(&family.token_hash)
        .bind(to_db(family.created_at, "family creation time")?)
        .bind(to_db(family.expires_at, "family expiry")?)
        .bind(i64::from(family.revoked))
        .bind(&family.dpop_jkt)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id) VALUES (?1, ?2)")
            .bind(&family.token_hash)
            .bind(&family.id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }

    async fn rotate_refresh_token(
        &self,
        presented: &str,
        replacement: &str,
    ) -> StoreResult<Rotation> {
        let now = self.now_db()?;
        let mut tx = self.begin_immediate().await?;
        let row: Option<FamilyRow> = sqlx::query_as(concat!(
            "SELECT ",
            family_columns!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.token_hash = ?1"
        ))
        .bind(presented)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(mut found) = row.map(family).transpose()? else {
            tx.rollback().await.map_err(db_error)?;
            return Ok(Rotation::Unknown);
        };
        if found.revoked || to_db(found.expires_at, "family expiry")? <= now {
            tx.rollback().await.map_err(db_error)?;
            return Ok(Rotation::Revoked);
        }
        if found.token_hash != presented {
            sqlx::query("UPDATE refresh_families SET revoked = 1 WHERE id = ?1")
                .bind(&found.id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
            tx.commit().await.map_err(db_error)?;
            found.revoked = true;
            return Ok(Rotation::Reused(found));
        }
        // A replacement already held fails on the unique constraints; the drop rolls back.
        sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id) VALUES (?1, ?2)")
            .bind(replacement)
            .bind(&found.id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("UPDATE refresh_families SET token_hash = ?2 WHERE id = ?1")
            .bind(&found.id)
            .bind(replacement)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        found.token_hash = replacement.to_owned();
        Ok(Rotation::Rotated(found))
    }

    async fn family_by_token(&self, token_hash: &str) -> StoreResult<Option<RefreshFamily>> {
        let row: Option<FamilyRow> = sqlx::query_as(concat!(
            "SELECT ",
            family_columns!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             WHERE t.token_hash = ?1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        row.map(family).transpose()
    }

    async fn revoke_family(&self, id: &str) -> StoreResult<bool> {
        let now = self.now_db()?;
        let expires_at: Option<i64> = sqlx::query_scalar(
            "UPDATE refresh_families SET revoked = 1 WHERE id = ?1 AND revoked = 0 \
             RETURNING expires_at",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(expires_at.is_some_and(|expires_at| expires_at > now))
    }

    async fn revoke_user_families(&self, user: &str) -> StoreResult<usize> {
        let now = self.now_db()?;
        let expiries: Vec<i64> = sqlx::query_scalar(
            "UPDATE refresh_families SET revoked = 1 WHERE user_id = ?1 AND revoked = 0 \
             RETURNING expires_at",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(expiries.into_iter().filter(|at| *at > now).count())
    }

    async fn families(&self, user: &str) -> StoreResult<Vec<RefreshFamily>> {
        let rows: Vec<FamilyRow> = sqlx::query_as(concat!(
            "SELECT ",
            family_columns!(),
            " FROM refresh_families f WHERE f.user_id = ?1 AND f.revoked = 0 \
             AND f.expires_at > ?2 ORDER BY f.created_at DESC, f.id ASC"
        ))
        .bind(user)
        .bind(self.now_db()?)
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.into_iter().map(family).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amr_round_trips_and_garbage_is_corrupt() {
        for amr in [
            vec![],
            vec!["pwd".to_owned()],
            vec!["pwd".to_owned(), "a \"quoted\" \\ one".to_owned()],
        ] {
            assert_eq!(amr_from_db(&amr_to_db(&amr)).ok(), Some(amr));
        }
        for garbage in ["", "[", "[1]", "[\"a\" \"b\"]", "{\"a\":1}"] {
            assert!(amr_from_db(garbage).is_err(), "{garbage}");
        }
    }
}
