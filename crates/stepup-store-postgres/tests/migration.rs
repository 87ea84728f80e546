//! A database at version 2, with token marks, upgrades to per-user generations: each mark
//! becomes generation 1 changed at the second of its reset, credentials and devices stored
//! before are of generation 0, and the feed goes on after the moved marks; re-opening changes
//! nothing, and a failed upgrade changes nothing either.

mod support;

use std::sync::Arc;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use stepup_core::clock::ManualClock;
use stepup_store::{
    Credential, CredentialRef, CredentialStatus, DeviceRecord, DeviceStore, Enrollment,
    FactorStore, Generation, GenerationChange, StoreError,
};
use stepup_store_postgres::PostgresStore;
use support::TestSchema;

const START: u64 = 1_800_000_000;

/// Applies this crate's migrations up to `version` only, as a store of that version did.
async fn migrate_to(pool: &PgPool, version: i64) {
    let migrations = sqlx::migrate!("./migrations")
        .iter()
        .filter(|migration| migration.version <= version)
        .cloned()
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name("_stepup_store_migrations");
    migrator.run(pool).await.unwrap();
}

/// Version-2 rows: alice with an active TOTP credential and a pending passkey, a token mark (her
/// reset at `START`, written as `START + 1`) and a remembered device; bob with a mark at 0 (which
/// voided nothing) and a pending TOTP credential; carol with an active phone and no mark.
async fn insert_v2_rows(pool: &PgPool) {
    for statement in [
        format!(
            "INSERT INTO credentials (user_id, kind, id, status, label, payload, counter, \
             created_at, last_used_at) VALUES \
             ('alice', 'totp', 'totp', 'active', 'phone', 'sealed-alice', 77, {START}, {used}), \
             ('alice', 'webauthn', 'key-1', 'pending', NULL, 'passkey-alice', 0, {later}, NULL), \
             ('bob', 'totp', 'totp', 'pending', NULL, 'sealed-bob', 0, {START}, NULL), \
             ('carol', 'sms', 'phone', 'active', NULL, 'sealed-carol', 0, {START}, NULL)",
            used = START + 5,
            later = START + 1,
        ),
        format!(
            "INSERT INTO token_marks (user_id, revoked_before) VALUES ('alice', {mark}), \
             ('bob', 0)",
            mark = START + 1,
        ),
        format!(
            "INSERT INTO devices (id, user_id, token_hash, created_at, last_used_at, expires_at, \
             mfa_at, address, user_agent) VALUES ('device-1', 'alice', 'token-hash-1', \
             {created}, {used}, {expires}, {mfa}, '192.0.2.1', 'old/1.0')",
            created = START - 100,
            used = START - 50,
            expires = START + 86_400,
            mfa = START - 101,
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(pool)
            .await
            .unwrap();
    }
}

fn alice_totp() -> Credential {
    Credential {
        user: "alice".to_owned(),
        kind: "totp".to_owned(),
        id: "totp".to_owned(),
        status: CredentialStatus::Active,
        label: Some("phone".to_owned()),
        payload: "sealed-alice".to_owned(),
        counter: 77,
        created_at: START,
        last_used_at: Some(START + 5),
        generation: 0,
    }
}

fn alice_passkey() -> Credential {
    Credential {
        user: "alice".to_owned(),
        kind: "webauthn".to_owned(),
        id: "key-1".to_owned(),
        status: CredentialStatus::Pending,
        label: None,
        payload: "passkey-alice".to_owned(),
        counter: 0,
        created_at: START + 1,
        last_used_at: None,
        generation: 0,
    }
}

fn device() -> DeviceRecord {
    DeviceRecord {
        id: "device-1".to_owned(),
        user: "alice".to_owned(),
        token_hash: "token-hash-1".to_owned(),
        created_at: START - 100,
        last_used_at: START - 50,
        expires_at: START + 86_400,
        mfa_at: START - 101,
        address: Some("192.0.2.1".to_owned()),
        user_agent: Some("old/1.0".to_owned()),
        generation: 0,
    }
}

const CAROL_PHONE: CredentialRef<'static> = CredentialRef {
    user: "carol",
    kind: "sms",
    id: "phone",
};

/// Alice's generation as moved from her mark: changed at the second of her reset.
const ALICE_GENERATION: Generation = Generation {
    value: 1,
    changed_at: Some(START),
};

/// Bob's, from a mark at 0.
const BOB_GENERATION: Generation = Generation {
    value: 1,
    changed_at: Some(0),
};

async fn applied_versions(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT version FROM _stepup_store_migrations WHERE success ORDER BY version",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Whether the schema of `pool` has a relation (table, sequence) named `name`.
async fn exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar::<_, Option<String>>("SELECT to_regclass($1)::TEXT")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_marks_become_generations() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let pool = schema.pool().await;
    migrate_to(&pool, 2).await;
    insert_v2_rows(&pool).await;
    pool.close().await;

    let clock = Arc::new(ManualClock::at_unix(START + 10));
    let store = schema.store(clock.clone()).await;
    assert_eq!(applied_versions(store.pool()).await, [1, 2, 3, 4, 5]);
    assert!(
        !exists(store.pool(), "token_marks").await,
        "the marks are gone"
    );
    assert!(exists(store.pool(), "generations").await);

    // A mark R (tokens issued before R void) is generation 1 changed at R - 1 (tokens issued at or
    // before it void): the same tokens.
    assert_eq!(store.generation("alice").await.unwrap(), ALICE_GENERATION);
    assert_eq!(store.generation("bob").await.unwrap(), BOB_GENERATION);
    assert_eq!(
        store.generation("carol").await.unwrap(),
        Generation::default(),
        "a user without a mark was never reset"
    );
    assert_eq!(
        store.generation_changes(0, 10).await.unwrap(),
        [
            GenerationChange {
                seq: 1,
                user: "bob".to_owned(),
                generation: BOB_GENERATION,
            },
            GenerationChange {
                seq: 2,
                user: "alice".to_owned(),
                generation: ALICE_GENERATION,
            },
        ],
        "the moved marks in the feed, in the order of the marks"
    );

    // Every credential and device as it was, of generation 0.
    assert_eq!(
        store.credentials("alice").await.unwrap(),
        [alice_totp(), alice_passkey()]
    );
    for user in ["bob", "carol"] {
        let credentials = store.credentials(user).await.unwrap();
        assert_eq!(credentials.len(), 1);
        assert_eq!(credentials[0].generation, 0);
    }
    assert_eq!(store.devices("alice").await.unwrap(), [device()]);

    // The new schema at work: a credential can be disabled (and given no other status), and a
    // stale active credential no longer holds the place.
    assert!(store.disable_credential(CAROL_PHONE).await.unwrap());
    let refused = sqlx::query("UPDATE credentials SET status = 'revoked' WHERE user_id = 'carol'")
        .execute(store.pool())
        .await;
    assert!(refused.is_err(), "the CHECK on status still holds");
    let fresh = Credential {
        id: "totp-2".to_owned(),
        status: CredentialStatus::Pending,
        generation: 1,
        ..alice_totp()
    };
    assert!(
        store
            .put_pending(fresh.clone(), Enrollment::OnePerUser)
            .await
            .unwrap()
    );
    assert_eq!(
        store.credentials("alice").await.unwrap(),
        [fresh, alice_passkey()]
    );
    // The feed goes on after the moved marks.
    assert_eq!(
        store.advance_generation("alice", START + 10).await.unwrap(),
        Generation {
            value: 2,
            changed_at: Some(START + 10),
        }
    );
    assert_eq!(
        store
            .generation_changes(1, 10)
            .await
            .unwrap()
            .iter()
            .map(|change| (change.seq, change.user.as_str()))
            .collect::<Vec<_>>(),
        [(3, "alice")]
    );
    store.pool().close().await;

    // A new pool: the migrations run again, changing nothing.
    let store = schema.store(clock).await;
    assert_eq!(applied_versions(store.pool()).await, [1, 2, 3, 4, 5]);
    assert_eq!(store.generation("alice").await.unwrap().value, 2);
    assert_eq!(store.generation("bob").await.unwrap(), BOB_GENERATION);
    assert_eq!(
        store
            .credential(CAROL_PHONE)
            .await
            .unwrap()
            .map(|credential| credential.status),
        Some(CredentialStatus::Disabled)
    );
    assert_eq!(store.devices("alice").await.unwrap(), [device()]);
    store.pool().close().await;
    schema.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_credential_fails_the_upgrade_and_changes_nothing() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let pool = schema.pool().await;
    migrate_to(&pool, 2).await;
    insert_v2_rows(&pool).await;
    // A status version 2's CHECK forbids, written past it: the new CHECK refuses the table.
    for statement in [
        "ALTER TABLE credentials DROP CONSTRAINT credentials_status_check",
        "UPDATE credentials SET status = 'revoked' WHERE user_id = 'bob'",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }

    let opened =
        PostgresStore::from_pool(pool.clone(), Arc::new(ManualClock::at_unix(START))).await;
    match opened {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("credentials_status_check"), "{message}");
        }
        other => panic!("expected the upgrade to fail, got {other:?}"),
    }

    // Rolled back: still version 2, the marks where they were, no generation anywhere.
    assert_eq!(applied_versions(&pool).await, [1, 2]);
    let marks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_marks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(marks, 2);
    assert!(!exists(&pool, "generations").await);
    assert!(!exists(&pool, "generation_seq").await);
    let generation_columns: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_name = 'generation'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(generation_columns, 0);
    pool.close().await;
    schema.drop_schema().await;
}
