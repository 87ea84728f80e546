//! The conformance suite of [`EphemeralStore`]: values, single-use takes, insert-if-absent,
//! compare-and-swap, fixed-window counters and expiry by the store's clock, with 100 tasks racing
//! on each atomic call.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::ManualClock;

use super::{Ids, RACERS, check, expect, race, winner, winners};
use crate::EphemeralStore;

mod cas;

/// Runs every check of [`EphemeralStore`] on `store`, panicking with a description of the first
/// failure.
///
/// `store` must judge expiry by `clock` (the suite moves it forward). The store may hold other
/// data, and the suite may run more than once on it. Run it on a multi-threaded tokio runtime so
/// the races are real.
pub async fn run<S: EphemeralStore>(store: Arc<S>, clock: ManualClock) {
    let ids = Ids::new();
    ephemeral_basics(&store, &ids).await;
    concurrent_take(&store, &ids).await;
    concurrent_insert_if_absent(&store, &ids).await;
    ephemeral_expiry(&store, &ids, &clock).await;
    increment_counts(&store, &ids).await;
    concurrent_increment(&store, &ids).await;
    increment_window(&store, &ids, &clock).await;
    decrement_counts(&store, &ids, &clock).await;
    concurrent_decrement(&store, &ids).await;
    cas::compare_and_swap(&store, &ids).await;
    cas::compare_and_swap_expiry(&store, &ids, &clock).await;
    cas::concurrent_compare_and_swap(&store, &ids).await;
    cas::concurrent_compare_and_swap_from_none(&store, &ids, &clock).await;
}

/// The TTL most checks use.
const MINUTE: Duration = Duration::from_secs(60);

async fn ephemeral_basics<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("basics");
    check(
        expect(store.get(&key).await, "get"),
        None,
        "get of an absent key",
    );
    check(
        expect(store.take(&key).await, "take"),
        None,
        "take of an absent key",
    );
    check(
        expect(
            store.insert_if_absent(&key, b"first", MINUTE).await,
            "insert",
        ),
        true,
        "insert_if_absent of an absent key",
    );
    check(
        expect(
            store.insert_if_absent(&key, b"second", MINUTE).await,
            "insert",
        ),
        false,
        "insert_if_absent of a live key",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"first".to_vec()),
        "get keeps the first value",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"first".to_vec()),
        "get does not consume",
    );
    check(
        expect(store.take(&key).await, "take"),
        Some(b"first".to_vec()),
        "take of a live key",
    );
    check(
        expect(store.take(&key).await, "take"),
        None,
        "take of a taken key",
    );
    check(
        expect(store.get(&key).await, "get"),
        None,
        "get of a taken key",
    );
    check(
        expect(
            store.insert_if_absent(&key, b"third", MINUTE).await,
            "insert",
        ),
        true,
        "insert_if_absent after take",
    );
    expect(store.remove(&key).await, "remove");
    check(
        expect(store.get(&key).await, "get"),
        None,
        "get of a removed key",
    );
    expect(store.remove(&key).await, "remove of an absent key");

    let binary = ids.key("binary");
    let value: Vec<u8> = (0..=255).collect();
    expect(
        store.insert_if_absent(&binary, &value, MINUTE).await,
        "insert",
    );
    check(
        expect(store.take(&binary).await, "take"),
        Some(value),
        "a binary value round-trips",
    );
}

async fn concurrent_take<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("concurrent-take");
    expect(
        store.insert_if_absent(&key, b"once", MINUTE).await,
        "insert_if_absent",
    );
    let results = race(store, |store, _| {
        let key = key.clone();
        async move { expect(store.take(&key).await, "take") }
    })
    .await;
    let taken: Vec<_> = results.into_iter().flatten().collect();
    check(
        taken,
        vec![b"once".to_vec()],
        "concurrent take of one key: the values handed out",
    );
}

async fn concurrent_insert_if_absent<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("concurrent-insert");
    let results = race(store, |store, index| {
        let key = key.clone();
        async move {
            let value = index.to_string();
            expect(
                store.insert_if_absent(&key, value.as_bytes(), MINUTE).await,
                "insert_if_absent",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent insert_if_absent: number of winners",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(winner(&results).to_string().into_bytes()),
        "the value after concurrent insert_if_absent is the winner's",
    );
}

async fn ephemeral_expiry<S: EphemeralStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let key = ids.key("expiry");
    let taken = ids.key("expiry-take");
    expect(store.insert_if_absent(&key, b"v1", MINUTE).await, "insert");
    expect(store.insert_if_absent(&taken, b"t", MINUTE).await, "insert");

    clock.advance(Duration::from_secs(59));
    check(
        expect(store.get(&key).await, "get"),
        Some(b"v1".to_vec()),
        "get one second before expiry",
    );
    check(
        expect(store.insert_if_absent(&key, b"v2", MINUTE).await, "insert"),
        false,
        "insert_if_absent one second before expiry",
    );

    clock.advance(Duration::from_secs(1));
    check(
        expect(store.get(&key).await, "get"),
        None,
        "get at the expiry (by the store's clock)",
    );
    check(
        expect(store.take(&taken).await, "take"),
        None,
        "take at the expiry (by the store's clock)",
    );
    check(
        expect(store.insert_if_absent(&key, b"v2", MINUTE).await, "insert"),
        true,
        "insert_if_absent over an expired entry",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"v2".to_vec()),
        "get of the entry replacing an expired one",
    );
    clock.advance(Duration::from_secs(30));
    check(
        expect(store.take(&key).await, "take"),
        Some(b"v2".to_vec()),
        "the replacing entry lives its own TTL",
    );

    let long = ids.key("expiry-long");
    expect(
        store
            .insert_if_absent(&long, b"l", Duration::from_secs(3600))
            .await,
        "insert",
    );
    clock.advance(Duration::from_secs(3599));
    check(
        expect(store.get(&long).await, "get"),
        Some(b"l".to_vec()),
        "get just before an hour-long TTL ends",
    );
    clock.advance(Duration::from_secs(2));
    check(
        expect(store.get(&long).await, "get"),
        None,
        "get after an hour-long TTL ended",
    );
}

async fn increment_counts<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("increment");
    let other = ids.key("increment-other");
    for expected in 1..=3 {
        check(
            expect(store.increment(&key, MINUTE).await, "increment"),
            expected,
            "increment counts up from 1",
        );
    }
    check(
        expect(store.increment(&other, MINUTE).await, "increment"),
        1,
        "another counter starts at 1",
    );
    expect(store.remove(&key).await, "remove");
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "increment after remove starts at 1",
    );
}

async fn concurrent_increment<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("concurrent-increment");
    let results = race(store, |store, _| {
        let key = key.clone();
        async move { expect(store.increment(&key, MINUTE).await, "increment") }
    })
    .await;
    let mut counts = results;
    counts.sort_unstable();
    let expected: Vec<u64> = (1..=RACERS as u64).collect();
    check(
        counts,
        expected,
        "concurrent increment: the counts handed out (sorted)",
    );
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        RACERS as u64 + 1,
        "increment after the concurrent ones",
    );
}

async fn increment_window<S: EphemeralStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let key = ids.key("increment-window");
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "first increment",
    );
    clock.advance(Duration::from_secs(30));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        2,
        "increment within the window",
    );
    clock.advance(Duration::from_secs(29));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        3,
        "increment in the window's last second",
    );
    clock.advance(Duration::from_secs(1));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "increment once the window ended (later increments kept the first expiry)",
    );
    clock.advance(Duration::from_secs(59));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        2,
        "increment within the new window",
    );
    clock.advance(Duration::from_secs(1));
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "increment once the new window ended",
    );
}

async fn decrement_counts<S: EphemeralStore>(store: &Arc<S>, ids: &Ids, clock: &ManualClock) {
    let key = ids.key("decrement");
    check(
        expect(store.decrement(&key).await, "decrement"),
        0,
        "decrement of an absent counter reads 0",
    );
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "decrement of an absent counter leaves it absent",
    );
    expect(store.increment(&key, MINUTE).await, "increment");
    check(
        expect(store.decrement(&key).await, "decrement"),
        1,
        "decrement counts down",
    );
    check(
        expect(store.decrement(&key).await, "decrement"),
        0,
        "decrement to zero",
    );
    check(
        expect(store.decrement(&key).await, "decrement"),
        0,
        "decrement never goes below zero",
    );
    // The expiry is kept: the window started by the first increment still ends on time.
    expect(store.increment(&key, MINUTE).await, "increment");
    clock.advance(MINUTE);
    check(
        expect(store.decrement(&key).await, "decrement"),
        0,
        "decrement of an expired counter reads 0",
    );
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "an expired counter starts again at 1",
    );
}

async fn concurrent_decrement<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("concurrent-decrement");
    for _ in 0..RACERS / 2 {
        expect(store.increment(&key, MINUTE).await, "increment");
    }
    // Twice as many decrements as the count: none lost, none below zero.
    let results = race(store, |store, _| {
        let key = key.clone();
        async move { expect(store.decrement(&key).await, "decrement") }
    })
    .await;
    let zeros = results.iter().filter(|count| **count == 0).count();
    check(
        zeros,
        RACERS / 2 + 1,
        "concurrent decrement: how many callers saw zero",
    );
    check(
        expect(store.increment(&key, MINUTE).await, "increment"),
        1,
        "the counter after the concurrent decrements",
    );
}
