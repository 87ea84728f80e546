//! Databases at earlier schemas open with `SqliteStore::open` and read back through the traits
//! exactly as the migrations specify; re-opening them again changes nothing:
//!
//! - one written by the TOTP-specific schema (migrations 1 and 2 only) moves to the factor-generic
//!   tables (migration 3);
//! - one at version 4, with token marks, moves to per-user generations, its credentials and
//!   devices of generation 0 (migration 5).

use std::path::Path;
use std::sync::Arc;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use stepup_core::clock::ManualClock;
use stepup_store::{
    AuditRecord, AuditStore, Credential, CredentialRef, CredentialStatus, DeviceRecord,
    DeviceStore, Enrollment, FactorStore, Generation, GenerationChange, StoreError,
};
use stepup_store_sqlite::SqliteStore;
use tempfile::TempDir;

const START: u64 = 1_800_000_000;

/// The schema as released before the factor-generic traits: byte-identical copies, so their
/// checksums match the ones `SqliteStore` embeds.
const OLD_MIGRATIONS: [(&str, &str); 2] = [
    (
        "0001_stepup_store.sql",
        include_str!("../migrations/0001_stepup_store.sql"),
    ),
    (
        "0002_devices_audit.sql",
        include_str!("../migrations/0002_devices_audit.sql"),
    ),
];

/// The schema at version 4, the last with token marks: byte-identical copies.
const V4_MIGRATIONS: [(&str, &str); 4] = [
    OLD_MIGRATIONS[0],
    OLD_MIGRATIONS[1],
    (
        "0003_factor_generic.sql",
        include_str!("../migrations/0003_factor_generic.sql"),
    ),
    (
        "0004_credential_id_index.sql",
        include_str!("../migrations/0004_credential_id_index.sql"),
    ),
];

/// Every version this crate's migrations bring a database to.
const ALL_VERSIONS: [i64; 7] = [1, 2, 3, 4, 5, 6, 7];

const ALICE_STEP: i64 = 60_000_123;

const ALICE_TOTP: CredentialRef<'static> = CredentialRef {
    user: "alice",
    kind: "totp",
    id: "totp",
};

const BOB_TOTP: CredentialRef<'static> = CredentialRef {
    user: "bob",
    kind: "totp",
    id: "totp",
};

/// A single connection to the database file, as the old store would have left it.
async fn raw_pool(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap()
}

/// Creates `stepup.db` in `dir` with the old schema (migrations 1 and 2, run from a directory
/// holding only them) and returns a connection to it.
async fn old_database(dir: &TempDir) -> SqlitePool {
    database_at(dir, &OLD_MIGRATIONS).await
}

/// Creates `stepup.db` in `dir` at the schema `migrations` make (run from a directory holding only
/// them) and returns a connection to it.
async fn database_at(dir: &TempDir, migrations: &[(&str, &str)]) -> SqlitePool {
    let directory = dir.path().join("old-migrations");
    std::fs::create_dir(&directory).unwrap();
    for (name, sql) in migrations {
        std::fs::write(directory.join(name), sql).unwrap();
    }
    let pool = raw_pool(&dir.path().join("stepup.db")).await;
    let mut migrator = Migrator::new(directory.as_path()).await.unwrap();
    migrator.dangerous_set_table_name("_stepup_store_migrations");
    migrator.run(&pool).await.unwrap();
    pool
}

/// Old-format rows: an active TOTP enrollment with a last used step, a pending one for another
/// user, three backup codes, a device and an audit event.
async fn insert_old_rows(pool: &SqlitePool) {
    for statement in [
        format!(
            "INSERT INTO totp_enrollments (user_id, sealed_secret, algorithm, digits, period, \
             active, last_used_step, created_at) \
             VALUES ('alice', 'v1.sealed-alice', 'SHA256', 8, 60, 1, {ALICE_STEP}, 1700000000)"
        ),
        "INSERT INTO totp_enrollments (user_id, sealed_secret, algorithm, digits, period, \
         active, last_used_step, created_at) \
         VALUES ('bob', 'v1.sealed-bob', 'SHA1', 6, 30, 0, NULL, 1700000100)"
            .to_owned(),
        "INSERT INTO backup_codes (user_id, lookup, hash) VALUES \
         ('alice', 'lookup-1', '$argon2id$hash-1'), \
         ('alice', 'lookup-2', '$argon2id$hash-2'), \
         ('alice', 'lookup-3', '$argon2id$hash-3')"
            .to_owned(),
        format!(
            "INSERT INTO devices (id, user_id, token_hash, created_at, last_used_at, expires_at, \
             mfa_at, address, user_agent) VALUES ('device-1', 'alice', 'token-hash-1', \
             {created}, {used}, {expires}, {mfa}, '192.0.2.1', 'old/1.0')",
            created = START - 100,
            used = START - 50,
            expires = START + 86_400,
            mfa = START - 101,
        ),
        "INSERT INTO audit_events (id, user_id, kind, at, detail) \
         VALUES ('event-1', 'alice', 'totp_enrolled', 1700000000, '{\"via\":\"app\"}')"
            .to_owned(),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(pool)
            .await
            .unwrap();
    }
}

fn url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("stepup.db").display())
}

async fn open(dir: &TempDir, clock: &ManualClock) -> SqliteStore {
    SqliteStore::open_with_clock(&url(dir), Arc::new(clock.clone()))
        .await
        .unwrap()
}

/// The payload as a JSON object, checked to hold exactly the four keys the engine reads.
fn payload(credential: &Credential) -> serde_json::Map<String, serde_json::Value> {
    let value: serde_json::Value = serde_json::from_str(&credential.payload).unwrap();
    let serde_json::Value::Object(object) = value else {
        panic!("the payload is not a JSON object: {}", credential.payload);
    };
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["algorithm", "digits", "period", "secret"]);
    object
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

fn event() -> AuditRecord {
    AuditRecord {
        id: "event-1".to_owned(),
        user: "alice".to_owned(),
        kind: "totp_enrolled".to_owned(),
        at: 1_700_000_000,
        detail: r#"{"via":"app"}"#.to_owned(),
    }
}

async fn applied_versions(store: &SqliteStore) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _stepup_store_migrations ORDER BY version")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn tables(store: &SqliteStore) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_database_is_moved_to_the_generic_schema() {
    let dir = tempfile::tempdir().unwrap();
    let pool = old_database(&dir).await;
    insert_old_rows(&pool).await;
    pool.close().await;

    let clock = ManualClock::at_unix(START);
    let store = open(&dir, &clock).await;
    assert_eq!(applied_versions(&store).await, ALL_VERSIONS);
    assert_eq!(
        tables(&store).await,
        [
            "_stepup_store_migrations",
            "audit_events",
            "codes",
            "counters",
            "credentials",
            "devices",
            "ephemeral",
            "factor_failures",
            "generations",
            "oauth_clients",
            "refresh_families",
            "refresh_tokens",
        ],
        "the old tables are dropped"
    );

    // The active enrollment: a credential (alice, totp, totp) with the four-key payload.
    let alice = store.credential(ALICE_TOTP).await.unwrap().unwrap();
    let object = payload(&alice);
    assert_eq!(object["secret"], "v1.sealed-alice");
    assert_eq!(object["algorithm"], "SHA256");
    assert_eq!(object["digits"], 8);
    assert_eq!(object["period"], 60);
    assert_eq!(
        alice,
        Credential {
            user: "alice".to_owned(),
            kind: "totp".to_owned(),
            id: "totp".to_owned(),
            status: CredentialStatus::Active,
            label: None,
            payload: alice.payload.clone(),
            counter: ALICE_STEP as u64,
            created_at: 1_700_000_000,
            last_used_at: None,
            generation: 0,
        }
    );

    // The pending one: no step yet, so the counter starts at 0.
    let bob = store.credential(BOB_TOTP).await.unwrap().unwrap();
    let object = payload(&bob);
    assert_eq!(object["secret"], "v1.sealed-bob");
    assert_eq!(object["algorithm"], "SHA1");
    assert_eq!(object["digits"], 6);
    assert_eq!(object["period"], 30);
    assert_eq!(bob.status, CredentialStatus::Pending);
    assert_eq!(bob.counter, 0);
    assert_eq!(bob.label, None);
    assert_eq!(bob.created_at, 1_700_000_100);
    assert_eq!(bob.last_used_at, None);

    assert_eq!(
        store.credentials("alice").await.unwrap(),
        vec![alice.clone()]
    );
    assert_eq!(
        store.credentials_of_kind("totp").await.unwrap(),
        vec![alice.clone(), bob.clone()]
    );

    // The migrated counter still guards against replay; the pending credential still activates.
    assert!(
        !store
            .advance_counter(ALICE_TOTP, ALICE_STEP as u64, None, START)
            .await
            .unwrap(),
        "the last used step is not accepted again"
    );
    assert!(
        store
            .advance_counter(ALICE_TOTP, ALICE_STEP as u64 + 1, None, START)
            .await
            .unwrap()
    );
    assert!(store.activate(BOB_TOTP, 56_000_000, None).await.unwrap());

    // The backup codes: countable, readable, consumable once, never expiring.
    assert_eq!(store.count_codes("alice", "backup_code").await.unwrap(), 3);
    assert_eq!(
        store
            .code_hash("alice", "backup_code", "lookup-1")
            .await
            .unwrap(),
        Some("$argon2id$hash-1".to_owned())
    );
    assert!(
        store
            .consume_code("alice", "backup_code", "lookup-2")
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_code("alice", "backup_code", "lookup-2")
            .await
            .unwrap()
    );
    clock.advance(std::time::Duration::from_secs(10 * 365 * 86_400));
    assert_eq!(store.count_codes("alice", "backup_code").await.unwrap(), 2);
    clock.set_unix(START);

    // Devices and the audit trail are untouched.
    assert_eq!(
        store.device_by_token("token-hash-1").await.unwrap(),
        Some(device())
    );
    assert_eq!(store.devices("alice").await.unwrap(), vec![device()]);
    assert_eq!(
        store.audit_events("alice", 10).await.unwrap(),
        vec![event()]
    );

    // Re-opening is a no-op: no migration runs again, the state is as left.
    store.pool().close().await;
    drop(store);
    let store = open(&dir, &clock).await;
    assert_eq!(applied_versions(&store).await, ALL_VERSIONS);
    let alice_now = store.credential(ALICE_TOTP).await.unwrap().unwrap();
    assert_eq!(alice_now.counter, ALICE_STEP as u64 + 1);
    assert_eq!(alice_now.payload, alice.payload);
    let bob_now = store.credential(BOB_TOTP).await.unwrap().unwrap();
    assert_eq!(bob_now.status, CredentialStatus::Active);
    assert_eq!(bob_now.payload, bob.payload);
    assert_eq!(store.count_codes("alice", "backup_code").await.unwrap(), 2);
    assert_eq!(store.credentials_of_kind("totp").await.unwrap().len(), 2);
    assert_eq!(store.devices("alice").await.unwrap(), vec![device()]);
    assert_eq!(
        store.audit_events("alice", 10).await.unwrap(),
        vec![event()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_empty_old_database_migrates() {
    let dir = tempfile::tempdir().unwrap();
    old_database(&dir).await.close().await;
    let store = open(&dir, &ManualClock::at_unix(START)).await;
    assert_eq!(applied_versions(&store).await, ALL_VERSIONS);
    assert!(store.credentials_of_kind("totp").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_old_row_fails_the_migration_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pool = old_database(&dir).await;
    insert_old_rows(&pool).await;
    // A flag version 1's CHECK forbids, written past it: the migration must not guess.
    sqlx::query("PRAGMA ignore_check_constraints = ON")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE totp_enrollments SET active = 2 WHERE user_id = 'bob'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let opened =
        SqliteStore::open_with_clock(&url(&dir), Arc::new(ManualClock::at_unix(START))).await;
    match opened {
        Err(StoreError::Unavailable(message)) => assert!(
            message.contains("NOT NULL constraint failed: credentials.status"),
            "{message}"
        ),
        other => panic!("expected the migration to fail, got {other:?}"),
    }

    // Rolled back: still version 2, the old rows where they were.
    let pool = raw_pool(&dir.path().join("stepup.db")).await;
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _stepup_store_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2]);
    let enrollments: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM totp_enrollments")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(enrollments, 2);
    let codes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM backup_codes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(codes, 3);
    let credentials: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'credentials'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(credentials, 0);
}

/// Version-4 rows: alice with an active TOTP credential and a pending passkey, a token mark
/// (her reset at `START`, written as `START + 1`) and a remembered device; bob with a mark at 0
/// (which voided nothing) and a pending TOTP credential; carol without a mark.
async fn insert_v4_rows(pool: &SqlitePool) {
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

async fn indexes(store: &SqliteStore) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'credentials' \
         AND sql IS NOT NULL ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_marks_become_generations() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database_at(&dir, &V4_MIGRATIONS).await;
    insert_v4_rows(&pool).await;
    pool.close().await;

    let clock = ManualClock::at_unix(START + 10);
    let store = open(&dir, &clock).await;
    assert_eq!(applied_versions(&store).await, ALL_VERSIONS);
    let tables = tables(&store).await;
    assert!(tables.contains(&"generations".to_owned()), "{tables:?}");
    assert!(
        !tables.iter().any(|table| table == "token_marks"),
        "the token marks are gone: {tables:?}"
    );
    assert!(
        !tables.iter().any(|table| table.starts_with("credentials_")),
        "the rebuilt table took the old one's name: {tables:?}"
    );
    assert_eq!(indexes(&store).await, ["credentials_kind_id"]);

    // A mark R (tokens issued before R void) is generation 1 changed at R - 1 (tokens issued at or
    // before it void): the same tokens.
    assert_eq!(store.generation("alice").await.unwrap(), ALICE_GENERATION);
    assert_eq!(store.generation("bob").await.unwrap(), BOB_GENERATION);
    assert_eq!(
        store.generation("carol").await.unwrap(),
        Generation::default(),
        "a user without a mark was never reset"
    );
    // In the feed, in the order of the marks.
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
        ]
    );

    // Every credential as it was, of generation 0.
    assert_eq!(
        store.credentials("alice").await.unwrap(),
        [alice_totp(), alice_passkey()]
    );
    let credentials: Vec<Credential> = [
        store.credentials("bob").await.unwrap(),
        store.credentials("carol").await.unwrap(),
    ]
    .concat();
    assert_eq!(credentials.len(), 2);
    assert!(
        credentials
            .iter()
            .all(|credential| credential.generation == 0)
    );
    assert_eq!(
        store.credential_by_id("webauthn", "key-1").await.unwrap(),
        Some(alice_passkey()),
        "found by (kind, id) in the rebuilt table"
    );
    assert_eq!(
        store.devices("alice").await.unwrap(),
        [device()],
        "the device as it was, of generation 0"
    );

    // The new schema at work: the moved counter still refuses a replay, a credential can be
    // disabled (and nothing else), and a stale active credential no longer holds the place.
    assert!(
        !store
            .advance_counter(alice_totp().key(), 77, None, START + 10)
            .await
            .unwrap()
    );
    assert!(
        store
            .disable_credential(CredentialRef {
                user: "carol",
                kind: "sms",
                id: "phone",
            })
            .await
            .unwrap()
    );
    let refused = sqlx::query("UPDATE credentials SET status = 'revoked' WHERE user_id = 'carol'")
        .execute(store.pool())
        .await;
    assert!(
        refused.is_err(),
        "the rebuilt table keeps a CHECK on status"
    );
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
    let feed = store.generation_changes(1, 10).await.unwrap();
    assert_eq!(
        feed.iter()
            .map(|change| (change.seq, change.user.as_str()))
            .collect::<Vec<_>>(),
        [(3, "alice")]
    );

    // Re-opening is a no-op.
    store.pool().close().await;
    drop(store);
    let store = open(&dir, &clock).await;
    assert_eq!(applied_versions(&store).await, ALL_VERSIONS);
    assert_eq!(store.generation("alice").await.unwrap().value, 2);
    assert_eq!(store.generation("bob").await.unwrap(), BOB_GENERATION);
    assert_eq!(
        store
            .credential(CredentialRef {
                user: "carol",
                kind: "sms",
                id: "phone",
            })
            .await
            .unwrap()
            .map(|credential| credential.status),
        Some(CredentialStatus::Disabled)
    );
    assert_eq!(store.devices("alice").await.unwrap(), [device()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_from_before_the_factor_generic_schema_ends_with_no_generation() {
    // Migrations 3 to 5 in one opening: the TOTP enrollment is a credential of generation 0, and
    // no user was ever reset.
    let dir = tempfile::tempdir().unwrap();
    let pool = old_database(&dir).await;
    insert_old_rows(&pool).await;
    pool.close().await;
    let store = open(&dir, &ManualClock::at_unix(START)).await;
    assert_eq!(applied_versions(&store).await, ALL_VERSIONS);
    assert_eq!(
        store
            .credential(ALICE_TOTP)
            .await
            .unwrap()
            .map(|credential| credential.generation),
        Some(0)
    );
    assert_eq!(
        store.generation("alice").await.unwrap(),
        Generation::default()
    );
    assert_eq!(store.generation_changes(0, 10).await.unwrap(), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_credential_fails_the_generation_migration_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pool = database_at(&dir, &V4_MIGRATIONS).await;
    insert_v4_rows(&pool).await;
    // A status version 4's CHECK forbids, written past it: the rebuilt table refuses to copy it.
    sqlx::query("PRAGMA ignore_check_constraints = ON")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE credentials SET status = 'revoked' WHERE user_id = 'bob'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let opened =
        SqliteStore::open_with_clock(&url(&dir), Arc::new(ManualClock::at_unix(START))).await;
    match opened {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("CHECK constraint failed"), "{message}");
        }
        other => panic!("expected the migration to fail, got {other:?}"),
    }

    // Rolled back: still version 4, the marks and credentials where they were.
    let pool = raw_pool(&dir.path().join("stepup.db")).await;
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _stepup_store_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, [1, 2, 3, 4]);
    let marks: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_marks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(marks, 2);
    let credentials: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM credentials")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(credentials, 4);
    let generations: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE name IN ('generations', 'credentials_v5')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(generations, 0);
    let device_columns: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_table_info('devices') WHERE name = 'generation'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(device_columns, 0);
}
