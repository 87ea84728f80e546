//! The `EphemeralStore` conformance suite (100-way races included) on `RedisStore`, under a key
//! prefix of its own.

mod support;

use std::sync::Arc;

use stepup_core::clock::ManualClock;
use stepup_store::conformance;
use support::TestPrefix;

const START: u64 = 1_800_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ephemeral_store_conforms() {
    let Some(prefix) = TestPrefix::new() else {
        return;
    };
    let clock = ManualClock::at_unix(START);
    let store = Arc::new(prefix.store(Arc::new(clock.clone())).await);
    conformance::ephemeral::run(Arc::clone(&store), clock.clone()).await;
    // A second run on the same store uses fresh names.
    conformance::ephemeral::run(store, clock).await;
    prefix.clean_up().await;
}
