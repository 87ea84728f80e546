//! Expired ephemeral values and counters are purged by later writes, a bounded number at a time,
//! by the injected clock; live rows are never touched.

mod support;

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::ManualClock;
use stepup_store::EphemeralStore;
use stepup_store_postgres::PostgresStore;
use support::TestSchema;

const START: u64 = 1_800_000_000;

async fn rows(store: &PostgresStore, table: &str) -> i64 {
    let statement = match table {
        "ephemeral" => "SELECT COUNT(*) FROM ephemeral",
        _ => "SELECT COUNT(*) FROM counters",
    };
    sqlx::query_scalar(statement)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn later_writes_purge_expired_rows_in_bounded_batches() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let clock = ManualClock::at_unix(START);
    let store = schema.store(Arc::new(clock.clone())).await;
    // 300 short-lived values and counters (written directly, so no purge runs yet), one long-lived
    // of each.
    for table in ["ephemeral", "counters"] {
        let statement = match table {
            "ephemeral" => {
                "INSERT INTO ephemeral (key, value, expires_at) \
                 SELECT 'old-' || n, '\\x00', $1 FROM generate_series(1, 300) AS n"
            }
            _ => {
                "INSERT INTO counters (key, count, expires_at) \
                 SELECT 'old-' || n, 1, $1 FROM generate_series(1, 300) AS n"
            }
        };
        sqlx::query(statement)
            .bind(i64::try_from(START + 10).unwrap())
            .execute(store.pool())
            .await
            .unwrap();
    }
    let long = Duration::from_secs(3600);
    assert!(store.insert_if_absent("kept", b"v", long).await.unwrap());
    assert_eq!(store.increment("kept", long).await.unwrap(), 1);
    // That first write purged, but nothing had expired by the store's clock.
    assert_eq!(rows(&store, "ephemeral").await, 301);
    assert_eq!(rows(&store, "counters").await, 301);

    // Past their expiry: each purge removes at most 256 rows per table.
    clock.advance(Duration::from_secs(60));
    for index in 0..16 {
        store
            .increment(&format!("new-{index}"), long)
            .await
            .unwrap();
    }
    let (values, counters) = (
        rows(&store, "ephemeral").await,
        rows(&store, "counters").await,
    );
    assert_eq!(values, 301 - 256, "one purge ran, bounded");
    assert_eq!(counters, 301 + 16 - 256);
    for index in 0..16 {
        store.remove(&format!("new-{index}")).await.unwrap();
    }
    for index in 0..16 {
        assert!(
            store
                .insert_if_absent(&format!("more-{index}"), b"v", long)
                .await
                .unwrap()
        );
    }
    // The second purge took the rest of the expired rows; the live ones stayed.
    assert_eq!(rows(&store, "ephemeral").await, 1 + 16);
    assert_eq!(rows(&store, "counters").await, 1);
    assert_eq!(store.get("kept").await.unwrap(), Some(b"v".to_vec()));
    assert_eq!(store.increment("kept", long).await.unwrap(), 2);
    schema.drop_schema().await;
}
