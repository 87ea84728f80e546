//! A demo database made before the factor-generic store (schema versions 1 and 2: the
//! `totp_enrollments` and `backup_codes` tables) opens with today's demo, and its user still logs
//! in with the TOTP code and the backup codes they already had.

#[path = "../examples/demo/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use stepup::Keyring;
use stepup::clock::ManualClock;
use stepup::mfa::backup::BackupCodes;
use stepup::mfa::totp::TotpAlgorithm;
use stepup::mfa::totp::TotpKey;

const T0: u64 = 1_800_000_000;
const OLD_MIGRATIONS: [(&str, &str); 2] = [
    (
        "0001_stepup_store.sql",
        include_str!("../crates/stepup-store-sqlite/migrations/0001_stepup_store.sql"),
    ),
    (
        "0002_devices_audit.sql",
        include_str!("../crates/stepup-store-sqlite/migrations/0002_devices_audit.sql"),
    ),
];

fn secrets() -> app::Secrets {
    app::Secrets {
        jwt_secret: b"an upgraded demo, thirty-two bytes or more".to_vec(),
        seal_key_id: "k1".into(),
        seal_key: vec![7; 32],
        lookup_key: vec![8; 32],
    }
}

/// Writes the database as the previous release left it: its two migrations, the demo's users
/// table, and one user with an active TOTP enrollment and two backup codes.
async fn old_database(path: &std::path::Path, secret: &[u8], backup_codes: &[&str]) {
    let migrations = tempfile::tempdir().unwrap();
    for (name, sql) in OLD_MIGRATIONS {
        std::fs::write(migrations.path().join(name), sql).unwrap();
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let mut migrator = sqlx::migrate::Migrator::new(migrations.path())
        .await
        .unwrap();
    migrator.dangerous_set_table_name("_stepup_store_migrations");
    migrator.run(&pool).await.unwrap();

    sqlx::query(
        "CREATE TABLE demo_users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let password_hash = Argon2::default()
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
    sqlx::query("INSERT INTO demo_users VALUES ('user-1', 'old@example.com', ?1)")
        .bind(password_hash)
        .execute(&pool)
        .await
        .unwrap();

    let keys = secrets();
    let sealed = Keyring::new(&keys.seal_key_id, &keys.seal_key)
        .unwrap()
        .seal(secret, "totp:user-1")
        .unwrap();
    let last_step = (T0 - 60) / 30;
    sqlx::query("INSERT INTO totp_enrollments VALUES ('user-1', ?1, 'SHA1', 6, 30, 1, ?2, ?3)")
        .bind(sealed)
        .bind(i64::try_from(last_step).unwrap())
        .bind(i64::try_from(T0 - 3600).unwrap())
        .execute(&pool)
        .await
        .unwrap();
    let backup = BackupCodes::new(&keys.lookup_key).unwrap();
    for code in backup_codes {
        let normalised = BackupCodes::normalise(code).unwrap();
        sqlx::query("INSERT INTO backup_codes VALUES ('user-1', ?1, ?2)")
            .bind(backup.lookup(&normalised))
            .bind(BackupCodes::hash(&normalised).unwrap())
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
}

async fn post(base: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_previous_schema_opens_and_its_user_still_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old-demo.db");
    let secret = b"an old twenty-byte s";
    let codes = ["ABCDE-FGHJK", "LMNPQ-RSTUV"];
    old_database(&path, secret, &codes).await;

    let clock = ManualClock::at_unix(T0);
    let shared: stepup::clock::SharedClock = Arc::new(clock.clone());
    let url = format!("sqlite://{}", path.display());
    let database = app::Database::open(&url, shared.clone()).await.unwrap();
    let router = app::build(app::Settings::new(database, secrets(), shared))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.unwrap()
    });

    let login = json!({"username": "old@example.com", "password": "correct horse"});
    let (status, challenge) = post(&base, "/oauth/authorize", login.clone()).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    assert_eq!(challenge["mfa_required"], true, "{challenge}");
    assert_eq!(challenge["methods"], json!(["totp", "backup_code"]));

    // The step used before the upgrade stays used; the current one is accepted once.
    let key = TotpKey::new(secret, TotpAlgorithm::Sha1, 6, 30, 1, "stepup demo", "old").unwrap();
    let used = key.code_at(T0 - 60);
    let mfa_token = challenge["mfa_token"].as_str().unwrap();
    let (status, body) = post(
        &base,
        "/oauth/authorize/mfa",
        json!({"mfa_token": mfa_token, "code": used}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = post(
        &base,
        "/oauth/authorize/mfa",
        json!({"mfa_token": mfa_token, "code": key.code_at(T0)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["acr"], "mfa");

    // An old backup code works once.
    clock.advance(Duration::from_secs(30));
    let (_, challenge) = post(&base, "/oauth/authorize", login).await;
    let mfa_token = challenge["mfa_token"].as_str().unwrap();
    let (status, body) = post(
        &base,
        "/oauth/authorize/mfa",
        json!({"mfa_token": mfa_token, "backup_code": codes[1]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["remaining_codes"], 1);
}
