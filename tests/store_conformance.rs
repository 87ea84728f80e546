//! The store conformance suite on both backends, and SQLite persistence across re-opening.

use std::sync::Arc;
use std::time::Duration;

use stepup::{ManualClock, SharedClock};
use stepup_store::{
    EphemeralStore, FactorStore, MemoryStore, SqliteStore, TotpRecord, conformance,
};

const START: u64 = 1_800_000_000;

fn manual_clock() -> (ManualClock, SharedClock) {
    let clock = ManualClock::at_unix(START);
    let shared: SharedClock = Arc::new(clock.clone());
    (clock, shared)
}

fn record(secret: &str) -> TotpRecord {
    TotpRecord {
        sealed_secret: secret.to_owned(),
        algorithm: "SHA256".to_owned(),
        digits: 8,
        period: 30,
        active: false,
        last_used_step: None,
        created_at: START,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    let (clock, shared) = manual_clock();
    let store = MemoryStore::new().with_clock(shared);
    conformance::run(Arc::new(store.clone()), clock.clone()).await;
    // A second run on the same store uses fresh names.
    conformance::run(Arc::new(store), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("conformance.db");
    let (clock, shared) = manual_clock();
    let store = SqliteStore::open_with_clock(&format!("sqlite://{}", path.display()), shared)
        .await
        .expect("open the SQLite store");
    conformance::run(Arc::new(store), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_store_conforms() {
    let (clock, shared) = manual_clock();
    let store = SqliteStore::open_with_clock("sqlite::memory:", shared)
        .await
        .expect("open an in-memory SQLite store");
    conformance::run(Arc::new(store), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_data_survives_reopening() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("persist.db");
    let url = format!("sqlite:{}", path.display());
    let (clock, shared) = manual_clock();

    let store = SqliteStore::open_with_clock(&url, Arc::clone(&shared))
        .await
        .expect("open the SQLite store");
    assert!(
        store
            .put_pending_totp("alice", record("sealed"))
            .await
            .unwrap()
    );
    assert!(
        store
            .activate_totp("alice", 60_000_000, Vec::new())
            .await
            .unwrap()
    );
    store
        .replace_backup_codes(
            "alice",
            vec![stepup_store::BackupCodeHash {
                lookup: "lookup".to_owned(),
                hash: "hash".to_owned(),
            }],
        )
        .await
        .unwrap();
    assert!(
        store
            .insert_if_absent("challenge", b"payload", Duration::from_secs(300))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .increment("attempts", Duration::from_secs(300))
            .await
            .unwrap(),
        1
    );
    assert!(
        dir.path().join("persist.db-wal").exists(),
        "the database runs in WAL mode"
    );
    store.pool().close().await;
    drop(store);

    // Reopened by path, with the clock moved on but within the TTLs.
    clock.advance(Duration::from_secs(120));
    let store = SqliteStore::open(path.to_str().expect("UTF-8 path"))
        .await
        .expect("reopen the SQLite store")
        .with_clock(shared);
    assert_eq!(
        store.totp("alice").await.unwrap(),
        Some(TotpRecord {
            active: true,
            last_used_step: Some(60_000_000),
            ..record("sealed")
        })
    );
    assert!(!store.accept_totp_step("alice", 60_000_000).await.unwrap());
    assert!(store.accept_totp_step("alice", 60_000_001).await.unwrap());
    assert_eq!(
        store.backup_code_hash("alice", "lookup").await.unwrap(),
        Some("hash".to_owned())
    );
    assert_eq!(
        store.take("challenge").await.unwrap(),
        Some(b"payload".to_vec())
    );
    assert_eq!(
        store
            .increment("attempts", Duration::from_secs(300))
            .await
            .unwrap(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_open_migrates_empty_and_missing_files() {
    let dir = tempfile::tempdir().expect("temporary directory");

    // An existing, empty file.
    let empty = dir.path().join("empty.db");
    std::fs::File::create(&empty).expect("create an empty file");
    let store = SqliteStore::open(&format!("sqlite://{}", empty.display()))
        .await
        .expect("open an empty file");
    store.ping().await.unwrap();
    assert!(store.put_pending_totp("bob", record("s")).await.unwrap());
    assert!(
        store
            .insert_if_absent("k", b"v", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(
        store.increment("c", Duration::from_secs(60)).await.unwrap(),
        1
    );
    store.pool().close().await;

    // Opening it again finds the migrations applied and does not re-run them.
    let store = SqliteStore::open(empty.to_str().expect("UTF-8 path"))
        .await
        .expect("reopen the migrated file");
    assert_eq!(
        store.totp("bob").await.unwrap().map(|r| r.sealed_secret),
        Some("s".to_owned())
    );
    store.pool().close().await;

    // A missing file, in each accepted spelling.
    for (name, url) in [
        (
            "a.db",
            format!("sqlite://{}", dir.path().join("a.db").display()),
        ),
        (
            "b.db",
            format!("sqlite:{}", dir.path().join("b.db").display()),
        ),
        ("c.db", dir.path().join("c.db").display().to_string()),
    ] {
        let store = SqliteStore::open(&url)
            .await
            .unwrap_or_else(|error| panic!("open {url}: {error}"));
        assert!(dir.path().join(name).exists(), "{url} created {name}");
        assert_eq!(store.remaining_backup_codes("nobody").await.unwrap(), 0);
        store.pool().close().await;
    }
}
