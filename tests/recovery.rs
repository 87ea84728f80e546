//! Account recovery on the engine: 100 concurrent confirmations of one code (memory, SQLite,
//! PostgreSQL, and PostgreSQL with the ephemeral state — where recovery codes live — in Redis).
//! The recovery routes over HTTP are tested in `crates/stepup-axum/tests/recovery.rs`.

mod demo_support;

use std::sync::Arc;
use std::time::Duration;

use demo_support::*;
use stepup::mail::{Mail, MemoryOutbox};
use stepup::{Keyring, ManualClock, MemoryStore, Mfa, MfaError, SqliteStore, Stores};

const EMAIL: &str = "ada@example.com";

/// The first mail after the first `skip` with `subject` (mails leave in the background: this
/// waits for them in real time, at most 10 s).
async fn wait_for_mail(outbox: &MemoryOutbox, skip: usize, subject: &str) -> Mail {
    for _ in 0..1000 {
        if let Some(mail) = outbox
            .mails()
            .into_iter()
            .skip(skip)
            .find(|mail| mail.subject == subject)
        {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no mail {subject:?}");
}

// ---------------------------------------------------------------------------------------------
// The engine: 100 concurrent confirmations of one code.

async fn race(stores: Stores, clock: ManualClock) {
    let outbox = MemoryOutbox::default();
    let mfa = Mfa::new(stores, Keyring::new("k1", &[1; 32]).unwrap(), &[2; 32])
        .unwrap()
        .with_clock(Arc::new(clock))
        .with_mailer(Arc::new(outbox.clone()));
    mfa.request_recovery("ada", EMAIL).await.unwrap();
    let code = recovery_code_in(
        &wait_for_mail(&outbox, 0, "Your account recovery code")
            .await
            .body,
    );
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let mfa = mfa.clone();
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            mfa.confirm_recovery::<MfaError>(&code, async |_user: &str| Ok(true))
                .await
        }));
    }
    let mut successes = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => successes += 1,
            Err(MfaError::InvalidRecoveryCode) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(successes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_100_concurrent_confirmations_wins_on_memory() {
    let clock = ManualClock::at_unix(T0);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    race(Stores::shared(store), clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_100_concurrent_confirmations_wins_on_postgres() {
    let clock = ManualClock::at_unix(T0);
    let Some(pg) = backends::Postgres::start(&clock).await else {
        return;
    };
    race(pg.stores(), clock).await;
    pg.finish().await;
}

/// Recovery codes live in the ephemeral store: with it in Redis, the race is Redis's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_100_concurrent_confirmations_wins_on_postgres_and_redis() {
    let clock = ManualClock::at_unix(T0);
    let Some((pg, stores)) = backends::postgres_and_redis(&clock).await else {
        return;
    };
    race(stores, clock).await;
    pg.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_of_100_concurrent_confirmations_wins_on_sqlite() {
    let clock = ManualClock::at_unix(T0);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("race.db").display());
    let store = SqliteStore::open_with_clock(&url, Arc::new(clock.clone()))
        .await
        .unwrap();
    race(Stores::shared(store), clock).await;
}
