//! The shared backends of the root integration tests beyond memory and SQLite: PostgreSQL in a
//! private schema per test (the PostgreSQL crate's own `TestSchema`), and Redis under a private
//! key prefix per test, for the ephemeral state of several instances.
//!
//! Without `DATABASE_URL` (or `REDIS_URL`) a test prints why and passes, except on CI
//! (`CI=true`), where it fails: CI runs every backend, it never skips one.
#![allow(dead_code, unreachable_pub)]

#[path = "../../crates/stepup-store-postgres/tests/support/mod.rs"]
pub mod pg_support;

use std::sync::Arc;

use stepup::Stores;
use stepup::clock::ManualClock;
use stepup_store_postgres::PostgresStore;
use stepup_store_redis::RedisStore;

pub use pg_support::TestSchema;
pub use stepup_test_env::redis_url;

/// A PostgreSQL store in a schema of the test's own; drop the schema with [`Postgres::finish`].
pub struct Postgres {
    pub store: PostgresStore,
    pub schema: TestSchema,
}

impl Postgres {
    /// A fresh schema (migrations applied) judging expiry by `clock`; `None` (the reason
    /// printed) without `DATABASE_URL`, a panic under `CI=true`.
    pub async fn start(clock: &ManualClock) -> Option<Self> {
        let schema = TestSchema::create().await?;
        let store = schema.store(Arc::new(clock.clone())).await;
        Some(Self { store, schema })
    }

    /// Every store trait on this PostgreSQL schema.
    pub fn stores(&self) -> Stores {
        Stores::shared(self.store.clone())
    }

    /// Closes the pool and drops the schema.
    pub async fn finish(self) {
        self.store.pool().close().await;
        self.schema.drop_schema().await;
    }
}

/// A Redis store under a key prefix of the test's own (`stepup_test_<random hex>:`), judging
/// expiry by `clock`; `None` (the reason printed) without `REDIS_URL`, a panic under `CI=true`.
/// Its keys carry their own expiry, so nothing outlives the test for long.
pub async fn redis(clock: &ManualClock) -> Option<RedisStore> {
    let url = redis_url()?;
    let store = RedisStore::open_with_clock(&url, Arc::new(clock.clone()))
        .await
        .expect("open the Redis store at REDIS_URL")
        .with_prefix(format!("stepup_test_{}:", stepup_test_env::random_hex()));
    Some(store)
}

/// PostgreSQL for the durable state, Redis for the ephemeral state: how several instances run.
pub async fn postgres_and_redis(clock: &ManualClock) -> Option<(Postgres, Stores)> {
    let redis = redis(clock).await?;
    let postgres = Postgres::start(clock).await?;
    let mut stores = postgres.stores();
    stores.ephemeral = Arc::new(redis);
    Some((postgres, stores))
}
