//! Durable state survives a new pool on the same schema; re-running the migrations is a no-op;
//! `open_in_schema` creates its schema and keeps two schemas apart.

mod support;

use std::sync::Arc;
use std::time::Duration;

use stepup_core::clock::{ManualClock, SharedClock};
use stepup_store::{
    AuditRecord, AuditStore, CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus,
    DeviceRecord, DeviceStore, Enrollment, EphemeralStore, FactorStore, Generation,
};
use stepup_store_postgres::PostgresStore;
use support::TestSchema;

const START: u64 = 1_800_000_000;

/// How many migrations this crate embeds.
const MIGRATIONS: i64 = 5;

fn clock() -> SharedClock {
    Arc::new(ManualClock::at_unix(START))
}

fn credential(user: &str) -> Credential {
    Credential {
        user: user.to_owned(),
        kind: "totp".to_owned(),
        id: "app".to_owned(),
        status: CredentialStatus::Pending,
        label: Some("phone".to_owned()),
        payload: "sealed".to_owned(),
        counter: 0,
        created_at: START,
        last_used_at: None,
        generation: 4,
    }
}

fn key(user: &str) -> CredentialRef<'_> {
    CredentialRef {
        user,
        kind: "totp",
        id: "app",
    }
}

fn codes() -> CodeSet {
    CodeSet {
        kind: "backup_code".to_owned(),
        codes: vec![
            CodeHash {
                lookup: "l1".to_owned(),
                hash: "h1".to_owned(),
                expires_at: None,
            },
            CodeHash {
                lookup: "l2".to_owned(),
                hash: "h2".to_owned(),
                expires_at: Some(START + 600),
            },
        ],
    }
}

fn device() -> DeviceRecord {
    DeviceRecord {
        id: "device".to_owned(),
        user: "alice".to_owned(),
        token_hash: "token-hash".to_owned(),
        created_at: START,
        last_used_at: START,
        expires_at: START + 3600,
        mfa_at: START,
        address: Some("192.0.2.1".to_owned()),
        user_agent: None,
        generation: 4,
    }
}

fn event() -> AuditRecord {
    AuditRecord {
        id: "event".to_owned(),
        user: "alice".to_owned(),
        kind: "totp_enrolled".to_owned(),
        at: START,
        detail: "{}".to_owned(),
    }
}

/// How many of this crate's migrations the schema records as applied.
async fn applied_migrations(store: &PostgresStore) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM _stepup_store_migrations WHERE success")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn state_survives_a_new_pool_and_migrations_rerun_as_a_no_op() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let first = schema.store(clock()).await;
    assert_eq!(applied_migrations(&first).await, MIGRATIONS);
    assert!(
        first
            .put_pending(credential("alice"), Enrollment::OnePerUser)
            .await
            .unwrap()
    );
    assert!(
        first
            .activate(key("alice"), 7, Some(codes()))
            .await
            .unwrap()
    );
    assert_eq!(first.record_failure("alice", "totp").await.unwrap(), 1);
    first.advance_generation("alice", START).await.unwrap();
    first.advance_generation("bob", START + 1).await.unwrap();
    first.insert_device(device()).await.unwrap();
    first.append_audit(event()).await.unwrap();
    let ttl = Duration::from_secs(60);
    assert!(first.insert_if_absent("value", b"v", ttl).await.unwrap());
    assert_eq!(first.increment("counter", ttl).await.unwrap(), 1);
    first.pool().close().await;

    // A new pool on the same schema: from_pool runs the migrations again, changing nothing.
    let second = schema.store(clock()).await;
    assert_eq!(applied_migrations(&second).await, MIGRATIONS);
    let stored = second.credential(key("alice")).await.unwrap().unwrap();
    assert_eq!(
        stored,
        Credential {
            status: CredentialStatus::Active,
            counter: 7,
            ..credential("alice")
        }
    );
    assert_eq!(second.count_codes("alice", "backup_code").await.unwrap(), 2);
    assert_eq!(
        second
            .code_hash("alice", "backup_code", "l2")
            .await
            .unwrap()
            .as_deref(),
        Some("h2")
    );
    assert_eq!(second.failures("alice", "totp").await.unwrap(), 1);
    assert_eq!(
        second.generation("alice").await.unwrap(),
        Generation {
            value: 1,
            changed_at: Some(START)
        }
    );
    // The feed goes on where it stopped.
    second.advance_generation("alice", START + 2).await.unwrap();
    let feed: Vec<(u64, String, u64)> = second
        .generation_changes(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|change| (change.seq, change.user, change.generation.value))
        .collect();
    assert_eq!(feed, [(2, "bob".to_owned(), 1), (3, "alice".to_owned(), 2)]);
    assert_eq!(
        second.device_by_token("token-hash").await.unwrap(),
        Some(device())
    );
    assert_eq!(
        second.audit_events("alice", 10).await.unwrap(),
        vec![event()]
    );
    assert_eq!(second.get("value").await.unwrap(), Some(b"v".to_vec()));
    assert_eq!(second.increment("counter", ttl).await.unwrap(), 2);

    // The tracking table is the crate's own: an application's sqlx migrations keep theirs.
    let default_table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::TEXT")
            .fetch_one(second.pool())
            .await
            .unwrap();
    assert_eq!(default_table, None);
    second.pool().close().await;
    schema.drop_schema().await;
}

#[tokio::test]
async fn open_in_schema_creates_the_schema_and_keeps_schemas_apart() {
    let Some(url) = support::database_url() else {
        return;
    };
    let name = format!("stepup_test_{}", support::random_hex());
    let other_name = format!("stepup_test_{}", support::random_hex());
    let first = PostgresStore::open_in_schema(&url, &name, clock())
        .await
        .unwrap();
    let again = PostgresStore::open_in_schema(&url, &name, clock())
        .await
        .unwrap();
    let other = PostgresStore::open_in_schema(&url, &other_name, clock())
        .await
        .unwrap();

    assert!(
        first
            .put_pending(credential("alice"), Enrollment::Many)
            .await
            .unwrap()
    );
    // The same schema is the same state; another schema is empty.
    assert!(again.credential(key("alice")).await.unwrap().is_some());
    assert!(other.credential(key("alice")).await.unwrap().is_none());
    let tables_here: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'credentials'",
    )
    .bind(&name)
    .fetch_one(first.pool())
    .await
    .unwrap();
    assert_eq!(tables_here, 1);
    // Its sessions see that schema alone, under the isolation the statements are designed for.
    let (search_path, isolation): (String, String) = sqlx::query_as(
        "SELECT current_setting('search_path'), current_setting('default_transaction_isolation')",
    )
    .fetch_one(first.pool())
    .await
    .unwrap();
    assert_eq!(search_path, format!("\"{name}\""));
    assert_eq!(isolation, "read committed");

    for (store, schema) in [(first, &name), (other, &other_name)] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .execute(store.pool())
        .await
        .unwrap();
        store.pool().close().await;
    }
    again.pool().close().await;
}

#[tokio::test]
async fn concurrent_opens_of_a_new_schema_all_succeed() {
    let Some(url) = support::database_url() else {
        return;
    };
    let name = format!("stepup_test_{}", support::random_hex());
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let (url, name) = (url.clone(), name.clone());
            tokio::spawn(async move { PostgresStore::open_in_schema(&url, &name, clock()).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().unwrap());
    }
    assert_eq!(applied_migrations(&stores[0]).await, MIGRATIONS);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{name}\" CASCADE"
    )))
    .execute(stores[0].pool())
    .await
    .unwrap();
}
