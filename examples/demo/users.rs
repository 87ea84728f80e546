//! The demo's own users table, on SQLite or PostgreSQL: the application's business, not stepup's.

use sqlx::{PgPool, SqlitePool};

/// Where the demo keeps its users: the same database as stepup's store.
#[derive(Clone)]
pub(crate) enum UserTable {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS demo_users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
)";

impl UserTable {
    pub(crate) async fn create(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query(CREATE).execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query(CREATE).execute(pool).await.map(drop),
        }
    }

    /// `(id, password_hash)` of the user with this email.
    pub(crate) async fn find(&self, email: &str) -> Result<Option<(String, String)>, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query_as("SELECT id, password_hash FROM demo_users WHERE email = ?1")
                    .bind(email)
                    .fetch_optional(pool)
                    .await
            }
            Self::Postgres(pool) => {
                sqlx::query_as("SELECT id, password_hash FROM demo_users WHERE email = $1")
                    .bind(email)
                    .fetch_optional(pool)
                    .await
            }
        }
    }

    pub(crate) async fn email_of(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar("SELECT email FROM demo_users WHERE id = ?1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            }
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT email FROM demo_users WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
            }
        }
    }

    /// `false` when the email is taken.
    pub(crate) async fn insert(
        &self,
        id: &str,
        email: &str,
        password_hash: &str,
    ) -> Result<bool, sqlx::Error> {
        let affected = match self {
            Self::Sqlite(pool) => sqlx::query(
                "INSERT INTO demo_users (id, email, password_hash) VALUES (?1, ?2, ?3)
                 ON CONFLICT(email) DO NOTHING",
            )
            .bind(id)
            .bind(email)
            .bind(password_hash)
            .execute(pool)
            .await?
            .rows_affected(),
            Self::Postgres(pool) => sqlx::query(
                "INSERT INTO demo_users (id, email, password_hash) VALUES ($1, $2, $3)
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(id)
            .bind(email)
            .bind(password_hash)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(affected == 1)
    }

    /// `false` when there was no such user.
    pub(crate) async fn delete(&self, id: &str) -> Result<bool, sqlx::Error> {
        let affected = match self {
            Self::Sqlite(pool) => sqlx::query("DELETE FROM demo_users WHERE id = ?1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
            Self::Postgres(pool) => sqlx::query("DELETE FROM demo_users WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(affected == 1)
    }
}
