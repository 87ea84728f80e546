//! The compare-and-swap checks of the [`EphemeralStore`] suite.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::ManualClock;

use super::MINUTE;
use crate::EphemeralStore;
use crate::conformance::{Ids, check, expect, race, winner, winners};

/// A compare-and-swap call, expecting the store to answer.
async fn cas<S: EphemeralStore>(
    store: &Arc<S>,
    key: &str,
    expected: Option<&[u8]>,
    new: &[u8],
    ttl: Duration,
) -> bool {
    expect(
        store.compare_and_swap(key, expected, new, ttl).await,
        "compare_and_swap",
    )
}

pub(super) async fn compare_and_swap<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("cas");
    check(
        cas(store, &key, Some(b"v0"), b"v1", MINUTE).await,
        false,
        "compare_and_swap expecting a value of an absent key",
    );
    check(
        expect(store.get(&key).await, "get"),
        None,
        "a refused compare_and_swap stores nothing",
    );
    check(
        cas(store, &key, None, b"v1", MINUTE).await,
        true,
        "compare_and_swap expecting no value of an absent key",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"v1".to_vec()),
        "get after compare_and_swap from no value",
    );
    check(
        cas(store, &key, None, b"v2", MINUTE).await,
        false,
        "compare_and_swap expecting no value of a live key",
    );
    check(
        cas(store, &key, Some(b"other"), b"v2", MINUTE).await,
        false,
        "compare_and_swap expecting a different value",
    );
    check(
        cas(store, &key, Some(b"v"), b"v2", MINUTE).await,
        false,
        "compare_and_swap expecting a prefix of the value",
    );
    check(
        cas(store, &key, Some(b"v1x"), b"v2", MINUTE).await,
        false,
        "compare_and_swap expecting the value with a byte more",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"v1".to_vec()),
        "the value after refused compare_and_swap calls",
    );
    check(
        cas(store, &key, Some(b"v1"), b"v2", MINUTE).await,
        true,
        "compare_and_swap expecting the live value",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(b"v2".to_vec()),
        "get after compare_and_swap from a value",
    );
    check(
        cas(store, &key, Some(b"v1"), b"v3", MINUTE).await,
        false,
        "compare_and_swap expecting a replaced value",
    );
    check(
        expect(
            store.insert_if_absent(&key, b"v3", MINUTE).await,
            "insert_if_absent",
        ),
        false,
        "insert_if_absent of a key set by compare_and_swap",
    );
    check(
        expect(store.take(&key).await, "take"),
        Some(b"v2".to_vec()),
        "take of a key set by compare_and_swap",
    );
    check(
        cas(store, &key, Some(b"v2"), b"v3", MINUTE).await,
        false,
        "compare_and_swap expecting a taken value",
    );
    check(
        cas(store, &key, None, b"v3", MINUTE).await,
        true,
        "compare_and_swap expecting no value after take",
    );
    expect(store.remove(&key).await, "remove");
    check(
        cas(store, &key, None, b"v4", MINUTE).await,
        true,
        "compare_and_swap expecting no value after remove",
    );

    // A value stored by insert_if_absent can be swapped.
    let inserted = ids.key("cas-inserted");
    expect(
        store.insert_if_absent(&inserted, b"i1", MINUTE).await,
        "insert_if_absent",
    );
    check(
        cas(store, &inserted, Some(b"i1"), b"i2", MINUTE).await,
        true,
        "compare_and_swap of a value stored by insert_if_absent",
    );
    check(
        expect(store.get(&inserted).await, "get"),
        Some(b"i2".to_vec()),
        "the swapped value",
    );

    // An empty value is a value, not the absence of one; binary values compare exactly.
    let empty = ids.key("cas-empty");
    check(
        cas(store, &empty, None, b"", MINUTE).await,
        true,
        "compare_and_swap storing an empty value",
    );
    check(
        expect(store.get(&empty).await, "get"),
        Some(Vec::new()),
        "get of an empty value",
    );
    check(
        cas(store, &empty, None, b"x", MINUTE).await,
        false,
        "compare_and_swap expecting no value over an empty value",
    );
    let binary: Vec<u8> = (0..=255).collect();
    check(
        cas(store, &empty, Some(b""), &binary, MINUTE).await,
        true,
        "compare_and_swap expecting the empty value",
    );
    let mut flipped = binary.clone();
    flipped[200] ^= 1;
    check(
        cas(store, &empty, Some(&flipped), b"y", MINUTE).await,
        false,
        "compare_and_swap expecting a binary value differing in one bit",
    );
    check(
        cas(store, &empty, Some(&binary), b"y", MINUTE).await,
        true,
        "compare_and_swap expecting the binary value",
    );
}

pub(super) async fn compare_and_swap_expiry<S: EphemeralStore>(
    store: &Arc<S>,
    ids: &Ids,
    clock: &ManualClock,
) {
    let key = ids.key("cas-expiry");
    check(
        cas(store, &key, None, b"a", MINUTE).await,
        true,
        "compare_and_swap from no value",
    );
    clock.advance(Duration::from_secs(59));
    check(
        cas(store, &key, None, b"b", MINUTE).await,
        false,
        "compare_and_swap expecting no value one second before expiry",
    );
    clock.advance(Duration::from_secs(1));
    check(
        cas(store, &key, Some(b"a"), b"b", MINUTE).await,
        false,
        "compare_and_swap expecting an expired value (it counts as absent)",
    );
    check(
        cas(store, &key, None, b"b", 2 * MINUTE).await,
        true,
        "compare_and_swap expecting no value over an expired value",
    );
    clock.advance(Duration::from_secs(119));
    check(
        expect(store.get(&key).await, "get"),
        Some(b"b".to_vec()),
        "a value stored over an expired one lives its own TTL",
    );
    clock.advance(Duration::from_secs(1));
    check(
        expect(store.get(&key).await, "get"),
        None,
        "a value stored by compare_and_swap expires after its TTL",
    );

    // A swap from a live value gives the new value the new TTL, longer or shorter.
    let longer = ids.key("cas-expiry-longer");
    cas(store, &longer, None, b"a", MINUTE).await;
    clock.advance(Duration::from_secs(30));
    check(
        cas(store, &longer, Some(b"a"), b"b", 3 * MINUTE).await,
        true,
        "compare_and_swap from a live value",
    );
    clock.advance(Duration::from_secs(60));
    check(
        expect(store.get(&longer).await, "get"),
        Some(b"b".to_vec()),
        "the swapped value outlives the old value's expiry (the new, longer TTL)",
    );
    clock.advance(Duration::from_secs(119));
    check(
        expect(store.get(&longer).await, "get"),
        Some(b"b".to_vec()),
        "the swapped value one second before its TTL ends",
    );
    clock.advance(Duration::from_secs(1));
    check(
        expect(store.get(&longer).await, "get"),
        None,
        "the swapped value once its TTL ended",
    );

    let shorter = ids.key("cas-expiry-shorter");
    cas(store, &shorter, None, b"a", 10 * MINUTE).await;
    check(
        cas(store, &shorter, Some(b"a"), b"b", Duration::from_secs(10)).await,
        true,
        "compare_and_swap from a live value",
    );
    clock.advance(Duration::from_secs(9));
    check(
        expect(store.get(&shorter).await, "get"),
        Some(b"b".to_vec()),
        "the swapped value before its short TTL ends",
    );
    clock.advance(Duration::from_secs(1));
    check(
        expect(store.get(&shorter).await, "get"),
        None,
        "the swapped value once its TTL, shorter than the old value's, ended",
    );
}

/// 100 tasks swap from the same live value, each to its own new value.
pub(super) async fn concurrent_compare_and_swap<S: EphemeralStore>(store: &Arc<S>, ids: &Ids) {
    let key = ids.key("concurrent-cas");
    expect(
        store.insert_if_absent(&key, b"start", MINUTE).await,
        "insert_if_absent",
    );
    let results = race(store, |store, index| {
        let key = key.clone();
        async move {
            let new = format!("new-{index}");
            expect(
                store
                    .compare_and_swap(&key, Some(b"start"), new.as_bytes(), MINUTE)
                    .await,
                "compare_and_swap",
            )
        }
    })
    .await;
    check(
        winners(&results),
        1,
        "concurrent compare_and_swap from one value: number of winners",
    );
    check(
        expect(store.get(&key).await, "get"),
        Some(format!("new-{}", winner(&results)).into_bytes()),
        "the value after concurrent compare_and_swap is the winner's",
    );
}

/// 100 tasks swap from no value, on an absent key and on a key holding an expired value.
pub(super) async fn concurrent_compare_and_swap_from_none<S: EphemeralStore>(
    store: &Arc<S>,
    ids: &Ids,
    clock: &ManualClock,
) {
    let absent = ids.key("concurrent-cas-absent");
    let expired = ids.key("concurrent-cas-expired");
    expect(
        store.insert_if_absent(&expired, b"old", MINUTE).await,
        "insert_if_absent",
    );
    clock.advance(MINUTE);
    for (key, what) in [(absent, "an absent key"), (expired, "an expired value")] {
        let results = race(store, |store, index| {
            let key = key.clone();
            async move {
                let new = index.to_string();
                expect(
                    store
                        .compare_and_swap(&key, None, new.as_bytes(), MINUTE)
                        .await,
                    "compare_and_swap",
                )
            }
        })
        .await;
        check(
            winners(&results),
            1,
            &format!("concurrent compare_and_swap from no value over {what}: number of winners"),
        );
        check(
            expect(store.get(&key).await, "get"),
            Some(winner(&results).to_string().into_bytes()),
            &format!("the value after concurrent compare_and_swap over {what} is the winner's"),
        );
    }
}
