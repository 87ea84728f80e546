//! The store's schema: the embedded migrations and the private schema of
//! [`PostgresStore::open_in_schema`](crate::PostgresStore::open_in_schema).

use sqlx::migrate::MigrateError;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use stepup_store::{StoreError, StoreResult};

use crate::db_error;

/// The table recording which of this crate's migrations ran; separate from sqlx's default
/// `_sqlx_migrations` so an application can run its own sqlx migrations on the same database.
const MIGRATIONS_TABLE: &str = "_stepup_store_migrations";

/// SQLSTATE of a unique violation: two `CREATE SCHEMA IF NOT EXISTS` racing may both pass the
/// existence check, and the loser fails on the catalog's unique index.
const UNIQUE_VIOLATION: &str = "23505";

/// SQLSTATE of `duplicate_schema`.
const DUPLICATE_SCHEMA: &str = "42P06";

/// Applies the migrations not yet applied (a no-op when all are). Concurrent callers wait for
/// each other on sqlx's migration lock.
pub(crate) async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let mut connection = pool.acquire().await.map_err(db_error)?;
    let result = run_migrations(&mut connection).await;
    if result.is_err() {
        // A failed run can leave sqlx's session-level migration lock held: closing the connection
        // releases it, where returning it to the pool would block every later migration.
        connection.close_on_drop();
    }
    result
}

/// The migrator's run on one connection.
///
/// `Migrator::run` takes any `Acquire`, and its future then fails rustc's "`Acquire` is not
/// general enough" check wherever it must be `Send` (a constructor called in a spawned task).
/// `run_direct` is what `run` calls once it has the connection; sqlx keeps it public (hidden from
/// its docs) for exactly this.
async fn run_migrations(connection: &mut PgConnection) -> StoreResult<()> {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
    migrator
        .run_direct(None, connection, false)
        .await
        .map_err(migration_error)
}

/// A failed migration, described without any bound value.
fn migration_error(error: MigrateError) -> StoreError {
    match error {
        MigrateError::Execute(error) | MigrateError::ExecuteMigration(error, _) => {
            match db_error(error) {
                StoreError::Corrupt(message) | StoreError::Unavailable(message) => {
                    StoreError::Unavailable(format!("applying the migrations failed: {message}"))
                }
                other => other,
            }
        }
        other => StoreError::Unavailable(format!("applying the migrations failed: {other}")),
    }
}

/// Creates `schema` if it does not exist; a concurrent creation is not an error.
pub(crate) async fn create(pool: &PgPool, schema: &str) -> StoreResult<()> {
    let statement = format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema));
    // The name is quoted as an identifier (embedded quotes doubled): it cannot end the identifier.
    match sqlx::query(AssertSqlSafe(statement)).execute(pool).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(error))
            if error
                .code()
                .is_some_and(|code| code == UNIQUE_VIOLATION || code == DUPLICATE_SCHEMA) =>
        {
            Ok(())
        }
        Err(error) => Err(db_error(error)),
    }
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(super::quote("stepup"), "\"stepup\"");
        assert_eq!(super::quote("a\"b c"), "\"a\"\"b c\"");
    }
}
