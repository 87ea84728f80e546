//! A server that cannot be reached, or a URL that is not one, is `StoreError::Unavailable` from
//! opening, within the connection timeouts, never a hang or a panic, and the error never repeats
//! the password. Needs no Redis.

use std::time::{Duration, Instant};

use stepup_store::StoreError;
use stepup_store_redis::RedisStore;

/// Nothing listens on port 1.
const UNREACHABLE: &str = "redis://stepup:s3cret-password@127.0.0.1:1/0";

#[tokio::test]
async fn open_on_an_unreachable_server_is_unavailable_quickly() {
    let started = Instant::now();
    let result = RedisStore::open(UNREACHABLE).await;
    let elapsed = started.elapsed();
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(!message.contains("s3cret"), "{message}");
            eprintln!("unavailable after {elapsed:?}: {message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Three attempts of at most 2 seconds each, and at most a second between them.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable_within_the_timeouts() {
    // A listener that accepts connections (the kernel does, from its backlog) but never answers
    // the handshake.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "redis://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let started = Instant::now();
    let result = RedisStore::open(&url).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "expected Unavailable, got {result:?}"
    );
    eprintln!("unavailable after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");
    drop(listener);
}

#[tokio::test]
async fn an_invalid_url_is_unavailable_without_repeating_it() {
    for url in [
        "redis://stepup:s3cret-password@127.0.0.1:notaport/0",
        "not a url s3cret-password",
        "http://stepup:s3cret-password@127.0.0.1/0",
        "redis://stepup:s3cret-password@127.0.0.1/notadb",
    ] {
        match RedisStore::open(url).await {
            Err(StoreError::Unavailable(message)) => {
                assert!(!message.contains("s3cret"), "{message}");
            }
            other => panic!("expected Unavailable for {url}, got {other:?}"),
        }
    }
}
