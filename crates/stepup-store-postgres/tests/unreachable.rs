//! A server that cannot be reached, or a URL that is not one, is `StoreError::Unavailable` from
//! opening, within the pool's acquire timeout, and the error never repeats the password. Needs no
//! database.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use stepup_core::clock::SystemClock;
use stepup_store::StoreError;
use stepup_store_postgres::PostgresStore;

/// Nothing listens on port 1.
const UNREACHABLE: &str = "postgres://postgres:s3cret-password@127.0.0.1:1/test";

#[tokio::test]
async fn from_pool_on_an_unreachable_server_is_unavailable_quickly() {
    let options = PgConnectOptions::from_str(UNREACHABLE).unwrap();
    let pool = PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(500))
        .connect_lazy_with(options);
    let started = Instant::now();
    let result = PostgresStore::from_pool(pool, Arc::new(SystemClock)).await;
    let elapsed = started.elapsed();
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(!message.contains("s3cret"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[tokio::test]
async fn open_on_an_unreachable_server_is_unavailable_within_its_timeout() {
    let started = Instant::now();
    let result = PostgresStore::open(UNREACHABLE).await;
    let elapsed = started.elapsed();
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(!message.contains("s3cret"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // `open` waits at most 5 seconds for a connection.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[tokio::test]
async fn an_invalid_url_is_unavailable_without_repeating_it() {
    for url in [
        "postgres://postgres:s3cret-password@127.0.0.1:notaport/test",
        "not a url s3cret-password",
        "postgres://postgres:s3cret-password@127.0.0.1/test?sslmode=sometimes",
    ] {
        match PostgresStore::open(url).await {
            Err(StoreError::Unavailable(message)) => {
                assert!(!message.contains("s3cret"), "{message}");
            }
            other => panic!("expected Unavailable for {url}, got {other:?}"),
        }
    }
}
