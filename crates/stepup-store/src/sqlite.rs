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
    AuditRecord, AuditStore, BackupCodeHash, DeviceRecord, DeviceStore, EphemeralStore,
    FactorStore, StoreError, StoreResult, TotpRecord, async_trait,
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

/// A store in a SQLite database (factors, remembered devices, the audit trail and the ephemeral
/// state): durable across restarts, shared by every process using the file.
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

/// A row of `devices`, in the order of [`DeviceRecord`]'s fields.
type DeviceRow = (
    String,
    String,
    String,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

fn device_record(row: DeviceRow) -> StoreResult<DeviceRecord> {
    let (id, user, token_hash, created_at, last_used_at, expires_at, mfa_at, address, user_agent) =
        row;
    Ok(DeviceRecord {
        id,
        user,
        token_hash,
        created_at: from_db(created_at, "device creation time")?,
        last_used_at: from_db(last_used_at, "device last use time")?,
        expires_at: from_db(expires_at, "device expiry")?,
        mfa_at: from_db(mfa_at, "device second factor time")?,
        address,
        user_agent,
    })
}

#[async_trait]
impl DeviceStore for SqliteStore {
    async fn insert_device(&self, device: DeviceRecord) -> StoreResult<()> {
        let now = to_db(self.now(), "current time")?;
        let created_at = to_db(device.created_at, "device creation time")?;
        let last_used_at = to_db(device.last_used_at, "device last use time")?;
        let expires_at = to_db(device.expires_at, "device expiry")?;
        let mfa_at = to_db(device.mfa_at, "device second factor time")?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        // The user's expired devices go first (an expired device is absent anyway).
        sqlx::query("DELETE FROM devices WHERE user_id = ?1 AND expires_at <= ?2")
            .bind(&device.user)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        // A taken id or token hash fails the insert; dropping the transaction rolls it back.
        sqlx::query(
            "INSERT INTO devices (id, user_id, token_hash, created_at, last_used_at, expires_at, \
             mfa_at, address, user_agent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn device_by_token(&self, token_hash: &str) -> StoreResult<Option<DeviceRecord>> {
        let now = to_db(self.now(), "current time")?;
        let row: Option<DeviceRow> = sqlx::query_as(
            "SELECT id, user_id, token_hash, created_at, last_used_at, expires_at, mfa_at, \
             address, user_agent FROM devices WHERE token_hash = ?1 AND expires_at > ?2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(device_record).transpose()
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
            "UPDATE devices SET last_used_at = ?2, address = ?3, user_agent = ?4 \
             WHERE id = ?1 AND expires_at > ?5",
        )
        .bind(id)
        .bind(to_db(last_used_at, "device last use time")?)
        .bind(address)
        .bind(user_agent)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(result.rows_affected() == 1)
    }

    async fn devices(&self, user: &str) -> StoreResult<Vec<DeviceRecord>> {
        let now = to_db(self.now(), "current time")?;
        let rows: Vec<DeviceRow> = sqlx::query_as(
            "SELECT id, user_id, token_hash, created_at, last_used_at, expires_at, mfa_at, \
             address, user_agent FROM devices WHERE user_id = ?1 AND expires_at > ?2 \
             ORDER BY last_used_at DESC, created_at DESC, id ASC",
        )
        .bind(user)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter().map(device_record).collect()
    }

    async fn delete_device(&self, user: &str, id: &str) -> StoreResult<bool> {
        let now = to_db(self.now(), "current time")?;
        let expires_at: Option<i64> = sqlx::query_scalar(
            "DELETE FROM devices WHERE user_id = ?1 AND id = ?2 RETURNING expires_at",
        )
        .bind(user)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(expires_at.is_some_and(|expires_at| expires_at > now))
    }

    async fn delete_devices(&self, user: &str) -> StoreResult<usize> {
        let now = to_db(self.now(), "current time")?;
        let expiries: Vec<i64> =
            sqlx::query_scalar("DELETE FROM devices WHERE user_id = ?1 RETURNING expires_at")
                .bind(user)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(expiries
            .into_iter()
            .filter(|expires_at| *expires_at > now)
            .count())
    }
}

/// A row of `audit_events`, in the order of [`AuditRecord`]'s fields.
type AuditRow = (String, String, String, i64, String);

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, record: AuditRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, user_id, kind, at, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&record.id)
        .bind(&record.user)
        .bind(&record.kind)
        .bind(to_db(record.at, "audit event time")?)
        .bind(&record.detail)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn audit_events(&self, user: &str, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        // A limit beyond SQLite's integers is no limit.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, user_id, kind, at, detail FROM \
             (SELECT seq, id, user_id, kind, at, detail FROM audit_events WHERE user_id = ?1 \
             ORDER BY at DESC, seq DESC LIMIT ?2) \
             ORDER BY at ASC, seq ASC",
        )
        .bind(user)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.into_iter()
            .map(|(id, user, kind, at, detail)| {
                Ok(AuditRecord {
                    id,
                    user,
                    kind,
                    at: from_db(at, "audit event time")?,
                    detail,
                })
            })
            .collect()
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

    fn device(id: &str, token_hash: &str) -> DeviceRecord {
        DeviceRecord {
            id: id.to_owned(),
            user: "u".to_owned(),
            token_hash: token_hash.to_owned(),
            created_at: 1,
            last_used_at: 1,
            expires_at: u64::from(u32::MAX),
            mfa_at: 1,
            address: None,
            user_agent: None,
        }
    }

    #[tokio::test]
    async fn corrupt_device_and_audit_rows_are_reported() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        assert!(matches!(
            store
                .insert_device(DeviceRecord {
                    expires_at: u64::MAX,
                    ..device("huge", "huge-token")
                })
                .await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.touch_device("huge", u64::MAX, None, None).await,
            Err(StoreError::Corrupt(_))
        ));
        store.insert_device(device("d", "t")).await.unwrap();
        // A taken id or token hash is refused, leaving the stored device alone.
        assert!(matches!(
            store.insert_device(device("d", "other-token")).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            store.insert_device(device("other", "t")).await,
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(store.devices("u").await.unwrap(), vec![device("d", "t")]);
        sqlx::query("UPDATE devices SET mfa_at = -1 WHERE id = 'd'")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(matches!(
            store.device_by_token("t").await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            store.devices("u").await,
            Err(StoreError::Corrupt(_))
        ));

        let event = AuditRecord {
            id: "e".to_owned(),
            user: "u".to_owned(),
            kind: "k".to_owned(),
            at: u64::MAX,
            detail: "{}".to_owned(),
        };
        assert!(matches!(
            store.append_audit(event.clone()).await,
            Err(StoreError::Corrupt(_))
        ));
        store
            .append_audit(AuditRecord { at: 5, ..event })
            .await
            .unwrap();
        assert_eq!(store.audit_events("u", usize::MAX).await.unwrap().len(), 1);
        sqlx::query("UPDATE audit_events SET at = -5 WHERE id = 'e'")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(matches!(
            store.audit_events("u", 10).await,
            Err(StoreError::Corrupt(_))
        ));
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
