//! Values SQLite cannot hold and stored rows the traits cannot represent are
//! `StoreError::Corrupt`, never a panic, a wrong answer or a half-done write; and no error carries
//! a bound value.

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::ManualClock;
use stepup_store::{
    AuditRecord, AuditStore, CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus,
    DeviceRecord, DeviceStore, Enrollment, EphemeralStore, FactorStore, Generation, StoreError,
    StoreResult,
};
use stepup_store_sqlite::SqliteStore;

const START: u64 = 1_800_000_000;

const KEY: CredentialRef<'static> = CredentialRef {
    user: "u",
    kind: "totp",
    id: "totp",
};

/// A payload no error may ever show.
const SECRET: &str = "sealed-secret-never-in-errors";

async fn store() -> SqliteStore {
    SqliteStore::open_with_clock("sqlite::memory:", Arc::new(ManualClock::at_unix(START)))
        .await
        .unwrap()
}

/// Runs raw SQL on the store's (single, in-memory) connection.
async fn raw(store: &SqliteStore, sql: &'static str) {
    sqlx::query(sql).execute(store.pool()).await.unwrap();
}

fn is_corrupt<T: std::fmt::Debug>(result: StoreResult<T>) -> bool {
    matches!(result, Err(StoreError::Corrupt(_)))
}

fn credential(counter: u64) -> Credential {
    Credential {
        user: KEY.user.to_owned(),
        kind: KEY.kind.to_owned(),
        id: KEY.id.to_owned(),
        status: CredentialStatus::Pending,
        label: None,
        payload: SECRET.to_owned(),
        counter,
        created_at: START,
        last_used_at: None,
        generation: 0,
    }
}

/// An active credential `KEY` with counter 5.
async fn active_credential(store: &SqliteStore) {
    assert!(
        store
            .put_pending(credential(0), Enrollment::OnePerUser)
            .await
            .unwrap()
    );
    assert!(store.activate(KEY, 5, None).await.unwrap());
}

/// Every read of `KEY` reports corruption.
async fn reads_are_corrupt(store: &SqliteStore) {
    assert!(is_corrupt(store.credential(KEY).await));
    assert!(is_corrupt(store.credentials("u").await));
    assert!(is_corrupt(store.credentials_of_kind("totp").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stored_status_out_of_range_is_corrupt() {
    let store = store().await;
    active_credential(&store).await;
    // The schema's CHECK forbids it; a row written past it must still not read as a status.
    raw(&store, "PRAGMA ignore_check_constraints = ON").await;
    raw(&store, "UPDATE credentials SET status = 'revoked'").await;
    raw(&store, "PRAGMA ignore_check_constraints = OFF").await;
    reads_are_corrupt(&store).await;
    // Neither pending nor active: it neither activates, advances nor is disabled.
    assert!(!store.activate(KEY, 6, None).await.unwrap());
    assert!(!store.advance_counter(KEY, 6, None, START).await.unwrap());
    assert!(!store.disable_credential(KEY).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_schema_refuses_an_unknown_status() {
    let store = store().await;
    active_credential(&store).await;
    let refused = sqlx::query("UPDATE credentials SET status = 'revoked'")
        .execute(store.pool())
        .await;
    assert!(refused.is_err());
    assert_eq!(
        store.credential(KEY).await.unwrap().map(|c| c.status),
        Some(CredentialStatus::Active)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stored_integers_out_of_range_are_corrupt() {
    for sql in [
        "UPDATE credentials SET counter = -1",
        "UPDATE credentials SET created_at = -1",
        "UPDATE credentials SET last_used_at = -1",
        "UPDATE credentials SET generation = -1",
        // Not an integer at all.
        "UPDATE credentials SET counter = 'seven'",
        "UPDATE credentials SET counter = 1.5",
    ] {
        let store = store().await;
        active_credential(&store).await;
        raw(&store, sql).await;
        reads_are_corrupt(&store).await;
    }

    let store = store().await;
    store.record_failure("u", "totp").await.unwrap();
    raw(&store, "UPDATE factor_failures SET streak = -3").await;
    assert!(is_corrupt(store.failures("u", "totp").await));
    assert!(is_corrupt(store.record_failure("u", "totp").await));

    for sql in [
        "UPDATE generations SET generation = -1",
        "UPDATE generations SET changed_at = -1",
    ] {
        let store = self::store().await;
        store.advance_generation("u", START).await.unwrap();
        raw(&store, sql).await;
        assert!(is_corrupt(store.generation("u").await));
        assert!(is_corrupt(store.generation_changes(0, 10).await));
    }

    store.increment("k", Duration::from_secs(60)).await.unwrap();
    raw(&store, "UPDATE counters SET count = -5").await;
    assert!(is_corrupt(
        store.increment("k", Duration::from_secs(60)).await
    ));
    assert!(is_corrupt(store.decrement("k").await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_beyond_sqlite_integers_are_refused_changing_nothing() {
    let store = store().await;
    assert!(is_corrupt(
        store
            .put_pending(credential(u64::MAX), Enrollment::Many)
            .await
    ));
    assert_eq!(store.credential(KEY).await.unwrap(), None);

    assert!(
        store
            .put_pending(credential(0), Enrollment::OnePerUser)
            .await
            .unwrap()
    );
    let codes = CodeSet {
        kind: "backup_code".to_owned(),
        codes: vec![CodeHash {
            lookup: "l".to_owned(),
            hash: "h".to_owned(),
            expires_at: None,
        }],
    };
    assert!(is_corrupt(
        store.activate(KEY, u64::MAX, Some(codes.clone())).await
    ));
    assert_eq!(
        store.credential(KEY).await.unwrap().map(|c| c.status),
        Some(CredentialStatus::Pending),
        "a refused activation leaves the credential pending"
    );
    assert_eq!(store.count_codes("u", "backup_code").await.unwrap(), 0);

    assert!(store.activate(KEY, 5, Some(codes)).await.unwrap());
    assert!(is_corrupt(
        store.advance_counter(KEY, u64::MAX, None, START).await
    ));
    assert!(is_corrupt(
        store.advance_counter(KEY, 6, None, u64::MAX).await
    ));
    assert_eq!(
        store.credential(KEY).await.unwrap().map(|c| c.counter),
        Some(5)
    );

    // A set with one bad expiry is refused whole: the earlier set stays.
    let bad = CodeSet {
        kind: "backup_code".to_owned(),
        codes: vec![
            CodeHash {
                lookup: "m".to_owned(),
                hash: "h".to_owned(),
                expires_at: Some(START + 60),
            },
            CodeHash {
                lookup: "n".to_owned(),
                hash: "h".to_owned(),
                expires_at: Some(u64::MAX),
            },
        ],
    };
    assert!(is_corrupt(store.replace_codes("u", bad).await));
    assert_eq!(store.count_codes("u", "backup_code").await.unwrap(), 1);
    assert!(
        store
            .code_hash("u", "backup_code", "l")
            .await
            .unwrap()
            .is_some()
    );

    assert!(is_corrupt(store.advance_generation("u", u64::MAX).await));
    assert_eq!(store.generation("u").await.unwrap(), Generation::default());
    assert_eq!(store.generation_changes(0, 10).await.unwrap(), []);
    assert!(is_corrupt(
        store
            .put_pending(
                Credential {
                    generation: u64::MAX,
                    ..credential(0)
                },
                Enrollment::OnePerUser,
            )
            .await
    ));

    // A TTL reaching beyond SQLite's integers.
    assert!(is_corrupt(
        store.insert_if_absent("k", b"v", Duration::MAX).await
    ));
    assert!(is_corrupt(store.increment("c", Duration::MAX).await));
    assert_eq!(store.get("k").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_generation_at_the_greatest_integer_is_refused_changing_nothing() {
    let store = store().await;
    store.advance_generation("u", START).await.unwrap();
    raw(
        &store,
        "UPDATE generations SET generation = 9223372036854775807",
    )
    .await;
    assert!(is_corrupt(store.advance_generation("u", START + 1).await));
    assert_eq!(
        store.generation("u").await.unwrap(),
        Generation {
            value: i64::MAX as u64,
            changed_at: Some(START),
        }
    );
    let feed = store.generation_changes(0, 10).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].seq, 1, "the refused move took no position");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_failure_streak_saturates() {
    let store = store().await;
    store.record_failure("u", "totp").await.unwrap();
    raw(
        &store,
        "UPDATE factor_failures SET streak = 9223372036854775807",
    )
    .await;
    assert_eq!(
        store.record_failure("u", "totp").await.unwrap(),
        i64::MAX as u64
    );
    assert_eq!(store.failures("u", "totp").await.unwrap(), i64::MAX as u64);
}

fn device(id: &str, token_hash: &str) -> DeviceRecord {
    DeviceRecord {
        id: id.to_owned(),
        user: "u".to_owned(),
        token_hash: token_hash.to_owned(),
        created_at: START,
        last_used_at: START,
        expires_at: START + 86_400,
        mfa_at: START,
        address: None,
        user_agent: None,
        generation: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corrupt_device_and_audit_rows_are_reported() {
    let store = store().await;
    assert!(is_corrupt(
        store
            .insert_device(DeviceRecord {
                expires_at: u64::MAX,
                ..device("huge", "huge-token")
            })
            .await
    ));
    assert!(is_corrupt(
        store.touch_device("huge", u64::MAX, None, None).await
    ));
    assert!(is_corrupt(
        store
            .insert_device(DeviceRecord {
                generation: u64::MAX,
                ..device("huge", "huge-token")
            })
            .await
    ));
    store.insert_device(device("d", "t")).await.unwrap();
    assert_eq!(store.devices("u").await.unwrap(), vec![device("d", "t")]);
    raw(&store, "UPDATE devices SET mfa_at = -1 WHERE id = 'd'").await;
    assert!(is_corrupt(store.device_by_token("t").await));
    assert!(is_corrupt(store.devices("u").await));
    raw(
        &store,
        "UPDATE devices SET mfa_at = 0, generation = -1 WHERE id = 'd'",
    )
    .await;
    assert!(is_corrupt(store.device_by_token("t").await));

    let event = AuditRecord {
        id: "e".to_owned(),
        user: "u".to_owned(),
        kind: "k".to_owned(),
        at: u64::MAX,
        detail: "{}".to_owned(),
    };
    assert!(is_corrupt(store.append_audit(event.clone()).await));
    store
        .append_audit(AuditRecord { at: 5, ..event })
        .await
        .unwrap();
    assert_eq!(store.audit_events("u", usize::MAX).await.unwrap().len(), 1);
    raw(&store, "UPDATE audit_events SET at = -5 WHERE id = 'e'").await;
    assert!(is_corrupt(store.audit_events("u", 10).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_never_carry_bound_values() {
    let store = store().await;
    let token_hash = "token-hash-never-in-errors";
    store.insert_device(device("d", token_hash)).await.unwrap();
    // A taken token hash is refused, the stored device left alone.
    let taken = store.insert_device(device("other", token_hash)).await;
    let Err(StoreError::Unavailable(message)) = taken else {
        panic!("a taken token hash must be refused: {taken:?}");
    };
    assert!(!message.contains(token_hash), "{message}");
    assert!(!message.contains("other"), "{message}");
    assert_eq!(
        store.devices("u").await.unwrap(),
        vec![device("d", token_hash)]
    );

    let refused = store
        .put_pending(credential(u64::MAX), Enrollment::Many)
        .await;
    let Err(error) = refused else {
        panic!("an out-of-range counter must be refused");
    };
    let message = error.to_string();
    assert!(!message.contains(SECRET), "{message}");
    assert!(!message.contains(&u64::MAX.to_string()), "{message}");

    active_credential(&store).await;
    raw(
        &store,
        "UPDATE credentials SET counter = 'sealed-secret-never-in-errors'",
    )
    .await;
    let Err(error) = store.credential(KEY).await else {
        panic!("a text counter must be refused");
    };
    assert!(!error.to_string().contains(SECRET), "{error}");
}
