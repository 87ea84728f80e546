//! `SqliteStore` passes each trait's conformance suite, on a file database and in memory.
//!
//! Every test has its own store and clock: a suite expects time to move only when it moves it.

use std::sync::Arc;

use stepup_core::clock::ManualClock;
use stepup_store::conformance;
use stepup_store_sqlite::SqliteStore;
use tempfile::TempDir;

const START: u64 = 1_800_000_000;

/// A store on a fresh file in a temp dir (kept alive by the returned `TempDir`).
async fn file_store() -> (TempDir, Arc<SqliteStore>, ManualClock) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(START);
    let url = format!("sqlite://{}", dir.path().join("stepup.db").display());
    let store = SqliteStore::open_with_clock(&url, Arc::new(clock.clone()))
        .await
        .unwrap();
    (dir, Arc::new(store), clock)
}

/// A store on a private in-memory database.
async fn memory_store() -> (Arc<SqliteStore>, ManualClock) {
    let clock = ManualClock::at_unix(START);
    let store = SqliteStore::open_with_clock("sqlite::memory:", Arc::new(clock.clone()))
        .await
        .unwrap();
    (Arc::new(store), clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn factors_conform_on_a_file() {
    let (_dir, store, clock) = file_store().await;
    conformance::factors::run(Arc::clone(&store), clock.clone()).await;
    // A second run on the same store, which now holds the first run's data.
    conformance::factors::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn factors_conform_in_memory() {
    let (store, clock) = memory_store().await;
    conformance::factors::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ephemeral_state_conforms_on_a_file() {
    let (_dir, store, clock) = file_store().await;
    conformance::ephemeral::run(Arc::clone(&store), clock.clone()).await;
    conformance::ephemeral::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ephemeral_state_conforms_in_memory() {
    let (store, clock) = memory_store().await;
    conformance::ephemeral::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn devices_conform_on_a_file() {
    let (_dir, store, clock) = file_store().await;
    conformance::devices::run(Arc::clone(&store), clock.clone()).await;
    conformance::devices::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn devices_conform_in_memory() {
    let (store, clock) = memory_store().await;
    conformance::devices::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_conforms_on_a_file() {
    let (_dir, store, clock) = file_store().await;
    conformance::audit::run(Arc::clone(&store), clock.clone()).await;
    conformance::audit::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_conforms_in_memory() {
    let (store, clock) = memory_store().await;
    conformance::audit::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grants_conform_on_a_file() {
    let (_dir, store, clock) = file_store().await;
    conformance::grants::run(Arc::clone(&store), clock.clone()).await;
    conformance::grants::run(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grants_conform_in_memory() {
    let (store, clock) = memory_store().await;
    conformance::grants::run(store, clock).await;
}
