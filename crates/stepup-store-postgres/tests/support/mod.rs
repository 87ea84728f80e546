//! Shared by the integration tests: a private schema of the database at `DATABASE_URL`, so tests
//! (and parallel runs of the whole suite) never see each other's rows.
//!
//! Without `DATABASE_URL` a test prints why and passes, except on CI (`CI=true`), where it fails.
#![allow(dead_code, unreachable_pub)]

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool};
use stepup_core::clock::SharedClock;
use stepup_store_postgres::PostgresStore;
pub use stepup_test_env::{database_url, random_hex};

/// Connections per test pool: enough for the conformance suites' 100-way races to contend for
/// real. The harness runs at most a few tests at once, well within the server's limit.
pub const POOL_SIZE: u32 = 20;

/// A schema of one test's own, `stepup_test_<random hex>`.
pub struct TestSchema {
    url: String,
    name: String,
}

impl TestSchema {
    /// Creates a fresh schema; `None` when there is no database to test against.
    pub async fn create() -> Option<Self> {
        let url = database_url()?;
        let schema = Self {
            name: format!("stepup_test_{}", random_hex()),
            url,
        };
        schema
            .admin(&format!("CREATE SCHEMA \"{}\"", schema.name))
            .await;
        Some(schema)
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new pool whose connections see only this schema.
    pub async fn pool(&self) -> PgPool {
        let options = PgConnectOptions::from_str(&self.url)
            .expect("DATABASE_URL is a PostgreSQL URL")
            .options([("search_path", format!("\"{}\"", self.name))]);
        PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .expect("connect to DATABASE_URL")
    }

    /// A store on a new pool of this schema (migrations applied), judging expiry by `clock`.
    pub async fn store(&self, clock: SharedClock) -> PostgresStore {
        PostgresStore::from_pool(self.pool().await, clock)
            .await
            .expect("open the PostgreSQL store")
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) {
        self.admin(&format!("DROP SCHEMA \"{}\" CASCADE", self.name))
            .await;
    }

    /// Runs `statement` on a connection of its own (not bound to the schema).
    async fn admin(&self, statement: &str) {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("connect to DATABASE_URL");
        sqlx::query(AssertSqlSafe(statement))
            .execute(&pool)
            .await
            .expect("administer the test schema");
        pool.close().await;
    }
}
