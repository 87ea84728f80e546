//! `EphemeralStore::decrement` (which the ephemeral conformance suite does not cover yet): it
//! gives back one count of a live counter, never below zero, keeps the window, leaves an absent
//! or expired counter absent, and loses no update under a race.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::ManualClock;
use stepup_store::EphemeralStore;
use stepup_store_sqlite::SqliteStore;

const START: u64 = 1_800_000_000;
const MINUTE: Duration = Duration::from_secs(60);

async fn memory_store(clock: &ManualClock) -> SqliteStore {
    SqliteStore::open_with_clock("sqlite::memory:", Arc::new(clock.clone()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decrement_gives_back_a_count_within_the_window() {
    let clock = ManualClock::at_unix(START);
    let store = memory_store(&clock).await;

    assert_eq!(store.decrement("absent").await.unwrap(), 0);
    assert_eq!(
        store.increment("absent", MINUTE).await.unwrap(),
        1,
        "decrementing an absent counter does not create it"
    );

    for _ in 0..3 {
        store.increment("k", MINUTE).await.unwrap();
    }
    assert_eq!(store.decrement("k").await.unwrap(), 2);
    assert_eq!(store.decrement("k").await.unwrap(), 1);
    assert_eq!(store.decrement("k").await.unwrap(), 0);
    assert_eq!(store.decrement("k").await.unwrap(), 0, "never below zero");

    // The window is the first increment's: decrements kept it.
    clock.advance(Duration::from_secs(59));
    assert_eq!(store.increment("k", MINUTE).await.unwrap(), 1);
    assert_eq!(store.increment("k", MINUTE).await.unwrap(), 2);
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        store.decrement("k").await.unwrap(),
        0,
        "an expired counter counts as absent"
    );
    assert_eq!(
        store.increment("k", MINUTE).await.unwrap(),
        1,
        "and stays absent: the next increment starts a new window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decrements_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(START);
    let url = format!("sqlite://{}", dir.path().join("stepup.db").display());
    let store = Arc::new(
        SqliteStore::open_with_clock(&url, Arc::new(clock.clone()))
            .await
            .unwrap(),
    );
    for _ in 0..100 {
        store.increment("k", MINUTE).await.unwrap();
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(60));
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                store.decrement("k").await.unwrap()
            })
        })
        .collect();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (40..100).collect::<Vec<u64>>());
    assert_eq!(store.increment("k", MINUTE).await.unwrap(), 41);
}
