//! `decrement`, which the conformance suites do not cover yet: one less on a live counter, never
//! below zero, its window kept; an absent or expired counter stays absent; concurrent decrements
//! each take exactly one off.

mod support;

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::ManualClock;
use stepup_store::EphemeralStore;
use support::TestSchema;

const START: u64 = 1_800_000_000;

#[tokio::test]
async fn decrement_takes_one_off_a_live_counter_only() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let clock = ManualClock::at_unix(START);
    let store = schema.store(Arc::new(clock.clone())).await;
    let window = Duration::from_secs(60);

    assert_eq!(store.decrement("absent").await.unwrap(), 0);
    assert_eq!(
        store.increment("absent", window).await.unwrap(),
        1,
        "still absent"
    );

    for _ in 0..3 {
        store.increment("c", window).await.unwrap();
    }
    assert_eq!(store.decrement("c").await.unwrap(), 2);
    assert_eq!(store.decrement("c").await.unwrap(), 1);
    assert_eq!(store.decrement("c").await.unwrap(), 0);
    assert_eq!(store.decrement("c").await.unwrap(), 0, "never below zero");
    // The window is kept: 59 seconds later the counter still counts on from 0.
    clock.advance(Duration::from_secs(59));
    assert_eq!(store.increment("c", window).await.unwrap(), 1);
    // Once expired, a decrement reads 0 and the next increment starts a new window.
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.decrement("c").await.unwrap(), 0);
    assert_eq!(store.increment("c", window).await.unwrap(), 1);
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decrements_lose_no_update() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let store = Arc::new(schema.store(Arc::new(ManualClock::at_unix(START))).await);
    let window = Duration::from_secs(60);
    for _ in 0..60 {
        store.increment("c", window).await.unwrap();
    }
    // 100 decrements of a count of 60: 60 of them see 59..=0 once each, the rest see 0.
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.decrement("c").await })
        })
        .collect();
    let mut counts = Vec::new();
    for task in tasks {
        counts.push(task.await.unwrap().unwrap());
    }
    counts.sort_unstable();
    let mut expected: Vec<u64> = (0..60).collect();
    expected.extend(std::iter::repeat_n(0, 40));
    expected.sort_unstable();
    assert_eq!(counts, expected);
    assert_eq!(store.increment("c", window).await.unwrap(), 1);
    schema.drop_schema().await;
}
