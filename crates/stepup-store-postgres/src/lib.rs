//! [`PostgresStore`]: every kind of stepup state (factors, ephemeral state, remembered devices, the
//! audit trail) in one PostgreSQL database, shared by every instance of the application, through
//! sqlx.
//!
//! ```no_run
//! # async fn example() -> stepup_store::StoreResult<()> {
//! use stepup_store::FactorStore;
//! use stepup_store_postgres::PostgresStore;
//!
//! // Applies this crate's migrations (tracked in `_stepup_store_migrations`), then serves.
//! let store = PostgresStore::open("postgres://stepup@db.internal/app").await?;
//! store.ping().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Atomicity
//!
//! Every single-use or check-and-update call of the traits is ONE conditional statement
//! (`UPDATE … WHERE … RETURNING`, `DELETE … RETURNING`,
//! `INSERT … ON CONFLICT … DO UPDATE … WHERE`), never a read followed by a write, so concurrent
//! callers on any number of instances cannot both win, and a loser gets `false` (or `None`), never
//! an error. The few calls that change several rows together or must see rows another transaction
//! is inserting (activation with its codes, replacing a code set, an enrollment, remembering a
//! device, deleting a user's factors) are one transaction, serialised where needed by a row lock
//! or a transaction-scoped advisory lock (`pg_advisory_xact_lock` on a hash of the user and kind,
//! or of the kind and credential id), correct under `READ COMMITTED` (PostgreSQL's default; this
//! crate's transactions and pools ask for it explicitly). Moves of the users' generations take
//! turns on one advisory lock per schema, held until each commits, so they take their feed
//! positions, and become visible, in order: a reader resuming after the last position it saw
//! misses none.
//!
//! # Time
//!
//! Expiry is judged against the store's injected [`Clock`](stepup_core::clock::Clock), whose
//! seconds are bound to each statement; the database's own `now()` is never used, so the
//! application's instances and tests agree on what is live. Expired ephemeral rows and counters are
//! purged a bounded number at a time by later writes.
//!
//! # Errors
//!
//! A failure of the database is [`StoreError::Unavailable`], a row that cannot be read back (a
//! negative time, an unknown status) is [`StoreError::Corrupt`]; neither ever includes a bound
//! value (a user id, a code digest, a payload).

use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use stepup_core::clock::{SharedClock, SystemClock};
use stepup_store::{StoreError, StoreResult};

mod audit;
mod devices;
mod ephemeral;
mod factors;
mod grants;
mod rows;
mod schema;

/// How long a call waits for a free connection (or for the server to accept one) before it fails
/// as unavailable, in pools this crate builds.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many connections in pools this crate builds.
const MAX_CONNECTIONS: u32 = 10;

/// A store in a PostgreSQL database (factors, remembered devices, the audit trail and the
/// ephemeral state): durable, and shared by every instance of the application using the database.
///
/// Opening applies this crate's embedded migrations, tracked in their own table
/// (`_stepup_store_migrations`) so the application's own sqlx migrations (in `_sqlx_migrations`)
/// can share the database. The tables (`credentials`, `codes`, `factor_failures`, `generations`,
/// `ephemeral`, `counters`, `devices`, `audit_events`, `oauth_clients`, `refresh_families`,
/// `refresh_tokens`) and the sequence `generation_seq` are
/// created in the first schema of the connections' `search_path` (`public` by default);
/// [`open_in_schema`](Self::open_in_schema) keeps them in a schema of their own.
///
/// Migration 5 binds refresh-token families to a DPoP key (`refresh_families.dpop_jkt`).
///
/// Migration 4 added the authorization server's state (`oauth_clients`, `refresh_families`,
/// `refresh_tokens`).
///
/// Migration 3 replaced the token marks of earlier versions with each user's
/// [generation](stepup_store::Generation): a mark `revoked_before = R` became generation 1 changed
/// at `R - 1`, which voids the same tokens; credentials and devices stored before it are of
/// generation 0.
///
/// Clones share the same connection pool. See the [crate documentation](crate) for the atomicity
/// and expiry guarantees.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    clock: SharedClock,
    /// Ephemeral writes so far, shared by clones: every few of them purge expired rows.
    writes: Arc<AtomicU64>,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, with any
    /// libpq-style parameters such as `?sslmode=require`) and applies the migrations; expiry is
    /// judged by the system clock.
    ///
    /// The pool holds up to 10 connections, whose default isolation is `READ COMMITTED` whatever
    /// the server's; a call waits at most 5 seconds for a connection. Build the pool yourself and
    /// use [`from_pool`](Self::from_pool) for other settings.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with_clock(url, Arc::new(SystemClock)).await
    }

    /// Like [`open`](Self::open), judging expiry by `clock`.
    pub async fn open_with_clock(url: &str, clock: SharedClock) -> StoreResult<Self> {
        let pool = pool_options()
            .connect_with(connect_options(url)?)
            .await
            .map_err(db_error)?;
        Self::from_pool(pool, clock).await
    }

    /// Like [`open_with_clock`](Self::open_with_clock), keeping every table of the store in the
    /// schema `schema` of the database, which is created if missing.
    ///
    /// The pool's connections have `search_path` set to `schema` alone, so two stores opened with
    /// different schemas on the same database never see each other's data (tests run side by side
    /// this way), and none of the store's tables can clash with the application's. `schema` is an
    /// identifier used verbatim (quoted: case and any character are kept; PostgreSQL truncates it
    /// to 63 bytes).
    ///
    /// ```no_run
    /// # async fn example() -> stepup_store::StoreResult<()> {
    /// use std::sync::Arc;
    /// use stepup_core::clock::SystemClock;
    /// use stepup_store_postgres::PostgresStore;
    ///
    /// let url = "postgres://stepup@db.internal/app";
    /// let store = PostgresStore::open_in_schema(url, "stepup", Arc::new(SystemClock)).await?;
    /// // A second instance sharing the same state:
    /// let other = PostgresStore::open_in_schema(url, "stepup", Arc::new(SystemClock)).await?;
    /// # drop((store, other));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open_in_schema(url: &str, schema: &str, clock: SharedClock) -> StoreResult<Self> {
        let options = connect_options(url)?.options([("search_path", schema::quote(schema))]);
        let pool = pool_options()
            .connect_with(options)
            .await
            .map_err(db_error)?;
        schema::create(&pool, schema).await?;
        Self::from_pool(pool, clock).await
    }

    /// A store over an existing pool (the application's own, or one built with other settings),
    /// judging expiry by `clock`. Applies the migrations.
    ///
    /// The statements are designed for `READ COMMITTED`, PostgreSQL's default isolation; this
    /// crate's transactions ask for it explicitly, and its single statements are correct under any
    /// level, though under `SERIALIZABLE` they may fail where they would otherwise have lost.
    pub async fn from_pool(pool: PgPool, clock: SharedClock) -> StoreResult<Self> {
        schema::migrate(&pool).await?;
        Ok(Self {
            pool,
            clock,
            writes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Judges expiry by `clock` instead (tests pass a
    /// [`ManualClock`](stepup_core::clock::ManualClock)). The data and the pool are kept.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The connection pool, for an application keeping its own tables in the same database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The injected clock's current second.
    fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// Starts a `READ COMMITTED` transaction, whatever the server's default isolation: every
    /// transaction of this crate is designed for it.
    async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(db_error)
    }
}

/// The connect options for `url`, with `READ COMMITTED` as the sessions' default isolation (the
/// statements are designed for it; under `SERIALIZABLE` a loser could fail instead of losing).
fn connect_options(url: &str) -> StoreResult<PgConnectOptions> {
    // The parse error never repeats the URL (which may hold a password).
    let options = PgConnectOptions::from_str(url).map_err(|error| {
        StoreError::Unavailable(format!("the database URL is not valid: {error}"))
    })?;
    Ok(options.options([("default_transaction_isolation", "read committed")]))
}

/// The settings of pools this crate builds.
fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

/// A database failure, described without any bound value: a row that cannot be decoded is
/// corrupt, anything else (unreachable server, refused statement, timeout) unavailable.
///
/// PostgreSQL reports the offending values in an error's detail, never in its message; only the
/// message and the SQLSTATE code are kept.
fn db_error(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::ColumnDecode { index, source } => {
            StoreError::Corrupt(format!("stored column {index} cannot be read: {source}"))
        }
        sqlx::Error::Decode(source) => {
            StoreError::Corrupt(format!("a stored value cannot be read: {source}"))
        }
        sqlx::Error::Database(error) => StoreError::Unavailable(match error.code() {
            Some(code) => format!(
                "the database refused the operation ({code}): {}",
                error.message()
            ),
            None => format!("the database refused the operation: {}", error.message()),
        }),
        other => unavailable(other),
    }
}

/// Any other failure, by its description.
fn unavailable(error: impl Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The constructors can run in spawned tasks.
    #[allow(dead_code)]
    fn opening_futures_are_send(pool: PgPool, clock: SharedClock) {
        assert_send(&PostgresStore::open("postgres://"));
        assert_send(&PostgresStore::open_with_clock(
            "postgres://",
            Arc::clone(&clock),
        ));
        assert_send(&PostgresStore::open_in_schema(
            "postgres://",
            "s",
            Arc::clone(&clock),
        ));
        assert_send(&PostgresStore::from_pool(pool, clock));
    }
}
