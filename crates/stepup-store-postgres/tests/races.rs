//! Races on the calls this backend makes with a transaction (a one-per-user enrollment against an
//! activation, replacing code sets, remembering devices): exactly one winner, losers get `false`
//! rather than an error, and no mixed state.

mod support;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use stepup_core::clock::ManualClock;
use stepup_store::{
    CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus, DeviceRecord, DeviceStore,
    Enrollment, FactorStore,
};
use stepup_store_postgres::PostgresStore;
use support::TestSchema;
use tokio::sync::Barrier;

const START: u64 = 1_800_000_000;
const RACERS: usize = 50;

async fn store() -> Option<(TestSchema, Arc<PostgresStore>)> {
    let schema = TestSchema::create().await?;
    let store = schema.store(Arc::new(ManualClock::at_unix(START))).await;
    Some((schema, Arc::new(store)))
}

/// Runs `op(store, i)` for each i in `0..count`, all started together.
async fn race<T, F, Fut>(store: &Arc<PostgresStore>, count: usize, op: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Arc<PostgresStore>, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|index| {
            let barrier = Arc::clone(&barrier);
            let work = op(Arc::clone(store), index);
            tokio::spawn(async move {
                barrier.wait().await;
                work.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(count);
    for task in tasks {
        results.push(task.await.expect("racing task"));
    }
    results
}

fn totp(id: &str) -> Credential {
    Credential {
        user: "alice".to_owned(),
        kind: "totp".to_owned(),
        id: id.to_owned(),
        status: CredentialStatus::Pending,
        label: None,
        payload: format!("secret of {id}"),
        counter: 0,
        created_at: START,
        last_used_at: None,
        generation: 0,
    }
}

fn code_set(tag: usize) -> CodeSet {
    CodeSet {
        kind: "backup_code".to_owned(),
        codes: (0..10)
            .map(|index| CodeHash {
                lookup: format!("set{tag}-code{index}"),
                hash: format!("hash{tag}"),
                expires_at: None,
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_per_user_enrollments_race_with_an_activation() {
    let Some((schema, store)) = store().await else {
        return;
    };
    assert!(
        store
            .put_pending(totp("first"), Enrollment::OnePerUser)
            .await
            .unwrap()
    );
    // Racer 0 activates the first credential; the others enroll replacements.
    let results = race(&store, RACERS, |store, index| async move {
        if index == 0 {
            let key = CredentialRef {
                user: "alice",
                kind: "totp",
                id: "first",
            };
            store.activate(key, 1, Some(code_set(0))).await
        } else {
            let credential = totp(&format!("replacement-{index}"));
            store.put_pending(credential, Enrollment::OnePerUser).await
        }
    })
    .await;
    let results: Vec<bool> = results
        .into_iter()
        .map(|result| result.expect("no racer fails"))
        .collect();
    let stored = store.credentials("alice").await.unwrap();
    assert_eq!(stored.len(), 1, "one credential of the kind: {stored:?}");
    if results[0] {
        // Activated before any replacement: every later enrollment was refused.
        assert!(results[1..].iter().all(|won| !won), "{results:?}");
        assert_eq!(stored[0].id, "first");
        assert_eq!(stored[0].status, CredentialStatus::Active);
        assert_eq!(store.count_codes("alice", "backup_code").await.unwrap(), 10);
    } else {
        // A replacement came first: the activation found nothing pending to turn active.
        assert_eq!(stored[0].status, CredentialStatus::Pending);
        assert_ne!(stored[0].id, "first");
        assert_eq!(store.count_codes("alice", "backup_code").await.unwrap(), 0);
    }
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_one_per_user_enrollments_leave_one_pending_credential() {
    let Some((schema, store)) = store().await else {
        return;
    };
    let results = race(&store, RACERS, |store, index| async move {
        let credential = totp(&format!("enrollment-{index}"));
        store.put_pending(credential, Enrollment::OnePerUser).await
    })
    .await;
    // Each replaced the pending one before it.
    assert!(results.into_iter().all(|result| result.unwrap()));
    let stored = store.credentials("alice").await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].status, CredentialStatus::Pending);
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_activations_with_codes_have_one_winner_and_its_codes() {
    let Some((schema, store)) = store().await else {
        return;
    };
    assert!(
        store
            .put_pending(totp("app"), Enrollment::OnePerUser)
            .await
            .unwrap()
    );
    let results = race(&store, RACERS, |store, index| async move {
        let key = CredentialRef {
            user: "alice",
            kind: "totp",
            id: "app",
        };
        store.activate(key, 1, Some(code_set(index))).await
    })
    .await;
    let winners: Vec<usize> = results
        .into_iter()
        .enumerate()
        .filter_map(|(index, result)| result.expect("no racer fails").then_some(index))
        .collect();
    assert_eq!(winners.len(), 1, "{winners:?}");
    let winner = winners[0];
    assert_eq!(store.count_codes("alice", "backup_code").await.unwrap(), 10);
    assert_eq!(
        store
            .code_hash("alice", "backup_code", &format!("set{winner}-code3"))
            .await
            .unwrap(),
        Some(format!("hash{winner}"))
    );
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_code_replacements_leave_one_whole_set() {
    let Some((schema, store)) = store().await else {
        return;
    };
    let results = race(&store, RACERS, |store, index| async move {
        store.replace_codes("alice", code_set(index)).await
    })
    .await;
    assert!(results.into_iter().all(|result| result.is_ok()));
    let hashes: HashSet<Option<String>> = {
        let mut hashes = HashSet::new();
        for tag in 0..RACERS {
            for index in 0..10 {
                let lookup = format!("set{tag}-code{index}");
                hashes.insert(
                    store
                        .code_hash("alice", "backup_code", &lookup)
                        .await
                        .unwrap(),
                );
            }
        }
        hashes
    };
    // Ten codes of a single set, never a union of sets.
    assert_eq!(store.count_codes("alice", "backup_code").await.unwrap(), 10);
    assert_eq!(hashes.len(), 2, "one set's hash, and None: {hashes:?}");
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_devices_of_one_user_are_all_remembered() {
    let Some((schema, store)) = store().await else {
        return;
    };
    // Expired devices (written directly: an insert deletes the user's expired ones), which each
    // racing insert then tries to delete first.
    sqlx::query(
        "INSERT INTO devices (id, user_id, token_hash, created_at, last_used_at, expires_at, \
         mfa_at) SELECT 'expired-' || n, 'alice', 'expired-token-' || n, $1, $1, $2, $1 \
         FROM generate_series(1, 10) AS n",
    )
    .bind(i64::try_from(START - 100).unwrap())
    .bind(i64::try_from(START - 1).unwrap())
    .execute(store.pool())
    .await
    .unwrap();
    let results = race(&store, RACERS, |store, index| async move {
        let device = DeviceRecord {
            id: format!("device-{index}"),
            user: "alice".to_owned(),
            token_hash: format!("token-{index}"),
            created_at: START,
            last_used_at: START,
            expires_at: START + 3600,
            mfa_at: START,
            address: None,
            user_agent: None,
            generation: 0,
        };
        store.insert_device(device).await
    })
    .await;
    assert!(results.into_iter().all(|result| result.is_ok()));
    assert_eq!(store.devices("alice").await.unwrap().len(), RACERS);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM devices")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(
        stored,
        i64::try_from(RACERS).unwrap(),
        "the expired ones are gone"
    );
    schema.drop_schema().await;
}
