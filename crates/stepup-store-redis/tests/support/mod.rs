//! Shared by the integration tests: a private key prefix on the Redis server at `REDIS_URL`, so
//! tests (and parallel runs of the whole suite) never see each other's keys.
//!
//! Without `REDIS_URL` a test prints why and passes, except on CI (`CI=true`), where it fails.
#![allow(dead_code, unreachable_pub)]

use redis::aio::MultiplexedConnection;
use stepup_core::clock::SharedClock;
use stepup_store_redis::RedisStore;
pub use stepup_test_env::{random_hex, redis_url};

/// A key prefix of one test's own, `stepup_test_<random hex>:`, on the server at `REDIS_URL`.
pub struct TestPrefix {
    url: String,
    prefix: String,
}

impl TestPrefix {
    /// A fresh prefix; `None` when there is no server to test against.
    pub fn new() -> Option<Self> {
        Some(Self {
            url: redis_url()?,
            prefix: format!("stepup_test_{}:", random_hex()),
        })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A store keeping its keys under this prefix, judging expiry by `clock`.
    pub async fn store(&self, clock: SharedClock) -> RedisStore {
        RedisStore::open_with_clock(&self.url, clock)
            .await
            .expect("open the Redis store")
            .with_prefix(self.prefix.clone())
    }

    /// A plain connection, to look at the keys behind the store's back.
    pub async fn raw(&self) -> MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("REDIS_URL is a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to REDIS_URL")
    }

    /// Every key under this prefix.
    pub async fn keys(&self) -> Vec<String> {
        let mut raw = self.raw().await;
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut raw)
                .await
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }

    /// Deletes every key under this prefix.
    pub async fn clean_up(self) {
        let keys = self.keys().await;
        let mut raw = self.raw().await;
        for batch in keys.chunks(1000) {
            let _: i64 = redis::cmd("DEL")
                .arg(batch)
                .query_async(&mut raw)
                .await
                .expect("DEL");
        }
    }
}
