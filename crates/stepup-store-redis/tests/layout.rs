//! What the store leaves in Redis: keys under its prefix, Redis TTLs at least as long as the
//! logical ones, entries expiring by the injected clock while Redis still holds them, and
//! malformed entries read as corrupt.

mod support;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use stepup_core::clock::ManualClock;
use stepup_store::{EphemeralStore, StoreError};
use support::TestPrefix;

const START: u64 = 1_800_000_000;

async fn pttl(raw: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(raw)
        .await
        .expect("PTTL")
}

async fn exists(raw: &mut MultiplexedConnection, key: &str) -> bool {
    let count: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(raw)
        .await
        .expect("EXISTS");
    count == 1
}

#[tokio::test]
async fn redis_ttls_cover_the_logical_ones() {
    let Some(prefix) = TestPrefix::new() else {
        return;
    };
    let clock = ManualClock::at_unix(START);
    let store = prefix.store(Arc::new(clock.clone())).await;
    let mut raw = prefix.raw().await;
    let p = prefix.prefix();

    let five_minutes = Duration::from_secs(300);
    assert!(
        store
            .insert_if_absent("mfa_token:a", b"v", five_minutes)
            .await
            .unwrap()
    );
    let value_ttl = pttl(&mut raw, &format!("{p}v:mfa_token:a")).await;
    println!("PTTL of a value stored for 300 s: {value_ttl} ms");
    assert!((300_000..=360_000).contains(&value_ttl), "{value_ttl}");

    // A swap gives the entry the new TTL, shorter or longer.
    assert!(
        store
            .compare_and_swap("mfa_token:a", Some(b"v"), b"w", Duration::from_secs(10))
            .await
            .unwrap()
    );
    let swapped_ttl = pttl(&mut raw, &format!("{p}v:mfa_token:a")).await;
    assert!((10_000..=70_000).contains(&swapped_ttl), "{swapped_ttl}");
    assert!(
        store
            .compare_and_swap("cas", None, b"x", Duration::from_secs(3600))
            .await
            .unwrap()
    );
    let cas_ttl = pttl(&mut raw, &format!("{p}v:cas")).await;
    assert!((3_600_000..=3_660_000).contains(&cas_ttl), "{cas_ttl}");

    // A sub-second TTL is a whole second by the clock, and Redis keeps it a minute more.
    store
        .insert_if_absent("short", b"s", Duration::from_millis(1))
        .await
        .unwrap();
    let short_ttl = pttl(&mut raw, &format!("{p}v:short")).await;
    assert!((1_000..=61_000).contains(&short_ttl), "{short_ttl}");

    // A counter's TTL is set by the increment opening its window, and kept by later ones.
    let minute = Duration::from_secs(60);
    assert_eq!(store.increment("attempts", minute).await.unwrap(), 1);
    let counter = format!("{p}c:attempts");
    let window_ttl = pttl(&mut raw, &counter).await;
    assert!((60_000..=120_000).contains(&window_ttl), "{window_ttl}");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.increment("attempts", minute).await.unwrap(), 2);
    assert_eq!(store.decrement("attempts").await.unwrap(), 1);
    let kept_ttl = pttl(&mut raw, &counter).await;
    assert!(
        kept_ttl > 0 && kept_ttl < window_ttl,
        "{kept_ttl} after {window_ttl}"
    );

    // The health key lives 10 seconds.
    store.ping().await.unwrap();
    let health_ttl = pttl(&mut raw, &format!("{p}health")).await;
    assert!((1..=10_000).contains(&health_ttl), "{health_ttl}");

    prefix.clean_up().await;
}

#[tokio::test]
async fn entries_expire_by_the_injected_clock_while_redis_still_holds_them() {
    let Some(prefix) = TestPrefix::new() else {
        return;
    };
    let clock = ManualClock::at_unix(START);
    let store = prefix.store(Arc::new(clock.clone())).await;
    let mut raw = prefix.raw().await;
    let p = prefix.prefix();
    let minute = Duration::from_secs(60);

    store.insert_if_absent("k", b"v", minute).await.unwrap();
    store.increment("n", minute).await.unwrap();
    clock.advance(minute);
    assert!(exists(&mut raw, &format!("{p}v:k")).await);
    assert!(exists(&mut raw, &format!("{p}c:n")).await);
    assert_eq!(store.get("k").await.unwrap(), None);
    assert_eq!(store.decrement("n").await.unwrap(), 0);
    assert_eq!(store.increment("n", minute).await.unwrap(), 1);
    assert!(store.insert_if_absent("k", b"w", minute).await.unwrap());
    assert_eq!(store.get("k").await.unwrap(), Some(b"w".to_vec()));

    // `remove` deletes the value and the counter of a key.
    store.increment("k", minute).await.unwrap();
    store.remove("k").await.unwrap();
    assert!(!exists(&mut raw, &format!("{p}v:k")).await);
    assert!(!exists(&mut raw, &format!("{p}c:k")).await);

    prefix.clean_up().await;
}

#[tokio::test]
async fn stores_under_different_prefixes_never_see_each_other() {
    let (Some(first), Some(second)) = (TestPrefix::new(), TestPrefix::new()) else {
        return;
    };
    let clock = Arc::new(ManualClock::at_unix(START));
    let one = first.store(clock.clone()).await;
    let two = second.store(clock).await;
    let minute = Duration::from_secs(60);

    assert!(
        one.insert_if_absent("shared", b"one", minute)
            .await
            .unwrap()
    );
    assert_eq!(two.get("shared").await.unwrap(), None);
    assert_eq!(two.take("shared").await.unwrap(), None);
    assert!(
        !two.compare_and_swap("shared", Some(b"one"), b"x", minute)
            .await
            .unwrap()
    );
    assert!(
        two.insert_if_absent("shared", b"two", minute)
            .await
            .unwrap()
    );
    assert_eq!(one.increment("count", minute).await.unwrap(), 1);
    assert_eq!(one.increment("count", minute).await.unwrap(), 2);
    assert_eq!(two.decrement("count").await.unwrap(), 0);
    assert_eq!(two.increment("count", minute).await.unwrap(), 1);

    two.remove("shared").await.unwrap();
    two.remove("count").await.unwrap();
    assert_eq!(one.get("shared").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(one.increment("count", minute).await.unwrap(), 3);
    assert!(second.keys().await.is_empty());
    let mut keys = first.keys().await;
    keys.sort();
    let p = first.prefix();
    assert_eq!(keys, [format!("{p}c:count"), format!("{p}v:shared")]);

    first.clean_up().await;
    second.clean_up().await;
}

#[tokio::test]
async fn malformed_entries_are_corrupt_and_never_repeated() {
    let Some(prefix) = TestPrefix::new() else {
        return;
    };
    let store = prefix.store(Arc::new(ManualClock::at_unix(START))).await;
    let mut raw = prefix.raw().await;
    let p = prefix.prefix();
    let minute = Duration::from_secs(60);
    let secret = "s3cret-payload";

    let _: () = redis::cmd("SET")
        .arg(format!("{p}v:bad"))
        .arg(secret)
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("{p}c:bad"))
        .arg(format!("{}:{secret}", START + 60))
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(format!("{p}v:hash"))
        .arg("v")
        .arg(secret)
        .query_async(&mut raw)
        .await
        .unwrap();

    let results = [
        store.get("bad").await.map(|_| ()),
        store
            .insert_if_absent("bad", b"x", minute)
            .await
            .map(|_| ()),
        store
            .compare_and_swap("bad", None, b"x", minute)
            .await
            .map(|_| ()),
        store
            .compare_and_swap("bad", Some(b"x"), b"y", minute)
            .await
            .map(|_| ()),
        store.increment("bad", minute).await.map(|_| ()),
        store.decrement("bad").await.map(|_| ()),
        store.get("hash").await.map(|_| ()),
        store.take("hash").await.map(|_| ()),
        store.take("bad").await.map(|_| ()),
    ];
    for result in results {
        match result {
            Err(StoreError::Corrupt(message)) => assert!(!message.contains(secret), "{message}"),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    // `remove` clears a corrupt key.
    store.remove("bad").await.unwrap();
    assert!(store.insert_if_absent("bad", b"x", minute).await.unwrap());

    prefix.clean_up().await;
}

#[tokio::test]
async fn scripts_forgotten_by_redis_are_loaded_again() {
    let Some(prefix) = TestPrefix::new() else {
        return;
    };
    let store = prefix.store(Arc::new(ManualClock::at_unix(START))).await;
    let mut raw = prefix.raw().await;
    let minute = Duration::from_secs(60);
    // As after a restart or a failover to a server that never saw the scripts.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(store.insert_if_absent("k", b"v", minute).await.unwrap());
    assert_eq!(store.get("k").await.unwrap(), Some(b"v".to_vec()));
    assert!(
        store
            .compare_and_swap("k", Some(b"v"), b"w", minute)
            .await
            .unwrap()
    );
    assert_eq!(store.increment("n", minute).await.unwrap(), 1);
    assert_eq!(store.decrement("n").await.unwrap(), 0);
    prefix.clean_up().await;
}
