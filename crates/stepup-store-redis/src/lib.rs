//! [`RedisStore`]: stepup's ephemeral state (`mfa_token`s, authorization codes, WebAuthn
//! challenges, attempt counters) in Redis, shared by every instance of the application; the
//! [`EphemeralStore`](stepup_store::EphemeralStore) of a deployment keeping its durable state
//! elsewhere (PostgreSQL, SQLite).
//!
//! ```no_run
//! # async fn example() -> stepup_store::StoreResult<()> {
//! use std::time::Duration;
//! use stepup_store::EphemeralStore;
//! use stepup_store_redis::RedisStore;
//!
//! let store = RedisStore::open("redis://cache.internal:6379/0")
//!     .await?
//!     .with_prefix("myapp:stepup:");
//! store.ping().await?; // readiness: a write round trip
//! store
//!     .insert_if_absent("mfa_token:abc", b"pending", Duration::from_secs(300))
//!     .await?;
//! assert_eq!(store.take("mfa_token:abc").await?, Some(b"pending".to_vec()));
//! # Ok(())
//! # }
//! ```
//!
//! # Atomicity
//!
//! Every call of the trait is ONE atomic round trip to Redis: `take` is a `GETDEL`, `remove` a
//! `DEL` of both of a key's entries, and every other call one Lua script (`EVALSHA`) that reads,
//! judges and writes the entry without any other command running in between. Concurrent callers,
//! on any number of instances, therefore never both win a `take`, an `insert_if_absent` or a
//! `compare_and_swap`, and never lose a count; a loser gets `false` (or `None`), never an error.
//! The scripts are loaded when the store is built; should Redis forget them (a restart, a
//! failover, `SCRIPT FLUSH`), the next call loads them again.
//!
//! # Time
//!
//! Liveness is judged by the store's injected [`Clock`](stepup_core::clock::Clock), never by
//! Redis: each entry carries its expiry second (by that clock) in front of its value, and each
//! script is passed the clock's current second and treats an entry whose expiry is at or before
//! it as absent. Redis's own TTL only reclaims memory: every write also sets one, the entry's
//! lifetime (in whole seconds, rounded up) plus a minute, so, with a clock that does not run
//! slower than real time, Redis never drops an entry before it expires by the clock. An entry that
//! expired by the clock but is still in Redis reads as absent and is overwritten by the next
//! insert; `take` deletes it all the same.
//!
//! # Layout
//!
//! Under the prefix (default [`DEFAULT_PREFIX`], `stepup:`), values live at `<prefix>v:<key>` and
//! counters at `<prefix>c:<key>`, both Redis strings: a value is `<expiry>:<bytes>`, a counter
//! `<expiry>:<count>` (decimal seconds since the Unix epoch, then the value's bytes or the decimal
//! count). [`ping`](RedisStore::ping) writes `<prefix>health`. Several applications (or test runs)
//! can share one Redis database under different prefixes.
//!
//! # Deployment
//!
//! Run Redis with `maxmemory-policy noeviction` (every key of the store has a TTL, so a
//! `volatile-*` policy would evict them too): an evicted used-marker or attempt counter would
//! allow a replay or more attempts, whereas a full Redis refusing writes makes the store
//! unavailable, and callers fail closed. A single-use guarantee holds on one Redis server; an
//! asynchronously replicated failover may lose the latest writes. Redis Cluster is not supported.
//!
//! # Features
//!
//! - `tls`: `rediss://` URLs, through rustls with the ring provider and the Mozilla roots of
//!   `webpki-roots` (no OpenSSL). rustls picks its provider from its crate features; should the
//!   application's build also enable another one (aws-lc-rs), install one with
//!   `rustls::crypto::CryptoProvider::install_default` before opening. For another trust store
//!   or client certificates, build a client with `redis::Client::build_with_tls` and use
//!   [`RedisStore::from_connection`].
//!
//! # Errors
//!
//! A failure to reach Redis, a refused command or a timeout is [`StoreError::Unavailable`]; an
//! entry that cannot be read back (not in the layout above, or of another Redis type) is
//! [`StoreError::Corrupt`]. Neither ever includes a stored value.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError};
use stepup_core::clock::{SharedClock, SystemClock};
use stepup_store::{StoreError, StoreResult};

mod entry;
mod ephemeral;
mod scripts;

/// The prefix of every key of a store unless [`with_prefix`](RedisStore::with_prefix) says
/// otherwise.
pub const DEFAULT_PREFIX: &str = "stepup:";

/// How long one attempt to connect (TCP, TLS and the handshake) may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a command may wait for its reply.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Connection attempts after the first failed one, before a call fails as unavailable.
const CONNECTION_RETRIES: usize = 2;

/// The first delay between connection attempts (doubling, with jitter).
const RETRY_MIN_DELAY: Duration = Duration::from_millis(100);

/// The longest delay between connection attempts.
const RETRY_MAX_DELAY: Duration = Duration::from_secs(1);

/// How long the key written by [`ping`](RedisStore::ping) lives.
const HEALTH_TTL_MILLIS: u64 = 10_000;

/// The error code the scripts answer when an entry is malformed.
const CORRUPT_CODE: &str = "STEPUP_CORRUPT";

/// An [`EphemeralStore`](stepup_store::EphemeralStore) in Redis, shared by every instance of the
/// application using the same server and prefix.
///
/// It talks to Redis through one multiplexed [`ConnectionManager`], which reconnects by itself
/// after a failure (the calls made meanwhile fail as unavailable). Clones share the connection.
/// See the [crate documentation](crate) for the atomicity and expiry guarantees and the layout of
/// the keys.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    clock: SharedClock,
    prefix: Arc<str>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://…` with the `tls` feature, `unix:///path/to/socket`), keys prefixed with
    /// [`DEFAULT_PREFIX`]; expiry is judged by the system clock.
    ///
    /// Each connection attempt may take 2 seconds and each reply 2 seconds; a failed connection
    /// is retried twice, so an unreachable server makes this fail as unavailable within about
    /// 7 seconds. Build a [`ConnectionManager`] yourself and use
    /// [`from_connection`](Self::from_connection) for other settings.
    ///
    /// Needs a tokio runtime.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with_clock(url, Arc::new(SystemClock)).await
    }

    /// Like [`open`](Self::open), judging expiry by `clock`.
    pub async fn open_with_clock(url: &str, clock: SharedClock) -> StoreResult<Self> {
        let connection = ConnectionManager::new_with_config(client(url)?, manager_config())
            .await
            .map_err(redis_error)?;
        Self::from_connection(connection, clock).await
    }

    /// Like [`open_with_clock`](Self::open_with_clock), without reaching the server: only the URL
    /// is checked now; the connection is made by the first call, and made again by a later call
    /// for as long as the server cannot be reached.
    ///
    /// For a service that must start (and answer `503` from its health check) while Redis is
    /// down, and recover by itself once Redis is back: until then every call fails as
    /// [`StoreError::Unavailable`] within the same timeouts as [`open`](Self::open), never
    /// succeeds. The scripts are loaded into the server by the first call of each (`EVALSHA`,
    /// then `SCRIPT LOAD` when the server does not know it).
    ///
    /// Needs a tokio runtime: it starts the connection manager's background task.
    pub async fn open_lazily(url: &str, clock: SharedClock) -> StoreResult<Self> {
        let connection = ConnectionManager::new_lazy_with_config(client(url)?, manager_config())
            .map_err(redis_error)?;
        Ok(Self {
            connection,
            clock,
            prefix: Arc::from(DEFAULT_PREFIX),
        })
    }

    /// A store over an existing connection manager (the application's own, or one built with
    /// other settings), judging expiry by `clock`, keys prefixed with [`DEFAULT_PREFIX`]. Loads
    /// the store's scripts into the server.
    pub async fn from_connection(
        connection: ConnectionManager,
        clock: SharedClock,
    ) -> StoreResult<Self> {
        let store = Self {
            connection,
            clock,
            prefix: Arc::from(DEFAULT_PREFIX),
        };
        scripts::load(&mut store.connection.clone()).await?;
        Ok(store)
    }

    /// Keeps every key under `prefix` instead of [`DEFAULT_PREFIX`]: stores with different
    /// prefixes on the same server never see each other's entries. The prefix is used verbatim;
    /// end it with a separator (`myapp:stepup:`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Arc::from(prefix.into());
        self
    }

    /// Judges expiry by `clock` instead (tests pass a
    /// [`ManualClock`](stepup_core::clock::ManualClock)). The connection and the prefix are kept.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The prefix of every key of this store.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection manager, for an application sharing the connection for its own commands.
    pub fn connection(&self) -> &ConnectionManager {
        &self.connection
    }

    /// Checks that Redis accepts writes, for a readiness probe: one `SET` of `<prefix>health`
    /// (the clock's current second, living 10 seconds). A server that is unreachable, read-only
    /// or out of memory is [`StoreError::Unavailable`].
    pub async fn ping(&self) -> StoreResult<()> {
        let mut connection = self.connection.clone();
        let reply: String = redis::cmd("SET")
            .arg(format!("{}health", self.prefix))
            .arg(self.now())
            .arg("PX")
            .arg(HEALTH_TTL_MILLIS)
            .query_async(&mut connection)
            .await
            .map_err(redis_error)?;
        if reply == "OK" {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "Redis answered the health write with {reply:?}"
            )))
        }
    }

    /// The injected clock's current second.
    fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// The Redis key of the value under `key`.
    fn value_key(&self, key: &str) -> String {
        format!("{}v:{key}", self.prefix)
    }

    /// The Redis key of the counter under `key`.
    fn counter_key(&self, key: &str) -> String {
        format!("{}c:{key}", self.prefix)
    }
}

/// The client for `url`; the parse error never repeats the URL (which may hold a password).
fn client(url: &str) -> StoreResult<redis::Client> {
    redis::Client::open(url)
        .map_err(|error| StoreError::Unavailable(format!("the Redis URL is not valid: {error}")))
}

/// The timeouts and retries of the connection managers this crate builds.
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECTION_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(CONNECTION_RETRIES)
        .set_min_delay(RETRY_MIN_DELAY)
        .set_max_delay(RETRY_MAX_DELAY)
}

/// A Redis failure, described without any stored value: a malformed entry (reported by a script)
/// or a key of another type is corrupt, anything else (unreachable server, refused command,
/// timeout) unavailable.
fn redis_error(error: RedisError) -> StoreError {
    match error.code() {
        Some(CORRUPT_CODE) => StoreError::Corrupt("a stored entry is malformed".to_owned()),
        Some("WRONGTYPE") => {
            StoreError::Corrupt("a key of the store holds another type of Redis value".to_owned())
        }
        _ if error.kind() == ErrorKind::UnexpectedReturnType => {
            StoreError::Corrupt(format!("Redis answered an unexpected reply: {error}"))
        }
        _ => StoreError::Unavailable(format!("Redis: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The constructors and the health check can run in spawned tasks.
    #[allow(dead_code)]
    fn futures_are_send(store: RedisStore, connection: ConnectionManager, clock: SharedClock) {
        assert_send(&RedisStore::open("redis://"));
        assert_send(&RedisStore::open_with_clock("redis://", Arc::clone(&clock)));
        assert_send(&RedisStore::open_lazily("redis://", Arc::clone(&clock)));
        assert_send(&RedisStore::from_connection(connection, clock));
        assert_send(&store.ping());
    }

    #[test]
    fn errors_are_classified() {
        let parse = RedisError::from((ErrorKind::Parse, "x"));
        assert!(matches!(redis_error(parse), StoreError::Unavailable(_)));
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(redis_error(refused), StoreError::Unavailable(_)));
        let mismatch = RedisError::from((ErrorKind::UnexpectedReturnType, "x"));
        assert!(matches!(redis_error(mismatch), StoreError::Corrupt(_)));
    }
}
