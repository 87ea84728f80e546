//! Durable state survives closing and re-opening the database file, and two stores on one file
//! (two processes' pools) share it atomically.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::ManualClock;
use stepup_store::{
    AuditRecord, AuditStore, CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus,
    DeviceRecord, DeviceStore, Enrollment, EphemeralStore, FactorStore, Generation,
};
use stepup_store_sqlite::SqliteStore;
use tokio::sync::Barrier;

const START: u64 = 1_800_000_000;

const KEY: CredentialRef<'static> = CredentialRef {
    user: "alice",
    kind: "webauthn",
    id: "passkey-1",
};

fn url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("stepup.db").display())
}

async fn open(url: &str, clock: &ManualClock) -> SqliteStore {
    SqliteStore::open_with_clock(url, Arc::new(clock.clone()))
        .await
        .unwrap()
}

fn passkey() -> Credential {
    Credential {
        user: KEY.user.to_owned(),
        kind: KEY.kind.to_owned(),
        id: KEY.id.to_owned(),
        status: CredentialStatus::Pending,
        label: None,
        payload: r#"{"public_key":"pk"}"#.to_owned(),
        counter: 0,
        created_at: START,
        last_used_at: None,
        generation: 2,
    }
}

fn code(index: u32, expires_at: Option<u64>) -> CodeHash {
    CodeHash {
        lookup: format!("lookup-{index}"),
        hash: format!("$argon2id$hash-{index}"),
        expires_at,
    }
}

fn device() -> DeviceRecord {
    DeviceRecord {
        id: "device-1".to_owned(),
        user: "alice".to_owned(),
        token_hash: "token-hash-1".to_owned(),
        created_at: START,
        last_used_at: START + 5,
        expires_at: START + 86_400,
        mfa_at: START - 3,
        address: Some("192.0.2.7".to_owned()),
        user_agent: Some("persistence/1.0".to_owned()),
        generation: 2,
    }
}

fn event() -> AuditRecord {
    AuditRecord {
        id: "event-1".to_owned(),
        user: "alice".to_owned(),
        kind: "webauthn_enrolled".to_owned(),
        at: START,
        detail: r#"{"id":"passkey-1"}"#.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn durable_state_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir);
    let clock = ManualClock::at_unix(START);

    let store = open(&url, &clock).await;
    assert!(
        store
            .put_pending(passkey(), Enrollment::Many)
            .await
            .unwrap()
    );
    let backup = CodeSet {
        kind: "backup_code".to_owned(),
        codes: (1..=3).map(|index| code(index, None)).collect(),
    };
    assert!(store.activate(KEY, 4, Some(backup)).await.unwrap());
    assert!(
        store
            .advance_counter(KEY, 9, Some(r#"{"public_key":"pk2"}"#), START + 10)
            .await
            .unwrap()
    );
    assert!(store.set_label(KEY, Some("laptop")).await.unwrap());
    assert!(
        store
            .consume_code("alice", "backup_code", "lookup-2")
            .await
            .unwrap()
    );
    let sms = CodeSet {
        kind: "sms".to_owned(),
        codes: vec![code(7, Some(START + 300))],
    };
    store.replace_codes("alice", sms).await.unwrap();
    for _ in 0..3 {
        store.record_failure("alice", "totp").await.unwrap();
    }
    for at in [START + 20, START + 30] {
        store.advance_generation("alice", at).await.unwrap();
    }
    store.advance_generation("bob", START + 25).await.unwrap();
    store.insert_device(device()).await.unwrap();
    store.append_audit(event()).await.unwrap();
    assert!(
        store
            .insert_if_absent("mfa_token:t", b"alice", Duration::from_secs(300))
            .await
            .unwrap()
    );
    store.pool().close().await;
    drop(store);

    let store = open(&url, &clock).await;
    let expected = Credential {
        status: CredentialStatus::Active,
        label: Some("laptop".to_owned()),
        payload: r#"{"public_key":"pk2"}"#.to_owned(),
        counter: 9,
        last_used_at: Some(START + 10),
        ..passkey()
    };
    assert_eq!(store.credential(KEY).await.unwrap(), Some(expected.clone()));
    assert_eq!(store.credentials("alice").await.unwrap(), vec![expected]);
    assert_eq!(store.count_codes("alice", "backup_code").await.unwrap(), 2);
    assert_eq!(
        store
            .code_hash("alice", "backup_code", "lookup-3")
            .await
            .unwrap(),
        Some("$argon2id$hash-3".to_owned())
    );
    assert_eq!(
        store
            .code_hash("alice", "backup_code", "lookup-2")
            .await
            .unwrap(),
        None,
        "a consumed code stays consumed"
    );
    assert_eq!(store.count_codes("alice", "sms").await.unwrap(), 1);
    assert_eq!(store.failures("alice", "totp").await.unwrap(), 3);
    let alice = Generation {
        value: 2,
        changed_at: Some(START + 30),
    };
    assert_eq!(store.generation("alice").await.unwrap(), alice);
    let feed: Vec<(u64, String, Generation)> = store
        .generation_changes(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|change| (change.seq, change.user, change.generation))
        .collect();
    let bob = Generation {
        value: 1,
        changed_at: Some(START + 25),
    };
    assert_eq!(
        feed,
        [(2, "alice".to_owned(), alice), (3, "bob".to_owned(), bob)],
        "each user once, at the position of the last move"
    );
    // The feed goes on where it stopped.
    store.advance_generation("bob", START + 40).await.unwrap();
    assert_eq!(
        store.generation_changes(3, 10).await.unwrap()[0].seq,
        4,
        "the next position after re-opening"
    );
    assert_eq!(
        store.device_by_token("token-hash-1").await.unwrap(),
        Some(device())
    );
    assert_eq!(
        store.audit_events("alice", 10).await.unwrap(),
        vec![event()]
    );
    assert_eq!(
        store.take("mfa_token:t").await.unwrap(),
        Some(b"alice".to_vec())
    );

    // The expiry stored with the SMS code is judged after re-opening too.
    clock.advance(Duration::from_secs(300));
    assert_eq!(store.count_codes("alice", "sms").await.unwrap(), 0);
    assert!(
        !store
            .consume_code("alice", "sms", "lookup-7")
            .await
            .unwrap()
    );
}

/// `RACERS` tasks, half on each of two stores opened separately on one file, released together.
async fn race_two_stores<F, Fut>(a: &Arc<SqliteStore>, b: &Arc<SqliteStore>, op: F) -> usize
where
    F: Fn(Arc<SqliteStore>) -> Fut,
    Fut: Future<Output = bool> + Send + 'static,
{
    const RACERS: usize = 40;
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|index| {
            let store = Arc::clone(if index % 2 == 0 { a } else { b });
            let barrier = Arc::clone(&barrier);
            let future = op(store);
            tokio::spawn(async move {
                barrier.wait().await;
                future.await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    winners
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_let_exactly_one_caller_win() {
    let dir = tempfile::tempdir().unwrap();
    let url = url(&dir);
    let clock = ManualClock::at_unix(START);
    let a = Arc::new(open(&url, &clock).await);
    let b = Arc::new(open(&url, &clock).await);

    let codes = CodeSet {
        kind: "backup_code".to_owned(),
        codes: vec![code(1, None)],
    };
    assert!(
        a.put_pending(passkey(), Enrollment::OnePerUser)
            .await
            .unwrap()
    );
    let activations = race_two_stores(&a, &b, |store| {
        let codes = codes.clone();
        async move { store.activate(KEY, 1, Some(codes)).await.unwrap() }
    })
    .await;
    assert_eq!(activations, 1, "activations");

    let consumed = race_two_stores(&a, &b, |store| async move {
        store
            .consume_code("alice", "backup_code", "lookup-1")
            .await
            .unwrap()
    })
    .await;
    assert_eq!(consumed, 1, "consumptions of one code");

    let advanced = race_two_stores(&a, &b, |store| async move {
        store.advance_counter(KEY, 2, None, START).await.unwrap()
    })
    .await;
    assert_eq!(advanced, 1, "advances to one counter");

    assert!(
        a.insert_if_absent("k", b"v", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let swapped = race_two_stores(&a, &b, |store| async move {
        store
            .compare_and_swap("k", Some(b"v"), b"w", Duration::from_secs(60))
            .await
            .unwrap()
    })
    .await;
    assert_eq!(swapped, 1, "compare-and-swaps from one value");
    assert_eq!(b.get("k").await.unwrap(), Some(b"w".to_vec()));

    let disabled = race_two_stores(&a, &b, |store| async move {
        store.disable_credential(KEY).await.unwrap()
    })
    .await;
    assert_eq!(disabled, 1, "disablings of one active credential");

    // Every move of a generation counts, each at its own position of the feed.
    let values = Arc::new(std::sync::Mutex::new(Vec::new()));
    let moved = race_two_stores(&a, &b, |store| {
        let values = Arc::clone(&values);
        async move {
            let generation = store.advance_generation("alice", START).await.unwrap();
            values.lock().unwrap().push(generation.value);
            true
        }
    })
    .await;
    let mut values = values.lock().unwrap().clone();
    values.sort_unstable();
    assert_eq!(values, (1..=moved as u64).collect::<Vec<_>>());
    assert_eq!(
        b.generation("alice").await.unwrap().value,
        moved as u64,
        "no move lost"
    );
    let feed = a.generation_changes(0, 100).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].seq, moved as u64, "one position per move");
}
