//! The conformance suites of every trait on the in-memory and SQLite backends, and SQLite opening
//! empty and missing files. (Persistence across re-opening is `stepup-store-sqlite`'s own test.)

use std::sync::Arc;
use std::time::Duration;

use stepup::SqliteStore;
use stepup::clock::{ManualClock, SharedClock};
use stepup_store::{
    CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus, Enrollment, EphemeralStore,
    FactorStore, MemoryStore, conformance,
};

const START: u64 = 1_800_000_000;

fn manual_clock() -> (ManualClock, SharedClock) {
    let clock = ManualClock::at_unix(START);
    let shared: SharedClock = Arc::new(clock.clone());
    (clock, shared)
}

const BOB_TOTP: CredentialRef<'static> = CredentialRef {
    user: "bob",
    kind: "totp",
    id: "totp",
};

fn pending(payload: &str) -> Credential {
    Credential {
        user: BOB_TOTP.user.to_owned(),
        kind: BOB_TOTP.kind.to_owned(),
        id: BOB_TOTP.id.to_owned(),
        status: CredentialStatus::Pending,
        label: None,
        payload: payload.to_owned(),
        counter: 0,
        created_at: START,
        last_used_at: None,
        generation: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    let (clock, shared) = manual_clock();
    let store = MemoryStore::new().with_clock(shared);
    conformance::run_all(Arc::new(store.clone()), clock.clone()).await;
    // A second run on the same store uses fresh names.
    conformance::run_all(Arc::new(store), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("conformance.db");
    let (clock, shared) = manual_clock();
    let store = SqliteStore::open_with_clock(&format!("sqlite://{}", path.display()), shared)
        .await
        .expect("open the SQLite store");
    conformance::run_all(Arc::new(store), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_in_memory_store_conforms() {
    let (clock, shared) = manual_clock();
    let store = SqliteStore::open_with_clock("sqlite::memory:", shared)
        .await
        .expect("open an in-memory SQLite store");
    conformance::run_all(Arc::new(store), clock).await;
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
    assert!(
        store
            .put_pending(pending("s"), Enrollment::OnePerUser)
            .await
            .unwrap()
    );
    let codes = CodeSet {
        kind: "backup_code".to_owned(),
        codes: vec![CodeHash {
            lookup: "lookup".to_owned(),
            hash: "hash".to_owned(),
            expires_at: None,
        }],
    };
    assert!(store.activate(BOB_TOTP, 7, Some(codes)).await.unwrap());
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

    // Opening it again finds the migrations applied and does not re-run them: the rows are
    // still there.
    let store = SqliteStore::open(empty.to_str().expect("UTF-8 path"))
        .await
        .expect("reopen the migrated file");
    let credential = store.credential(BOB_TOTP).await.unwrap().expect("kept");
    assert_eq!(credential.payload, "s");
    assert_eq!(credential.status, CredentialStatus::Active);
    assert_eq!(credential.counter, 7);
    assert_eq!(store.count_codes("bob", "backup_code").await.unwrap(), 1);
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
        assert_eq!(store.count_codes("nobody", "backup_code").await.unwrap(), 0);
        assert!(store.credentials("nobody").await.unwrap().is_empty());
        store.pool().close().await;
    }
}
