//! The SQLite backend of stepup: [`SqliteStore`] keeps every kind of state (factors, ephemeral
//! values and counters, remembered devices, the audit trail, OAuth clients and refresh-token
//! families) in one embedded database, through
//! sqlx.
//!
//! ```no_run
//! # async fn example() -> stepup_store::StoreResult<()> {
//! use stepup_store::{EphemeralStore, FactorStore};
//! use stepup_store_sqlite::SqliteStore;
//!
//! // Creates the file if missing and brings its schema up to date.
//! let store = SqliteStore::open("sqlite://stepup.db").await?;
//! store.ping().await?;
//! let inserted = store
//!     .insert_if_absent("mfa_token:abc", b"alice", std::time::Duration::from_secs(300))
//!     .await?;
//! assert!(inserted);
//! # Ok(())
//! # }
//! ```
//!
//! # Schema
//!
//! Opening applies the crate's embedded migrations, tracked in their own table,
//! `_stepup_store_migrations` (not sqlx's default `_sqlx_migrations`, so an application can run
//! its own sqlx migrations on the same database). Version 3 turned the TOTP-specific tables of
//! earlier versions into the factor-generic ones, moving their rows: a TOTP enrollment became the
//! credential `(user, "totp", "totp")` whose payload is the JSON object
//! `{"secret", "algorithm", "digits", "period"}`, and a backup code a code of kind
//! `backup_code` that never expires. Version 4 indexes credentials by (kind, id), for
//! [`credential_by_id`](stepup_store::FactorStore::credential_by_id) and the cross-user check of
//! [`Enrollment::Many`](stepup_store::Enrollment::Many). Version 5 replaces the token marks with
//! each user's [generation](stepup_store::Generation) (a mark `revoked_before = R` became
//! generation 1 changed at `R - 1`, which voids the same tokens), lets a credential be disabled,
//! and records the generation of each credential and remembered device (0 for those stored
//! before). Version 6 adds the authorization server's state: dynamically registered OAuth clients
//! and refresh-token families, with the hash of every token a family held. Version 7 binds a
//! family to a DPoP key (`refresh_families.dpop_jkt`, RFC 9449 §5).
//!
//! # Atomicity and time
//!
//! Every single-use or check-and-update call of the traits is ONE conditional statement
//! (`UPDATE … WHERE … RETURNING`, `DELETE … RETURNING`, `INSERT … ON CONFLICT`,
//! `INSERT … SELECT … WHERE NOT EXISTS`) or one `BEGIN IMMEDIATE` transaction, so concurrent
//! callers, in this process or another sharing the file, cannot both win. Expiry is judged against the injected clock, whose current second is
//! bound to each statement; SQLite's own clock is never read. Expired ephemeral values, counters
//! and codes are purged now and then by later writes.
//!
//! Errors never carry a bound value: a code, a token hash or a payload cannot leak into a log
//! through a [`StoreError`].

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Sqlite, SqlitePool, Transaction};
use stepup_core::clock::{SharedClock, SystemClock};
use stepup_store::{StoreError, StoreResult};

use crate::rows::{db_error, to_db};

mod audit;
mod devices;
mod ephemeral;
mod factors;
mod grants;
mod rows;

/// How long a connection waits for another one's write lock before the call fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The table recording which of this crate's migrations ran; separate from sqlx's default
/// `_sqlx_migrations` so an application can run its own sqlx migrations on the same database.
const MIGRATIONS_TABLE: &str = "_stepup_store_migrations";

/// Expired rows are purged on every this many-th ephemeral write.
const PURGE_EVERY: u64 = 16;

/// At most this many expired rows are purged per table at a time.
const PURGE_LIMIT: i64 = 256;

/// A store in a SQLite database (factors, remembered devices, the audit trail and the ephemeral
/// state): durable across restarts, shared by every process using the file.
///
/// It implements every trait of `stepup_store` ([`FactorStore`](stepup_store::FactorStore),
/// [`EphemeralStore`](stepup_store::EphemeralStore), [`DeviceStore`](stepup_store::DeviceStore),
/// [`AuditStore`](stepup_store::AuditStore), [`GrantStore`](stepup_store::GrantStore)), so it is a
/// [`Store`](stepup_store::Store).
///
/// Opening applies this crate's embedded migrations, so an empty or missing file becomes a ready
/// store. The database runs in WAL mode with foreign keys on and a 5-second busy timeout: a call
/// waiting longer than that for another writer fails with [`StoreError::Unavailable`].
///
/// Clones share the same connection pool.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    clock: SharedClock,
    writes: Arc<AtomicU64>,
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url` and applies the migrations; expiry is
    /// judged by the system clock.
    ///
    /// `url` is `sqlite://path`, `sqlite:path` (both may carry SQLite URI parameters such as
    /// `?mode=ro`) or a plain file path. `sqlite::memory:` opens a private in-memory database
    /// served by a single connection.
    ///
    /// Fails with [`StoreError::Unavailable`] if the database cannot be opened or a migration
    /// fails (a failed migration changes nothing).
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with_clock(url, Arc::new(SystemClock)).await
    }

    /// Like [`open`](Self::open), judging expiry by `clock`.
    pub async fn open_with_clock(url: &str, clock: SharedClock) -> StoreResult<Self> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(db_error)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);

        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            // An in-memory database lives as long as a connection to it; a shared-cache one also
            // answers concurrent writers with `SQLITE_LOCKED` instead of waiting. One connection,
            // kept forever, avoids both.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new()
        };
        let pool = pool_options.connect_with(options).await.map_err(db_error)?;

        let mut migrator = sqlx::migrate!("./migrations");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator
            .run(&pool)
            .await
            .map_err(|error| StoreError::Unavailable(format!("migrating the schema: {error}")))?;

        Ok(Self {
            pool,
            clock,
            writes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Judges expiry by `clock` instead (tests pass a
    /// [`ManualClock`](stepup_core::clock::ManualClock)). The data is kept: clones, with either
    /// clock, share the database.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The connection pool, for an application keeping its own tables in the same database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The clock's current second.
    fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// The clock's current second, as bound to statements.
    fn now_db(&self) -> StoreResult<i64> {
        to_db(self.now(), "current time")
    }

    /// A transaction holding the write lock from its first statement: it waits (on the busy
    /// timeout) for other writers up front instead of failing when a read has to be upgraded.
    async fn begin_immediate(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }

    /// Now and then, deletes a bounded number of expired ephemeral values, counters and codes.
    /// Failing to purge changes no answer (expired rows are never returned), so a failure is only
    /// logged.
    async fn maybe_purge(&self, now: i64) {
        if !self
            .writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY)
        {
            return;
        }
        for statement in [
            "DELETE FROM ephemeral WHERE rowid IN \
             (SELECT rowid FROM ephemeral WHERE expires_at <= ?1 LIMIT ?2)",
            "DELETE FROM counters WHERE rowid IN \
             (SELECT rowid FROM counters WHERE expires_at <= ?1 LIMIT ?2)",
            "DELETE FROM codes WHERE rowid IN \
             (SELECT rowid FROM codes WHERE expires_at <= ?1 LIMIT ?2)",
        ] {
            let purged = sqlx::query(statement)
                .bind(now)
                .bind(PURGE_LIMIT)
                .execute(&self.pool)
                .await;
            if let Err(error) = purged {
                tracing::warn!(%error, "purging expired state failed");
            }
        }
    }
}
