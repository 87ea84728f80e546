//! Rows the store cannot read back (negative integers, an unknown status, written with raw SQL)
//! are `StoreError::Corrupt`, never a panic; values it cannot store are refused the same way,
//! changing nothing.

mod support;

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::ManualClock;
use stepup_store::{
    AuditRecord, AuditStore, CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus,
    DeviceRecord, DeviceStore, Enrollment, EphemeralStore, FactorStore, Generation, StoreError,
    StoreResult,
};
use stepup_store_postgres::PostgresStore;
use support::TestSchema;

const START: u64 = 1_800_000_000;

fn is_corrupt<T: std::fmt::Debug>(result: StoreResult<T>) -> bool {
    matches!(result, Err(StoreError::Corrupt(_)))
}

async fn raw(store: &PostgresStore, statement: &'static str) {
    sqlx::query(statement)
        .execute(store.pool())
        .await
        .expect("raw SQL");
}

fn credential(id: &str) -> Credential {
    Credential {
        user: "u".to_owned(),
        kind: "webauthn".to_owned(),
        id: id.to_owned(),
        status: CredentialStatus::Pending,
        label: None,
        payload: "p".to_owned(),
        counter: 0,
        created_at: START,
        last_used_at: None,
        generation: 0,
    }
}

fn key(id: &str) -> CredentialRef<'_> {
    CredentialRef {
        user: "u",
        kind: "webauthn",
        id,
    }
}

async fn store() -> Option<(TestSchema, PostgresStore)> {
    let schema = TestSchema::create().await?;
    let store = schema.store(Arc::new(ManualClock::at_unix(START))).await;
    Some((schema, store))
}

#[tokio::test]
async fn corrupt_factor_rows_are_reported() {
    let Some((schema, store)) = store().await else {
        return;
    };
    assert!(
        store
            .put_pending(credential("a"), Enrollment::Many)
            .await
            .unwrap()
    );
    raw(&store, "UPDATE credentials SET counter = -1 WHERE id = 'a'").await;
    assert!(is_corrupt(store.credential(key("a")).await));
    assert!(is_corrupt(store.credentials("u").await));
    assert!(is_corrupt(store.credentials_of_kind("webauthn").await));

    // An unknown status (the CHECK constraint dropped to write it).
    raw(&store, "UPDATE credentials SET counter = 0 WHERE id = 'a'").await;
    raw(
        &store,
        "ALTER TABLE credentials DROP CONSTRAINT credentials_status_check",
    )
    .await;
    raw(
        &store,
        "UPDATE credentials SET status = 'revoked' WHERE id = 'a'",
    )
    .await;
    assert!(is_corrupt(store.credential(key("a")).await));
    // A one-per-user enrollment reads the statuses of the kind: it is refused as corrupt.
    assert!(is_corrupt(
        store
            .put_pending(credential("b"), Enrollment::OnePerUser)
            .await
    ));
    assert_eq!(store.credential(key("b")).await.unwrap(), None);

    raw(
        &store,
        "INSERT INTO factor_failures (user_id, kind, streak) VALUES ('u', 'totp', -5)",
    )
    .await;
    assert!(is_corrupt(store.failures("u", "totp").await));
    assert!(is_corrupt(store.record_failure("u", "totp").await));

    raw(
        &store,
        "INSERT INTO generations (user_id, generation, changed_at, seq) VALUES ('u', 1, -1, 1)",
    )
    .await;
    assert!(is_corrupt(store.generation("u").await));
    assert!(is_corrupt(store.generation_changes(0, 10).await));
    raw(
        &store,
        "UPDATE generations SET generation = -1, changed_at = 0",
    )
    .await;
    assert!(is_corrupt(store.generation("u").await));
    raw(&store, "UPDATE generations SET generation = 1").await;
    assert_eq!(
        store.generation("u").await.unwrap(),
        Generation {
            value: 1,
            changed_at: Some(0)
        }
    );

    assert!(
        store
            .put_pending(credential("g"), Enrollment::Many)
            .await
            .unwrap()
    );
    raw(
        &store,
        "UPDATE credentials SET generation = -1 WHERE id = 'g'",
    )
    .await;
    assert!(is_corrupt(store.credential(key("g")).await));
    schema.drop_schema().await;
}

#[tokio::test]
async fn values_beyond_postgres_integers_are_refused_changing_nothing() {
    let Some((schema, store)) = store().await else {
        return;
    };
    let huge = Credential {
        counter: u64::MAX,
        ..credential("huge")
    };
    assert!(is_corrupt(store.put_pending(huge, Enrollment::Many).await));
    assert_eq!(store.credential(key("huge")).await.unwrap(), None);

    assert!(
        store
            .put_pending(credential("a"), Enrollment::Many)
            .await
            .unwrap()
    );
    assert!(is_corrupt(store.activate(key("a"), u64::MAX, None).await));
    let codes = CodeSet {
        kind: "backup_code".to_owned(),
        codes: vec![CodeHash {
            lookup: "l".to_owned(),
            hash: "h".to_owned(),
            expires_at: Some(u64::MAX),
        }],
    };
    assert!(is_corrupt(
        store.activate(key("a"), 1, Some(codes.clone())).await
    ));
    // Neither half happened.
    assert_eq!(
        store.credential(key("a")).await.unwrap().map(|c| c.status),
        Some(CredentialStatus::Pending)
    );
    assert!(is_corrupt(store.replace_codes("u", codes).await));
    assert_eq!(store.count_codes("u", "backup_code").await.unwrap(), 0);
    assert!(is_corrupt(store.advance_generation("u", u64::MAX).await));
    assert_eq!(store.generation("u").await.unwrap(), Generation::default());
    assert_eq!(store.generation_changes(0, 10).await.unwrap(), []);
    let stale = Credential {
        generation: u64::MAX,
        ..credential("g")
    };
    assert!(is_corrupt(
        store.put_pending(stale, Enrollment::OnePerUser).await
    ));
    assert_eq!(store.credential(key("g")).await.unwrap(), None);
    assert!(is_corrupt(
        store
            .insert_if_absent("k", b"v", Duration::from_secs(u64::MAX))
            .await
    ));
    schema.drop_schema().await;
}

#[tokio::test]
async fn corrupt_ephemeral_device_and_audit_rows_are_reported() {
    let Some((schema, store)) = store().await else {
        return;
    };
    raw(
        &store,
        "INSERT INTO counters (key, count, expires_at) VALUES ('c', -5, 4000000000)",
    )
    .await;
    assert!(is_corrupt(
        store.increment("c", Duration::from_secs(60)).await
    ));

    let device = DeviceRecord {
        id: "d".to_owned(),
        user: "u".to_owned(),
        token_hash: "t".to_owned(),
        created_at: START,
        last_used_at: START,
        expires_at: START + 60,
        mfa_at: START,
        address: None,
        user_agent: None,
        generation: 0,
    };
    assert!(is_corrupt(
        store
            .insert_device(DeviceRecord {
                id: "huge".to_owned(),
                token_hash: "huge-token".to_owned(),
                generation: u64::MAX,
                ..device.clone()
            })
            .await
    ));
    store.insert_device(device).await.unwrap();
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
        at: START,
        detail: "{}".to_owned(),
    };
    store.append_audit(event).await.unwrap();
    raw(&store, "UPDATE audit_events SET at = -5 WHERE id = 'e'").await;
    assert!(is_corrupt(store.audit_events("u", 10).await));
    schema.drop_schema().await;
}

#[tokio::test]
async fn a_generation_at_the_greatest_integer_is_refused_changing_nothing() {
    let Some((schema, store)) = store().await else {
        return;
    };
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
    assert_eq!(feed[0].seq, 1, "the refused move changed no position");
    schema.drop_schema().await;
}
