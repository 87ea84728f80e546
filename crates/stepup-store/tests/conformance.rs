//! [`MemoryStore`] passes every conformance suite, alone and all together, more than once on the
//! same store.

use std::sync::Arc;

use stepup_core::clock::ManualClock;
use stepup_store::{MemoryStore, conformance};

fn store() -> (Arc<MemoryStore>, ManualClock) {
    let clock = ManualClock::at_unix(1_800_000_000);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    (Arc::new(store), clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn factor_store_conforms() {
    let (store, clock) = store();
    conformance::factors::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ephemeral_store_conforms() {
    let (store, clock) = store();
    conformance::ephemeral::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_store_conforms() {
    let (store, clock) = store();
    conformance::devices::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_store_conforms() {
    let (store, clock) = store();
    conformance::audit::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_suite_conforms_twice_on_one_store() {
    let (store, clock) = store();
    conformance::run_all(Arc::clone(&store), clock.clone()).await;
    conformance::run_all(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grant_store_conforms() {
    let (store, clock) = store();
    conformance::grants::run(Arc::clone(&store), clock.clone()).await;
    conformance::grants::run(store, clock).await;
}
