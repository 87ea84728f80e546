//! `ping` is a readiness check: a database that answers reads but refuses writes fails it.

use stepup_store::{FactorStore, Generation, StoreError};
use stepup_store_sqlite::SqliteStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ping_fails_on_a_read_only_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stepup.db");
    let store = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.ping().await.unwrap();
    store.advance_generation("u", 10).await.unwrap();
    store.pool().close().await;

    let read_only = SqliteStore::open(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .unwrap();
    assert_eq!(
        read_only.generation("u").await.unwrap(),
        Generation {
            value: 1,
            changed_at: Some(10)
        }
    );
    assert!(matches!(
        read_only.ping().await,
        Err(StoreError::Unavailable(_))
    ));
}
