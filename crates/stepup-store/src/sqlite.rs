//! [`SqliteStore`]: both kinds of state in one SQLite database, through sqlx.

use std::fmt::Display;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use stepup_core::clock::{SharedClock, SystemClock};

use crate::memory::expiry_after;
use crate::{
    BackupCodeHash, EphemeralStore, FactorStore, StoreError, StoreResult, TotpRecord, async_trait,
};

/// How long a connection waits for another one's write lock before the call fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The table recording which of this crate's migrations ran; separate from sqlx's default
/// `_sqlx_migrations` so an application can run its own sqlx migrations on the same database.
const MIGRATIONS_TABLE: &str = "_stepup_store_migrations";

/// Expired ephemeral rows are purged on every this many-th ephemeral write.
const PURGE_EVERY: u64 = 16;

/// At most this many expired rows are purged per table at a time.
const PURGE_LIMIT: i64 = 256;

/// A store in a SQLite database: durable across restarts, shared by every process using the file.
///
/// Opening applies this crate's embedded migrations (tracked in their own table,
/// `_stepup_store_migrations`), so an empty or missing file becomes a ready store. The database
/// runs in WAL mode with foreign keys on and a 5-second busy timeout.
///
/// Every check-and-update of the traits is a single SQL statement (or one `BEGIN IMMEDIATE`
/// transaction), so concurrent callers, in this process or another, cannot both win. Expiry of the
/// ephemeral state is judged against the injected clock, passed to each statement; expired rows
/// are purged now and then by later writes.
///
/// Clones share the same connection pool.
///
/// ```no_run
/// # async fn example() -> stepup_store::StoreResult<()> {
/// use stepup_store::{FactorStore, SqliteStore};
///
/// let store = SqliteStore::open("sqlite://stepup.db").await?;
/// store.ping().await?;
/// # Ok(())
/// # }
/// ```
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
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with_clock(url, Arc::new(SystemClock)).await
    }

    /// Like [`open`](Self::open), judging expiry by `clock`.
    pub async fn open_with_clock(url: &str, clock: SharedClock) -> StoreResult<Self> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url).map_err(unavailable)?
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
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(unavailable)?;

        let mut migrator = sqlx::migrate!("./migrations");
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await.map_err(unavailable)?;

        Ok(Self {
            pool,
            clock,
            writes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Judges expiry by `clock` instead (tests pass a
    /// [`ManualClock`](stepup_core::clock::ManualClock)).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The connection pool, for an application keeping its own tables in the same database.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// Now and then, deletes a bounded number of expired ephemeral rows and counters. Failing to
    /// purge changes no answer, so a failure is only logged.
    async fn maybe_purge(&self, now: i64) {
        if !self
            .writes
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PURGE_EVERY)
        {
            return;
        }
        let values = sqlx::query(
            "DELETE FROM ephemeral WHERE rowid IN \
             (SELECT rowid FROM ephemeral WHERE expires_at <= ?1 LIMIT ?2)",
        )
        .bind(now)
        .bind(PURGE_LIMIT)
        .execute(&self.pool)
        .await;
        let counters = sqlx::query(
            "DELETE FROM counters WHERE rowid IN \
             (SELECT rowid FROM counters WHERE expires_at <= ?1 LIMIT ?2)",
        )
        .bind(now)
        .bind(PURGE_LIMIT)
        .execute(&self.pool)
        .await;
        if let Err(error) = values.and(counters) {
            tracing::warn!(%error, "purging expired ephemeral state failed");
        }
    }
}

/// A database failure, described without any bound value.
fn unavailable(error: impl Display) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// A `u64` as stored (SQLite integers are signed 64-bit).
fn to_db(value: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{what} is out of range")))
}

/// A stored integer read back as `u64`.
fn from_db(value: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("stored {what} is negative")))
}

/// A row of `totp_enrollments`, without the user.
type TotpRow = (String, String, i64, i64, i64, Option<i64>, i64);

fn totp_record(row: TotpRow) -> StoreResult<TotpRecord> {
    let (sealed_secret, algorithm, digits, period, active, last_used_step, created_at) = row;
    Ok(TotpRecord {
        sealed_secret,
        algorithm,
        digits: u8::try_from(digits)
            .map_err(|_| StoreError::Corrupt("stored TOTP digits are out of range".to_owned()))?,
        period: from_db(period, "TOTP period")?,
        active: match active {
            0 => false,
            1 => true,
            _ => {
                return Err(StoreError::Corrupt(
                    "stored TOTP state is neither pending nor active".to_owned(),
                ));
            }
        },
        last_used_step: last_used_step
            .map(|step| from_db(step, "TOTP step"))
            .transpose()?,
        created_at: from_db(created_at, "TOTP creation time")?,
    })
}

#[async_trait]
impl FactorStore for SqliteStore {
    async fn totp(&self, user: &str) -> StoreResult<Option<TotpRecord>> {
        let row: Option<TotpRow> = sqlx::query_as(
            "SELECT sealed_secret, algorithm, digits, period, active, last_used_step, created_at \
             FROM totp_enrollments WHERE user_id = ?1",
        )
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(totp_record).transpose()
    }

    async fn put_pending_totp(&self, user: &str, record: TotpRecord) -> StoreResult<bool> {
        let last_used_step = record
            .last_used_step
            .map(|step| to_db(step, "TOTP step"))
            .transpose()?;
        // Inserts, or replaces a pending row; an active row is left alone (no row affected).
        let result = sqlx::query(
            "INSERT INTO totp_enrollments \
             (user_id, sealed_secret, algorithm, digits, period, active, last_used_step, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7) \
             ON CONFLICT (user_id) DO UPDATE SET \
             sealed_secret = excluded.sealed_secret, algorithm = excluded.algorithm, \
             digits = excluded.digits, period = excluded.period, active = 0, \
             last_used_step = excluded.last_used_step, created_at = excluded.created_at \
             WHERE totp_enrollments.active = 0",
        )
        .bind(user)
        .bind(&record.sealed_secret)
        .bind(&record.algorithm)
        .bind(i64::from(record.digits))
        .bind(to_db(record.period, "TOTP period")?)
        .bind(last_used_step)
        .bind(to_db(record.created_at, "TOTP creation time")?)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(result.rows_affected() == 1)
    }

    async fn activate_totp(
        &self,
        user: &str,
        step: u64,
        backup_codes: Vec<BackupCodeHash>,
    ) -> StoreResult<bool> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let activated = sqlx::query(
            "UPDATE totp_enrollments SET active = 1, last_used_step = ?2 \
             WHERE user_id = ?1 AND active = 0",
        )
        .bind(user)
        .bind(to_db(step, "TOTP step")?)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        if activated.rows_affected() != 1 {
            tx.rollback().await.map_err(unavailable)?;
            return Ok(false);
        }
        write_backup_codes(&mut tx, user, &backup_codes).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn accept_totp_step(&self, user: &str, step: u64) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE totp_enrollments SET last_used_step = ?2 \
             WHERE user_id = ?1 AND active = 1 \
             AND (last_used_step IS NULL OR last_used_step < ?2)",
        )
        .bind(user)
        .bind(to_db(step, "TOTP step")?)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(result.rows_affected() == 1)
    }

    async fn delete_totp(&self, user: &str) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM totp_enrollments WHERE user_id = ?1")
            .bind(user)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected() > 0)
    }

    async fn totp_secrets(&self) -> StoreResult<Vec<(String, String)>> {
        sqlx::query_as("SELECT user_id, sealed_secret FROM totp_enrollments ORDER BY user_id")
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn replace_totp_secret(&self, user: &str, old: &str, new: &str) -> StoreResult<bool> {
        let result = sqlx::query(
            "UPDATE totp_enrollments SET sealed_secret = ?3 \
             WHERE user_id = ?1 AND sealed_secret = ?2",
        )
        .bind(user)
        .bind(old)
        .bind(new)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(result.rows_affected() == 1)
    }

    async fn replace_backup_codes(
        &self,
        user: &str,
        codes: Vec<BackupCodeHash>,
    ) -> StoreResult<()> {
        // IMMEDIATE takes the write lock up front (waiting on the busy timeout) rather than
        // failing when a read transaction has to be upgraded.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        write_backup_codes(&mut tx, user, &codes).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn backup_code_hash(&self, user: &str, lookup: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT hash FROM backup_codes WHERE user_id = ?1 AND lookup = ?2")
            .bind(user)
            .bind(lookup)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn consume_backup_code(&self, user: &str, lookup: &str) -> StoreResult<bool> {
        let result = sqlx::query("DELETE FROM backup_codes WHERE user_id = ?1 AND lookup = ?2")
            .bind(user)
            .bind(lookup)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(result.rows_affected() == 1)
    }

    async fn remaining_backup_codes(&self, user: &str) -> StoreResult<usize> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM backup_codes WHERE user_id = ?1")
            .bind(user)
            .fetch_one(&self.pool)
            .await
            .map_err(unavailable)?;
        usize::try_from(count)
            .map_err(|_| StoreError::Corrupt("backup code count is out of range".to_owned()))
    }

    async fn delete_factors(&self, user: &str) -> StoreResult<()> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM totp_enrollments WHERE user_id = ?1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM backup_codes WHERE user_id = ?1")
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl EphemeralStore for SqliteStore {
    async fn insert_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<bool> {
        let now = self.now();
        let expires_at = to_db(expiry_after(now, ttl), "expiry")?;
        let now = to_db(now, "current time")?;
        // Inserts, or replaces an expired row; a live row is left alone (no row affected).
        let result = sqlx::query(
            "INSERT INTO ephemeral (key, value, expires_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at \
             WHERE ephemeral.expires_at <= ?4",
        )
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        self.maybe_purge(now).await;
        Ok(result.rows_affected() == 1)
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = to_db(self.now(), "current time")?;
        sqlx::query_scalar("SELECT value FROM ephemeral WHERE key = ?1 AND expires_at > ?2")
            .bind(key)
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let now = to_db(self.now(), "current time")?;
        sqlx::query_scalar(
            "DELETE FROM ephemeral WHERE key = ?1 AND expires_at > ?2 RETURNING value",
        )
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }

    async fn increment(&self, key: &str, ttl: Duration) -> StoreResult<u64> {
        let now = self.now();
        let expires_at = to_db(expiry_after(now, ttl), "expiry")?;
        let now = to_db(now, "current time")?;
        // SET expressions read the row as it was before the update: an expired counter restarts
        // at 1 with a new window, a live one counts on within its window.
        let count: i64 = sqlx::query_scalar(
            "INSERT INTO counters (key, count, expires_at) VALUES (?1, 1, ?2) \
             ON CONFLICT (key) DO UPDATE SET \
             count = CASE WHEN counters.expires_at <= ?3 THEN 1 ELSE counters.count + 1 END, \
             expires_at = CASE WHEN counters.expires_at <= ?3 \
                 THEN excluded.expires_at ELSE counters.expires_at END \
             RETURNING count",
        )
        .bind(key)
        .bind(expires_at)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        self.maybe_purge(now).await;
        from_db(count, "counter")
    }

    async fn remove(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM ephemeral WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        sqlx::query("DELETE FROM counters WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Replaces the user's backup codes inside an open transaction.
async fn write_backup_codes(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user: &str,
    codes: &[BackupCodeHash],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM backup_codes WHERE user_id = ?1")
        .bind(user)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    for code in codes {
        sqlx::query(
            "INSERT INTO backup_codes (user_id, lookup, hash) VALUES (?1, ?2, ?3) \
             ON CONFLICT (user_id, lookup) DO UPDATE SET hash = excluded.hash",
        )
        .bind(user)
        .bind(&code.lookup)
        .bind(&code.hash)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stepup_core::clock::ManualClock;

    #[test]
    fn integers_out_of_range_are_errors_not_panics() {
        assert!(matches!(
            to_db(u64::MAX, "step"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(from_db(-1, "step"), Err(StoreError::Corrupt(_))));
        assert_eq!(to_db(7, "step").ok(), Some(7));
        assert_eq!(from_db(7, "step").ok(), Some(7));
    }

    #[tokio::test]
    async fn corrupt_rows_and_huge_steps_are_reported() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let record = TotpRecord {
            sealed_secret: "s".to_owned(),
            algorithm: "SHA1".to_owned(),
            digits: 6,
            period: 30,
            active: false,
            last_used_step: None,
            created_at: 1,
        };
        assert!(store.put_pending_totp("u", record).await.unwrap());
        assert!(matches!(
            store.activate_totp("u", u64::MAX, Vec::new()).await,
            Err(StoreError::Corrupt(_))
        ));
        sqlx::query("UPDATE totp_enrollments SET digits = 300 WHERE user_id = 'u'")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(matches!(store.totp("u").await, Err(StoreError::Corrupt(_))));
    }

    #[cfg(feature = "conformance")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn in_memory_database_conforms() {
        let clock = ManualClock::at_unix(1_800_000_000);
        let store = SqliteStore::open_with_clock("sqlite::memory:", Arc::new(clock.clone()))
            .await
            .unwrap();
        crate::conformance::run(Arc::new(store), clock).await;
    }
}
