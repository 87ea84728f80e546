//! Each trait's conformance suite (100-way races included) on `PostgresStore`, each in a schema
//! of its own.

mod support;

use std::sync::Arc;

use stepup_core::clock::ManualClock;
use stepup_store::conformance;
use stepup_store_postgres::PostgresStore;
use support::TestSchema;

const START: u64 = 1_800_000_000;

/// A store in a fresh schema with its clock; `None` without a database.
async fn store() -> Option<(TestSchema, Arc<PostgresStore>, ManualClock)> {
    let schema = TestSchema::create().await?;
    let clock = ManualClock::at_unix(START);
    let store = schema.store(Arc::new(clock.clone())).await;
    Some((schema, Arc::new(store), clock))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn factor_store_conforms() {
    let Some((schema, store, clock)) = store().await else {
        return;
    };
    conformance::factors::run(Arc::clone(&store), clock.clone()).await;
    // A second run on the same store uses fresh names.
    conformance::factors::run(store, clock).await;
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ephemeral_store_conforms() {
    let Some((schema, store, clock)) = store().await else {
        return;
    };
    conformance::ephemeral::run(Arc::clone(&store), clock.clone()).await;
    conformance::ephemeral::run(store, clock).await;
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn device_store_conforms() {
    let Some((schema, store, clock)) = store().await else {
        return;
    };
    conformance::devices::run(Arc::clone(&store), clock.clone()).await;
    conformance::devices::run(store, clock).await;
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_store_conforms() {
    let Some((schema, store, clock)) = store().await else {
        return;
    };
    conformance::audit::run(Arc::clone(&store), clock.clone()).await;
    conformance::audit::run(store, clock).await;
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grant_store_conforms() {
    let Some((schema, store, clock)) = store().await else {
        return;
    };
    conformance::grants::run(Arc::clone(&store), clock.clone()).await;
    conformance::grants::run(store, clock).await;
    schema.drop_schema().await;
}
