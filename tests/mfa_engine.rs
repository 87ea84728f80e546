//! The second-factor engine on every store backend: replay and single-use under concurrency,
//! attempt limits and the factor lock, the methods offered, account deletion, expiry, key
//! rotation, and what reaches the database file. The scenarios of `on_every_store!` run on
//! memory, SQLite and PostgreSQL (a schema of their own; skipped without `DATABASE_URL`, failing
//! under `CI=true`).

mod backends;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stepup::mfa::totp::TotpKey;
use stepup::mfa::{Authentication, DeviceSeen, MAX_CODE_ATTEMPTS, PendingAuthorization};
use stepup::store::{Credential, FactorStore};
use stepup::{
    AttemptPolicy, AuditEvent, Clock, Keyring, ManualClock, MemoryStore, Method, Mfa, MfaError,
    Proof, SqliteStore, Stores, TotpAlgorithm,
};
use stepup_core::tokens::digest;

const T0: u64 = 1_800_000_000;
const LOOKUP_KEY: &[u8] = &[42; 32];
/// The default per-user window of failed verifications.
const WINDOW: Duration = Duration::from_secs(5 * 60);

struct Harness {
    mfa: Mfa,
    clock: ManualClock,
    /// The SQLite file, when the backend is SQLite (kept alive for the test's length).
    _dir: Option<tempfile::TempDir>,
}

fn keyring() -> Keyring {
    Keyring::new("k1", &[1; 32]).unwrap()
}

fn engine(stores: Stores, keyring: Keyring, clock: &ManualClock) -> Mfa {
    Mfa::new(stores, keyring, LOOKUP_KEY)
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
}

fn memory_store(clock: &ManualClock) -> MemoryStore {
    MemoryStore::new().with_clock(Arc::new(clock.clone()))
}

async fn memory() -> Harness {
    let clock = ManualClock::at_unix(T0);
    Harness {
        mfa: engine(Stores::shared(memory_store(&clock)), keyring(), &clock),
        clock,
        _dir: None,
    }
}

async fn sqlite_file(clock: &ManualClock) -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("stepup.db").display());
    let store = SqliteStore::open_with_clock(&url, Arc::new(clock.clone()))
        .await
        .unwrap();
    (store, dir)
}

async fn sqlite() -> Harness {
    let clock = ManualClock::at_unix(T0);
    let (store, dir) = sqlite_file(&clock).await;
    Harness {
        mfa: engine(Stores::shared(store), keyring(), &clock),
        clock,
        _dir: Some(dir),
    }
}

/// A harness on a PostgreSQL schema of the test's own; `None` without `DATABASE_URL`.
async fn postgres() -> Option<(Harness, backends::Postgres)> {
    let clock = ManualClock::at_unix(T0);
    let pg = backends::Postgres::start(&clock).await?;
    let harness = Harness {
        mfa: engine(pg.stores(), keyring(), &clock),
        clock,
        _dir: None,
    };
    Some((harness, pg))
}

/// The user's one TOTP credential, as stored.
async fn totp_credential(factors: &dyn FactorStore, user: &str) -> Credential {
    let mut totp: Vec<Credential> = factors
        .credentials(user)
        .await
        .unwrap()
        .into_iter()
        .filter(|credential| credential.kind == "totp")
        .collect();
    assert_eq!(totp.len(), 1, "one TOTP credential per user");
    totp.remove(0)
}

/// The stored TOTP payload: `{"secret", "algorithm", "digits", "period"}`.
async fn totp_payload(factors: &dyn FactorStore, user: &str) -> Value {
    serde_json::from_str(&totp_credential(factors, user).await.payload).unwrap()
}

/// A well-formed code that none of the steps accepted at `now` (within the skew) produces.
fn wrong_code(key: &TotpKey, now: u64) -> String {
    let window = [
        key.code_at(now - 30),
        key.code_at(now),
        key.code_at(now + 30),
    ];
    (0..)
        .map(|n: u32| format!("{n:06}"))
        .find(|code| !window.contains(code))
        .unwrap()
}

/// Enrolls `user` and returns the TOTP key (to compute codes) and the backup codes.
async fn enroll(harness: &Harness, user: &str) -> (TotpKey, Vec<String>) {
    let enrollment = harness
        .mfa
        .begin_totp_enrollment(user, "user@example.com")
        .await
        .unwrap();
    let secret = totp_rs::Secret::try_from_base32(&enrollment.secret).unwrap();
    let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();
    let now = harness.clock.unix_seconds();
    let codes = harness
        .mfa
        .confirm_totp_enrollment(user, &key.code_at(now))
        .await
        .unwrap();
    // The confirming code's step is used; move on to the next step.
    harness.clock.advance(Duration::from_secs(30));
    (key, codes)
}

macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::memory().await).await;
                }
            )*
        }
        mod sqlite_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::sqlite().await).await;
                }
            )*
        }
        mod postgres_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let Some((harness, pg)) = super::postgres().await else {
                        return;
                    };
                    super::$test(harness).await;
                    pg.finish().await;
                }
            )*
        }
    };
}

on_every_store!(
    enrollment_is_pending_until_a_valid_code,
    methods_list_only_what_the_user_has,
    ninety_nine_wrong_totp_codes_then_a_right_one_reset_the_streak,
    a_hundred_wrong_totp_codes_in_a_row_lock_the_factor,
    a_backup_code_streak_is_separate,
    deleting_a_user_voids_earlier_tokens_and_every_factor,
    a_totp_code_is_accepted_once,
    one_code_raced_100_times_succeeds_once,
    one_backup_code_raced_100_times_succeeds_once,
    backup_codes_are_single_use_normalised_and_regenerated_whole,
    an_mfa_token_raced_100_times_succeeds_once,
    an_mfa_token_survives_four_wrong_codes_and_dies_at_the_fifth,
    an_mfa_token_expires_after_five_minutes,
    rotation_keeps_old_secrets_working_and_reseal_moves_them,
    the_sixth_wrong_code_is_refused_even_with_fresh_mfa_tokens,
    lockouts_grow_with_each_burst_and_successes_forgive,
    a_burst_of_100_concurrent_guesses_gets_five_tries,
    one_mfa_token_has_five_proofs_checked_however_many_race,
    refusals_that_check_no_code_do_not_use_up_the_mfa_token,
);

fn retry_after(result: Result<impl std::fmt::Debug, MfaError>) -> Duration {
    match result {
        Err(MfaError::RateLimited { retry_after }) => retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

async fn the_sixth_wrong_code_is_refused_even_with_fresh_mfa_tokens(harness: Harness) {
    let (key, codes) = enroll(&harness, "ivan").await;
    let mfa = &harness.mfa;
    for _ in 0..5 {
        let challenge = mfa.start_challenge("ivan", &["pwd"], None).await.unwrap();
        assert!(matches!(
            mfa.complete_challenge(&challenge.mfa_token, Proof::Totp("000000"))
                .await,
            Err(MfaError::InvalidCode)
        ));
    }
    let challenge = mfa.start_challenge("ivan", &["pwd"], None).await.unwrap();
    let good = key.code_at(harness.clock.unix_seconds());
    let wait = retry_after(
        mfa.complete_challenge(&challenge.mfa_token, Proof::Totp(&good))
            .await,
    );
    assert_eq!(wait, Duration::from_secs(300));
    // Every path that checks a code is closed: backup codes, plain verification.
    retry_after(mfa.redeem_backup_code("ivan", &codes[0]).await);
    retry_after(mfa.verify_totp("ivan", &good).await);
    // Another user is not affected.
    let (other_key, _) = enroll(&harness, "judy").await;
    mfa.verify_totp("judy", &other_key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();

    // After the lockout (the window's length for a first burst; judy's enrollment took 30 s of
    // it), codes work again.
    harness.clock.advance(Duration::from_secs(300 - 30 - 1));
    retry_after(
        mfa.verify_totp("ivan", &key.code_at(harness.clock.unix_seconds()))
            .await,
    );
    harness.clock.advance(Duration::from_secs(1));
    mfa.verify_totp("ivan", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
}

async fn lockouts_grow_with_each_burst_and_successes_forgive(harness: Harness) {
    let (key, _) = enroll(&harness, "kim").await;
    let mfa = &harness.mfa;
    // Four failures then a success: the count starts again.
    for _ in 0..4 {
        assert!(mfa.verify_totp("kim", "000000").await.is_err());
    }
    mfa.verify_totp("kim", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(matches!(
            mfa.verify_totp("kim", "000000").await,
            Err(MfaError::InvalidCode)
        ));
    }
    assert_eq!(
        retry_after(mfa.verify_totp("kim", "000000").await),
        Duration::from_secs(300)
    );
    // The second burst of the day locks for twice as long, the third four times.
    for expected in [600, 1200] {
        harness.clock.advance(Duration::from_secs(3600));
        for _ in 0..5 {
            assert!(matches!(
                mfa.verify_totp("kim", "000000").await,
                Err(MfaError::InvalidCode)
            ));
        }
        let wait = retry_after(mfa.verify_totp("kim", "000000").await);
        assert_eq!(wait, Duration::from_secs(expected));
    }
}

async fn a_burst_of_100_concurrent_guesses_gets_five_tries(harness: Harness) {
    let (_, _) = enroll(&harness, "lou").await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let mfa = harness.mfa.clone();
            tokio::spawn(async move { mfa.verify_totp("lou", &format!("{i:06}")).await })
        })
        .collect();
    let mut checked = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(MfaError::RateLimited { .. }) => {}
            Err(MfaError::InvalidCode) | Ok(()) => checked += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(checked, 5, "only five guesses may be checked");
}

/// The token's own bound, apart from the per-user one (set out of reach here): its attempts are
/// counted before each check, so 100 racing wrong codes get five checks between them, not 100.
async fn one_mfa_token_has_five_proofs_checked_however_many_race(harness: Harness) {
    let (key, _) = enroll(&harness, "meg").await;
    let mfa = harness.mfa.clone().with_attempt_policy(AttemptPolicy {
        max_failures: 1_000_000,
        lock_after: 1_000_000,
        ..AttemptPolicy::default()
    });
    let challenge = mfa.start_challenge("meg", &["pwd"], None).await.unwrap();
    let wrong = wrong_code(&key, harness.clock.unix_seconds());
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (mfa, token, code) = (mfa.clone(), challenge.mfa_token.clone(), wrong.clone());
            tokio::spawn(async move { mfa.complete_challenge(&token, Proof::Totp(&code)).await })
        })
        .collect();
    let mut checked = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(MfaError::InvalidCode) => checked += 1,
            Err(MfaError::InvalidMfaToken) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        checked, MAX_CODE_ATTEMPTS,
        "only five proofs may be checked on one token"
    );
    // Dead: even the right code is refused now.
    let good = key.code_at(harness.clock.unix_seconds());
    assert!(matches!(
        mfa.complete_challenge(&challenge.mfa_token, Proof::Totp(&good))
            .await,
        Err(MfaError::InvalidMfaToken)
    ));
}

/// An attempt is counted before its proof is checked and given back when no code was checked
/// (here: a factor the user does not have), so such refusals never kill the token. (The per-user
/// limit, which counts them, is set out of reach: this is the token's own bound.)
async fn refusals_that_check_no_code_do_not_use_up_the_mfa_token(harness: Harness) {
    let (key, _) = enroll(&harness, "ned").await;
    let mfa = &harness.mfa.clone().with_attempt_policy(AttemptPolicy {
        max_failures: 1_000_000,
        lock_after: 1_000_000,
        ..AttemptPolicy::default()
    });
    let challenge = mfa.start_challenge("ned", &["pwd"], None).await.unwrap();
    for _ in 0..2 * MAX_CODE_ATTEMPTS {
        match mfa
            .complete_challenge(&challenge.mfa_token, Proof::Sms("123456"))
            .await
        {
            Err(MfaError::InvalidCode | MfaError::InvalidMfaToken) | Ok(_) => {
                panic!("an SMS proof of a user without SMS was checked")
            }
            Err(_) => {}
        }
    }
    let good = key.code_at(harness.clock.unix_seconds());
    let done = mfa
        .complete_challenge(&challenge.mfa_token, Proof::Totp(&good))
        .await
        .unwrap();
    assert_eq!(done.subject, "ned");
}

async fn enrollment_is_pending_until_a_valid_code(harness: Harness) {
    let mfa = &harness.mfa;
    let enrollment = mfa
        .begin_totp_enrollment("pending", "p@example.com")
        .await
        .unwrap();
    assert!(enrollment.qr_code.starts_with("data:image/png;base64,"));
    assert!(enrollment.otpauth_uri.starts_with("otpauth://totp/"));
    assert!(!mfa.is_enrolled("pending").await.unwrap());
    assert!(matches!(
        mfa.verify_totp("pending", "123456").await,
        Err(MfaError::NotEnrolled)
    ));
    assert!(matches!(
        mfa.confirm_totp_enrollment("pending", "000000").await,
        Err(MfaError::InvalidCode)
    ));
    assert!(!mfa.is_enrolled("pending").await.unwrap());
    let summary = mfa.factor_summary("pending").await.unwrap();
    assert_eq!(summary.backup_codes_remaining, 0);
    assert_eq!(summary.factors.len(), 1, "{summary:?}");
    assert_eq!(summary.factors[0].method, Method::Totp);
    assert!(!summary.factors[0].active, "pending until confirmed");
    assert!(!summary.factors[0].locked);
    assert_eq!(summary.factors[0].created_at, T0);
    assert_eq!(
        serde_json::to_value(&summary).unwrap()["factors"][0]["method"],
        "totp"
    );

    let (_, codes) = enroll(&harness, "pending").await;
    assert_eq!(codes.len(), 10);
    assert!(mfa.is_enrolled("pending").await.unwrap());
    let summary = mfa.factor_summary("pending").await.unwrap();
    assert_eq!(summary.backup_codes_remaining, 10);
    assert_eq!(summary.factors.len(), 1, "{summary:?}");
    assert!(summary.factors[0].active);
    assert!(!summary.factors[0].locked);
    assert!(matches!(
        mfa.begin_totp_enrollment("pending", "p").await,
        Err(MfaError::AlreadyEnrolled)
    ));
}

async fn a_totp_code_is_accepted_once(harness: Harness) {
    let (key, _) = enroll(&harness, "alice").await;
    let mfa = &harness.mfa;
    let code = key.code_at(harness.clock.unix_seconds());
    mfa.verify_totp("alice", &code).await.unwrap();
    assert!(matches!(
        mfa.verify_totp("alice", &code).await,
        Err(MfaError::InvalidCode)
    ));
    // Still refused later in its window, and the previous step's code too.
    harness.clock.advance(Duration::from_secs(20));
    assert!(matches!(
        mfa.verify_totp("alice", &code).await,
        Err(MfaError::InvalidCode)
    ));
    let previous = key.code_at(harness.clock.unix_seconds() - 30);
    assert!(mfa.verify_totp("alice", &previous).await.is_err());
    // The next step's code is fine.
    harness.clock.advance(Duration::from_secs(30));
    let next = key.code_at(harness.clock.unix_seconds());
    mfa.verify_totp("alice", &next).await.unwrap();
}

async fn one_code_raced_100_times_succeeds_once(harness: Harness) {
    let (key, _) = enroll(&harness, "racer").await;
    let code = key.code_at(harness.clock.unix_seconds());
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let mfa = harness.mfa.clone();
            let code = code.clone();
            tokio::spawn(async move { mfa.verify_totp("racer", &code).await.is_ok() })
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        successes += usize::from(task.await.unwrap());
    }
    assert_eq!(successes, 1);
}

async fn one_backup_code_raced_100_times_succeeds_once(harness: Harness) {
    let (_, codes) = enroll(&harness, "backup-racer").await;
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let mfa = harness.mfa.clone();
            let code = codes[3].clone();
            tokio::spawn(async move { mfa.redeem_backup_code("backup-racer", &code).await })
        })
        .collect();
    let mut successes = Vec::new();
    for task in tasks {
        if let Ok(remaining) = task.await.unwrap() {
            successes.push(remaining);
        }
    }
    assert_eq!(successes, vec![9]);
}

async fn backup_codes_are_single_use_normalised_and_regenerated_whole(harness: Harness) {
    let (_, codes) = enroll(&harness, "bob").await;
    let mfa = &harness.mfa;
    let sloppy = codes[0].to_lowercase().replace('-', " ");
    assert_eq!(mfa.redeem_backup_code("bob", &sloppy).await.unwrap(), 9);
    assert!(matches!(
        mfa.redeem_backup_code("bob", &codes[0]).await,
        Err(MfaError::InvalidCode)
    ));
    // Another user's code does nothing for bob, and garbage is just wrong.
    let (_, carol_codes) = enroll(&harness, "carol").await;
    assert!(
        mfa.redeem_backup_code("bob", &carol_codes[0])
            .await
            .is_err()
    );
    for garbage in ["", "ABCDE", "ZZZZZ-ZZZZZ", "💥💥💥💥💥-💥💥💥💥💥"] {
        assert!(mfa.redeem_backup_code("bob", garbage).await.is_err());
    }

    // (Those were six failures: the user is locked out for a while.)
    harness.clock.advance(Duration::from_secs(600));
    let fresh = mfa.regenerate_backup_codes("bob").await.unwrap();
    assert_eq!(
        mfa.factor_summary("bob")
            .await
            .unwrap()
            .backup_codes_remaining,
        10
    );
    assert!(mfa.redeem_backup_code("bob", &codes[1]).await.is_err());
    assert_eq!(mfa.redeem_backup_code("bob", &fresh[1]).await.unwrap(), 9);
    assert!(matches!(
        mfa.regenerate_backup_codes("nobody").await,
        Err(MfaError::NotEnrolled)
    ));
}

async fn an_mfa_token_raced_100_times_succeeds_once(harness: Harness) {
    let (key, codes) = enroll(&harness, "dave").await;
    let now = harness.clock.unix_seconds();
    // Thirteen different valid proofs (three TOTP steps, ten backup codes), so that only the
    // token's own single use can stop all but one.
    let mut proofs: Vec<(bool, String)> = (0..3)
        .map(|offset| (true, key.code_at(now - 30 + offset * 30)))
        .collect();
    proofs.extend(codes.into_iter().map(|code| (false, code)));
    let challenge = harness
        .mfa
        .start_challenge("dave", &["pwd"], None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let mfa = harness.mfa.clone();
            let token = challenge.mfa_token.clone();
            let (is_totp, code) = proofs[i % proofs.len()].clone();
            tokio::spawn(async move {
                let proof = if is_totp {
                    Proof::Totp(&code)
                } else {
                    Proof::BackupCode(&code)
                };
                mfa.complete_challenge(&token, proof).await.is_ok()
            })
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        successes += usize::from(task.await.unwrap());
    }
    assert_eq!(successes, 1);
}

async fn an_mfa_token_survives_four_wrong_codes_and_dies_at_the_fifth(harness: Harness) {
    let (key, _) = enroll(&harness, "erin").await;
    let mfa = &harness.mfa;
    let challenge = mfa.start_challenge("erin", &["pwd"], None).await.unwrap();
    assert_eq!(challenge.methods, [Method::Totp, Method::BackupCode]);
    assert!(challenge.mfa_required);
    for _ in 0..4 {
        assert!(matches!(
            mfa.complete_challenge(&challenge.mfa_token, Proof::Totp("000000"))
                .await,
            Err(MfaError::InvalidCode)
        ));
    }
    let good = key.code_at(harness.clock.unix_seconds());
    let done = mfa
        .complete_challenge(&challenge.mfa_token, Proof::Totp(&good))
        .await
        .unwrap();
    assert_eq!(done.subject, "erin");
    assert_eq!(done.amr, ["pwd", "otp"]);
    assert_eq!(done.method, Method::Totp);
    assert_eq!(done.remaining_backup_codes, None);
    assert_eq!(done.pending, None);
    // Consumed: the same token cannot be used again.
    assert!(matches!(
        mfa.complete_challenge(&challenge.mfa_token, Proof::Totp(&good))
            .await,
        Err(MfaError::InvalidMfaToken)
    ));

    harness.clock.advance(Duration::from_secs(30));
    let second = mfa.start_challenge("erin", &["pwd"], None).await.unwrap();
    for _ in 0..5 {
        assert!(
            mfa.complete_challenge(&second.mfa_token, Proof::Totp("000000"))
                .await
                .is_err()
        );
    }
    let good = key.code_at(harness.clock.unix_seconds());
    assert!(matches!(
        mfa.complete_challenge(&second.mfa_token, Proof::Totp(&good))
            .await,
        Err(MfaError::InvalidMfaToken)
    ));
    // The code was not spent on the dead token: its step is still unused.
    let credential = totp_credential(mfa.stores().factors.as_ref(), "erin").await;
    assert!(credential.counter < harness.clock.unix_seconds() / 30);
}

async fn an_mfa_token_expires_after_five_minutes(harness: Harness) {
    let (key, _) = enroll(&harness, "frank").await;
    let mfa = &harness.mfa;
    let challenge = mfa.start_challenge("frank", &["pwd"], None).await.unwrap();
    harness.clock.advance(Duration::from_secs(5 * 60));
    let code = key.code_at(harness.clock.unix_seconds());
    assert!(matches!(
        mfa.complete_challenge(&challenge.mfa_token, Proof::Totp(&code))
            .await,
        Err(MfaError::InvalidMfaToken)
    ));
    assert!(matches!(
        mfa.complete_challenge("not-a-token", Proof::Totp(&code))
            .await,
        Err(MfaError::InvalidMfaToken)
    ));
    assert!(matches!(
        mfa.complete_challenge(&"x".repeat(10_000), Proof::Totp(&code))
            .await,
        Err(MfaError::InvalidMfaToken)
    ));
}

async fn rotation_keeps_old_secrets_working_and_reseal_moves_them(harness: Harness) {
    let (key, _) = enroll(&harness, "gina").await;
    let factors = harness.mfa.stores().factors.clone();
    let before = totp_payload(factors.as_ref(), "gina").await;
    assert!(before["secret"].as_str().unwrap().starts_with("v1.k1."));

    // Another engine on the same factors, with its own ephemeral state, devices and trail.
    let on_the_same_factors = |keyring: Keyring| {
        let elsewhere = Arc::new(memory_store(&harness.clock));
        let stores = Stores {
            factors: factors.clone(),
            ephemeral: elsewhere.clone(),
            devices: elsewhere.clone(),
            audit: elsewhere,
        };
        engine(stores, keyring, &harness.clock)
    };

    // Rotate: k2 seals, k1 still opens.
    let rotated = on_the_same_factors(
        Keyring::new("k2", &[2; 32])
            .unwrap()
            .with_old_key("k1", &[1; 32])
            .unwrap(),
    );
    rotated
        .verify_totp("gina", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 1);
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 0);
    let after = totp_payload(factors.as_ref(), "gina").await;
    let sealed_after = after["secret"].as_str().unwrap();
    assert!(sealed_after.starts_with("v1.k2."), "{sealed_after}");
    // Only the secret moved: the parameters are those it was enrolled with.
    for field in ["algorithm", "digits", "period"] {
        assert_eq!(after[field], before[field], "{field}");
    }

    // Only the new key is needed from now on.
    let new_only = on_the_same_factors(Keyring::new("k2", &[2; 32]).unwrap());
    harness.clock.advance(Duration::from_secs(30));
    new_only
        .verify_totp("gina", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
    // And the old key alone opens nothing any more.
    let old_only = on_the_same_factors(keyring());
    harness.clock.advance(Duration::from_secs(30));
    assert!(matches!(
        old_only
            .verify_totp("gina", &key.code_at(harness.clock.unix_seconds()))
            .await,
        Err(MfaError::Internal(_))
    ));
}

fn lock_policy() -> AttemptPolicy {
    AttemptPolicy {
        lock_after: 100,
        ..AttemptPolicy::default()
    }
}

/// `count` wrong TOTP codes, each checked and refused; the clock moves a whole per-user window on
/// after each, so that limit never blocks and only the factor's streak grows.
async fn wrong_totp_codes(harness: &Harness, mfa: &Mfa, key: &TotpKey, user: &str, count: u64) {
    for attempt in 0..count {
        let code = wrong_code(key, harness.clock.unix_seconds());
        match mfa.verify_totp(user, &code).await {
            Err(MfaError::InvalidCode) => {}
            other => panic!("wrong code {attempt}: expected InvalidCode, got {other:?}"),
        }
        harness.clock.advance(WINDOW);
    }
}

/// `count` wrong (well-formed) backup codes, like [`wrong_totp_codes`].
async fn wrong_backup_codes(
    harness: &Harness,
    mfa: &Mfa,
    codes: &[String],
    user: &str,
    count: u64,
) {
    let wrong = "ZZZZZ-ZZZZZ";
    assert!(!codes.iter().any(|code| code == wrong));
    for attempt in 0..count {
        match mfa.redeem_backup_code(user, wrong).await {
            Err(MfaError::InvalidCode) => {}
            other => panic!("wrong backup code {attempt}: expected InvalidCode, got {other:?}"),
        }
        harness.clock.advance(WINDOW);
    }
}

/// The stored `factor_locked` events of `user`.
async fn lock_events(mfa: &Mfa, user: &str) -> Vec<Value> {
    mfa.audit()
        .events(user, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.kind == "factor_locked")
        .map(|event| serde_json::from_str(&event.detail).unwrap())
        .collect()
}

fn locked_method(result: Result<impl std::fmt::Debug, MfaError>) -> Method {
    match result {
        Err(MfaError::FactorLocked { method }) => method,
        other => panic!("expected FactorLocked, got {other:?}"),
    }
}

async fn ninety_nine_wrong_totp_codes_then_a_right_one_reset_the_streak(harness: Harness) {
    let (key, _) = enroll(&harness, "mo").await;
    let mfa = harness.mfa.clone().with_attempt_policy(lock_policy());
    wrong_totp_codes(&harness, &mfa, &key, "mo", 99).await;
    assert!(!mfa.is_locked("mo", Method::Totp).await.unwrap());
    mfa.verify_totp("mo", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
    // The streak starts again: 99 more wrong codes still leave the factor usable.
    wrong_totp_codes(&harness, &mfa, &key, "mo", 99).await;
    assert!(!mfa.is_locked("mo", Method::Totp).await.unwrap());
    mfa.verify_totp("mo", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
    assert!(lock_events(&mfa, "mo").await.is_empty());
    let summary = mfa.factor_summary("mo").await.unwrap();
    assert!(!summary.factors[0].locked, "{summary:?}");
}

async fn a_hundred_wrong_totp_codes_in_a_row_lock_the_factor(harness: Harness) {
    let (key, codes) = enroll(&harness, "nell").await;
    let mfa = harness.mfa.clone().with_attempt_policy(lock_policy());
    wrong_totp_codes(&harness, &mfa, &key, "nell", 99).await;
    assert!(!mfa.is_locked("nell", Method::Totp).await.unwrap());
    assert!(lock_events(&mfa, "nell").await.is_empty());
    // The hundredth is checked (and wrong), and locks the factor.
    wrong_totp_codes(&harness, &mfa, &key, "nell", 1).await;
    assert!(mfa.is_locked("nell", Method::Totp).await.unwrap());

    // Now even the right code is refused, on every path, and so is a wrong one.
    let right = key.code_at(harness.clock.unix_seconds());
    assert_eq!(
        locked_method(mfa.verify_totp("nell", &right).await),
        Method::Totp
    );
    let challenge = mfa.start_challenge("nell", &["pwd"], None).await.unwrap();
    assert_eq!(
        locked_method(
            mfa.complete_challenge(&challenge.mfa_token, Proof::Totp(&right))
                .await
        ),
        Method::Totp
    );
    let wrong = wrong_code(&key, harness.clock.unix_seconds());
    assert_eq!(
        locked_method(mfa.verify_totp("nell", &wrong).await),
        Method::Totp
    );
    // It stays locked however long one waits: only a recovery or a reset unlocks it.
    harness.clock.advance(Duration::from_secs(3 * 24 * 60 * 60));
    let right = key.code_at(harness.clock.unix_seconds());
    assert_eq!(
        locked_method(mfa.verify_totp("nell", &right).await),
        Method::Totp
    );
    assert!(mfa.is_locked("nell", Method::Totp).await.unwrap());

    // Locked once, audited once.
    assert_eq!(
        lock_events(&mfa, "nell").await,
        [json!({"method": "totp", "failures": 100})]
    );
    let summary = mfa.factor_summary("nell").await.unwrap();
    assert_eq!(summary.factors.len(), 1, "{summary:?}");
    assert!(summary.factors[0].locked, "{summary:?}");

    // The backup codes are another factor: they still work, and do not unlock the app.
    assert!(!mfa.is_locked("nell", Method::BackupCode).await.unwrap());
    let challenge = mfa.start_challenge("nell", &["pwd"], None).await.unwrap();
    let done = mfa
        .complete_challenge(&challenge.mfa_token, Proof::BackupCode(&codes[0]))
        .await
        .unwrap();
    assert_eq!(done.method, Method::BackupCode);
    assert_eq!(done.remaining_backup_codes, Some(9));
    assert!(mfa.is_locked("nell", Method::Totp).await.unwrap());
    harness.clock.advance(Duration::from_secs(30));
    let right = key.code_at(harness.clock.unix_seconds());
    assert_eq!(
        locked_method(mfa.verify_totp("nell", &right).await),
        Method::Totp
    );
    assert_eq!(lock_events(&mfa, "nell").await.len(), 1);
}

async fn a_backup_code_streak_is_separate(harness: Harness) {
    let (key, codes) = enroll(&harness, "ona").await;
    let mfa = harness.mfa.clone().with_attempt_policy(lock_policy());
    wrong_totp_codes(&harness, &mfa, &key, "ona", 99).await;
    // Wrong backup codes lengthen their own streak, not the app's.
    wrong_backup_codes(&harness, &mfa, &codes, "ona", 100).await;
    assert!(mfa.is_locked("ona", Method::BackupCode).await.unwrap());
    assert!(!mfa.is_locked("ona", Method::Totp).await.unwrap());
    assert_eq!(
        lock_events(&mfa, "ona").await,
        [json!({"method": "backup_code", "failures": 100})]
    );
    assert_eq!(
        locked_method(mfa.redeem_backup_code("ona", &codes[0]).await),
        Method::BackupCode
    );
    let challenge = mfa.start_challenge("ona", &["pwd"], None).await.unwrap();
    assert_eq!(
        locked_method(
            mfa.complete_challenge(&challenge.mfa_token, Proof::BackupCode(&codes[0]))
                .await
        ),
        Method::BackupCode
    );
    // The app still works, and its success does not unlock the backup codes.
    let done = mfa
        .complete_challenge(
            &challenge.mfa_token,
            Proof::Totp(&key.code_at(harness.clock.unix_seconds())),
        )
        .await
        .unwrap();
    assert_eq!(done.method, Method::Totp);
    assert!(mfa.is_locked("ona", Method::BackupCode).await.unwrap());
    assert_eq!(
        locked_method(mfa.redeem_backup_code("ona", &codes[0]).await),
        Method::BackupCode
    );
    // Nothing was consumed by the refusals.
    assert_eq!(mfa.remaining_backup_codes("ona").await.unwrap(), 10);
    // The app's streak was ended by its success: one more wrong code does not lock it.
    wrong_totp_codes(&harness, &mfa, &key, "ona", 1).await;
    assert!(!mfa.is_locked("ona", Method::Totp).await.unwrap());
    assert_eq!(lock_events(&mfa, "ona").await.len(), 1);
}

async fn methods_list_only_what_the_user_has(harness: Harness) {
    let mfa = &harness.mfa;
    let not_enrolled = |result: Result<stepup::mfa::MfaChallenge, MfaError>| {
        matches!(result, Err(MfaError::NotEnrolled))
    };
    assert!(mfa.methods("nobody").await.unwrap().is_empty());
    assert!(not_enrolled(
        mfa.start_challenge("nobody", &["pwd"], None).await
    ));

    // A pending enrollment proves nothing yet.
    mfa.begin_totp_enrollment("pat", "pat").await.unwrap();
    assert!(mfa.methods("pat").await.unwrap().is_empty());
    assert!(not_enrolled(
        mfa.start_challenge("pat", &["pwd"], None).await
    ));

    let (_, codes) = enroll(&harness, "pat").await;
    assert_eq!(
        mfa.methods("pat").await.unwrap(),
        [Method::Totp, Method::BackupCode]
    );
    let challenge = mfa.start_challenge("pat", &["pwd"], None).await.unwrap();
    assert_eq!(challenge.methods, [Method::Totp, Method::BackupCode]);
    assert_eq!(
        serde_json::to_value(&challenge).unwrap()["methods"],
        json!(["totp", "backup_code"])
    );

    // Once every backup code is used, they are no longer offered.
    for (used, code) in codes.iter().enumerate() {
        assert_eq!(
            mfa.redeem_backup_code("pat", code).await.unwrap(),
            codes.len() - used - 1
        );
    }
    assert_eq!(mfa.methods("pat").await.unwrap(), [Method::Totp]);
    let challenge = mfa.start_challenge("pat", &["pwd"], None).await.unwrap();
    assert_eq!(challenge.methods, [Method::Totp]);
    assert_eq!(
        serde_json::to_value(&challenge).unwrap()["methods"],
        json!(["totp"])
    );

    // A new set brings them back.
    mfa.regenerate_backup_codes("pat").await.unwrap();
    assert_eq!(
        mfa.methods("pat").await.unwrap(),
        [Method::Totp, Method::BackupCode]
    );

    // Without the app, nothing is left: the backup codes went with it.
    assert!(mfa.remove_totp("pat").await.unwrap());
    assert!(mfa.methods("pat").await.unwrap().is_empty());
    assert_eq!(mfa.remaining_backup_codes("pat").await.unwrap(), 0);
    assert!(not_enrolled(
        mfa.start_challenge("pat", &["pwd"], None).await
    ));
    // Another user's factors are not this user's.
    let (_, _) = enroll(&harness, "quill").await;
    assert!(mfa.methods("pat").await.unwrap().is_empty());
}

async fn deleting_a_user_voids_earlier_tokens_and_every_factor(harness: Harness) {
    let (key, codes) = enroll(&harness, "quin").await;
    let (other_key, _) = enroll(&harness, "rae").await;
    let mfa = &harness.mfa;
    let issued = harness.clock.unix_seconds();
    assert!(!mfa.is_token_revoked("quin", issued).await.unwrap());
    let device = mfa
        .remember_device("quin", Duration::from_secs(3600), DeviceSeen::default())
        .await
        .unwrap();
    assert_eq!(mfa.devices("quin").await.unwrap(), [device.record]);

    harness.clock.advance(Duration::from_secs(10));
    let deleted_at = harness.clock.unix_seconds();
    mfa.delete_user("quin").await.unwrap();

    // Every token issued until now is void, one of this very second too; nobody else's is.
    assert!(mfa.is_token_revoked("quin", issued).await.unwrap());
    assert!(mfa.is_token_revoked("quin", T0).await.unwrap());
    assert!(mfa.is_token_revoked("quin", deleted_at).await.unwrap());
    assert!(!mfa.is_token_revoked("rae", issued).await.unwrap());

    // Nothing that logged the user in is left.
    assert!(!mfa.is_enrolled("quin").await.unwrap());
    assert!(mfa.methods("quin").await.unwrap().is_empty());
    assert_eq!(mfa.remaining_backup_codes("quin").await.unwrap(), 0);
    assert!(mfa.devices("quin").await.unwrap().is_empty());
    let summary = mfa.factor_summary("quin").await.unwrap();
    assert!(summary.factors.is_empty(), "{summary:?}");
    assert!(matches!(
        mfa.verify_totp("quin", &key.code_at(deleted_at)).await,
        Err(MfaError::NotEnrolled)
    ));
    assert!(matches!(
        mfa.redeem_backup_code("quin", &codes[0]).await,
        Err(MfaError::InvalidCode)
    ));
    let kinds: Vec<String> = mfa
        .audit()
        .events("quin", 100)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert!(
        kinds.iter().any(|kind| kind == "account_deleted"),
        "{kinds:?}"
    );
    // The other user keeps everything.
    mfa.verify_totp("rae", &other_key.code_at(deleted_at))
        .await
        .unwrap();

    // Tokens issued afterwards are good, and the mark outlives a new enrollment.
    harness.clock.advance(Duration::from_secs(1));
    assert!(!mfa.is_token_revoked("quin", deleted_at + 1).await.unwrap());
    enroll(&harness, "quin").await;
    assert!(mfa.is_token_revoked("quin", issued).await.unwrap());
    assert!(!mfa.is_token_revoked("quin", deleted_at + 1).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_holds_no_secret_code_or_token_in_the_clear() {
    let clock = ManualClock::at_unix(T0);
    let (store, dir) = sqlite_file(&clock).await;
    let mfa = engine(Stores::shared(store.clone()), keyring(), &clock);
    let enrollment = mfa
        .begin_totp_enrollment("henry", "h@example.com")
        .await
        .unwrap();
    let secret = totp_rs::Secret::try_from_base32(&enrollment.secret).unwrap();
    let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();
    let codes = mfa
        .confirm_totp_enrollment("henry", &key.code_at(T0))
        .await
        .unwrap();
    let challenge = mfa.start_challenge("henry", &["pwd"], None).await.unwrap();
    // A failure leaves a streak, a remembered device its record, an authorization code its grant.
    assert!(matches!(
        mfa.verify_totp("henry", &wrong_code(&key, T0)).await,
        Err(MfaError::InvalidCode)
    ));
    let device = mfa
        .remember_device(
            "henry",
            Duration::from_secs(3600),
            DeviceSeen {
                address: Some("203.0.113.7".into()),
                user_agent: Some("test agent".into()),
            },
        )
        .await
        .unwrap();
    let verifier = "a-pkce-verifier-long-enough-to-be-valid-0123456789";
    let pending = PendingAuthorization {
        client_id: "demo".into(),
        redirect_uri: "http://localhost:3000/callback".into(),
        state: None,
        code_challenge: URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
    };
    let authentication = Authentication {
        subject: "henry".into(),
        acr: "mfa".into(),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: Some(T0),
    };
    let authorization_code = mfa
        .issue_authorization_code(authentication, &pending)
        .await
        .unwrap();

    // The state is in the tables of the current schema, and only in digested or sealed form.
    let pool = store.pool();
    let count = |sql: &'static str, bind: String| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(bind)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(
        count(
            "SELECT count(*) FROM credentials \
             WHERE user_id = ?1 AND kind = 'totp' AND status = 'active'",
            "henry".into()
        )
        .await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM codes WHERE user_id = ?1 AND kind = 'backup_code'",
            "henry".into()
        )
        .await,
        10
    );
    assert_eq!(
        count(
            "SELECT coalesce(sum(streak), 0) FROM factor_failures \
             WHERE user_id = ?1 AND kind = 'totp'",
            "henry".into()
        )
        .await,
        1
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM devices WHERE token_hash = ?1",
            digest(&device.token)
        )
        .await,
        1,
        "the device is found by its token's SHA-256"
    );
    for token in [&challenge.mfa_token, &authorization_code] {
        assert_eq!(
            count(
                "SELECT count(*) FROM ephemeral WHERE instr(key, ?1) > 0",
                digest(token)
            )
            .await,
            1,
            "a single-use token is kept under its SHA-256"
        );
    }
    let old_tables = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM sqlite_master WHERE name IN ('totp_enrollments', 'backup_codes')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        old_tables, 0,
        "the TOTP-specific tables of version 1 are gone"
    );
    let payload: Value = serde_json::from_str(
        &sqlx::query_scalar::<_, String>("SELECT payload FROM credentials WHERE user_id = 'henry'")
            .fetch_one(pool)
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        payload["secret"].as_str().unwrap().starts_with("v1.k1."),
        "{payload}"
    );

    // The database and its write-ahead log, byte for byte.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(bytes.len() > 4096, "the test must read a real database");
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    assert!(contains(b"henry"), "the user's rows are there");
    assert!(
        contains(digest(&device.token).as_bytes()),
        "the device's digest is there"
    );
    assert!(
        !contains(enrollment.secret.as_bytes()),
        "base32 secret in the clear"
    );
    assert!(!contains(secret.as_bytes()), "raw secret in the clear");
    for code in &codes {
        assert!(
            !contains(code.as_bytes()),
            "backup code {code} in the clear"
        );
        assert!(
            !contains(code.replace('-', "").as_bytes()),
            "normalised code in the clear"
        );
    }
    assert!(
        !contains(challenge.mfa_token.as_bytes()),
        "mfa_token in the clear"
    );
    assert!(
        !contains(device.token.as_bytes()),
        "device token in the clear"
    );
    assert!(
        !contains(authorization_code.as_bytes()),
        "authorization code in the clear"
    );
    assert!(!contains(verifier.as_bytes()), "PKCE verifier in the clear");
}

/// A store whose every call fails, as when its database is unreachable.
struct DownStore;

type Down<T> = stepup::store::StoreResult<T>;

fn down<T>() -> Down<T> {
    Err(stepup::StoreError::Unavailable("connection refused".into()))
}

#[async_trait::async_trait]
impl FactorStore for DownStore {
    async fn put_pending(&self, _: Credential, _: stepup::store::Enrollment) -> Down<bool> {
        down()
    }
    async fn activate(
        &self,
        _: stepup::store::CredentialRef<'_>,
        _: u64,
        _: Option<stepup::store::CodeSet>,
    ) -> Down<bool> {
        down()
    }
    async fn credential(&self, _: stepup::store::CredentialRef<'_>) -> Down<Option<Credential>> {
        down()
    }
    async fn credentials(&self, _: &str) -> Down<Vec<Credential>> {
        down()
    }
    async fn credentials_of_kind(&self, _: &str) -> Down<Vec<Credential>> {
        down()
    }
    async fn credential_by_id(&self, _: &str, _: &str) -> Down<Option<Credential>> {
        down()
    }
    async fn advance_counter(
        &self,
        _: stepup::store::CredentialRef<'_>,
        _: u64,
        _: Option<&str>,
        _: u64,
    ) -> Down<bool> {
        down()
    }
    async fn replace_payload(
        &self,
        _: stepup::store::CredentialRef<'_>,
        _: &str,
        _: &str,
        _: Option<u64>,
    ) -> Down<bool> {
        down()
    }
    async fn set_label(&self, _: stepup::store::CredentialRef<'_>, _: Option<&str>) -> Down<bool> {
        down()
    }
    async fn delete_credential(&self, _: stepup::store::CredentialRef<'_>) -> Down<bool> {
        down()
    }
    async fn replace_codes(&self, _: &str, _: stepup::store::CodeSet) -> Down<()> {
        down()
    }
    async fn code_hash(&self, _: &str, _: &str, _: &str) -> Down<Option<String>> {
        down()
    }
    async fn consume_code(&self, _: &str, _: &str, _: &str) -> Down<bool> {
        down()
    }
    async fn count_codes(&self, _: &str, _: &str) -> Down<usize> {
        down()
    }
    async fn record_failure(&self, _: &str, _: &str) -> Down<u64> {
        down()
    }
    async fn failures(&self, _: &str, _: &str) -> Down<u64> {
        down()
    }
    async fn clear_failures(&self, _: &str, _: &str) -> Down<()> {
        down()
    }
    async fn revoke_tokens_before(&self, _: &str, _: u64) -> Down<()> {
        down()
    }
    async fn tokens_revoked_before(&self, _: &str) -> Down<Option<u64>> {
        down()
    }
    async fn delete_user_factors(&self, _: &str) -> Down<()> {
        down()
    }
    async fn ping(&self) -> Down<()> {
        down()
    }
}

#[async_trait::async_trait]
impl stepup::store::EphemeralStore for DownStore {
    async fn insert_if_absent(&self, _: &str, _: &[u8], _: Duration) -> Down<bool> {
        down()
    }
    async fn get(&self, _: &str) -> Down<Option<Vec<u8>>> {
        down()
    }
    async fn take(&self, _: &str) -> Down<Option<Vec<u8>>> {
        down()
    }
    async fn increment(&self, _: &str, _: Duration) -> Down<u64> {
        down()
    }
    async fn decrement(&self, _: &str) -> Down<u64> {
        down()
    }
    async fn compare_and_swap(
        &self,
        _: &str,
        _: Option<&[u8]>,
        _: &[u8],
        _: Duration,
    ) -> Down<bool> {
        down()
    }
    async fn remove(&self, _: &str) -> Down<()> {
        down()
    }
}

#[async_trait::async_trait]
impl stepup::store::DeviceStore for DownStore {
    async fn insert_device(&self, _: stepup::store::DeviceRecord) -> Down<()> {
        down()
    }
    async fn device_by_token(&self, _: &str) -> Down<Option<stepup::store::DeviceRecord>> {
        down()
    }
    async fn touch_device(&self, _: &str, _: u64, _: Option<&str>, _: Option<&str>) -> Down<bool> {
        down()
    }
    async fn devices(&self, _: &str) -> Down<Vec<stepup::store::DeviceRecord>> {
        down()
    }
    async fn delete_device(&self, _: &str, _: &str) -> Down<bool> {
        down()
    }
    async fn delete_devices(&self, _: &str) -> Down<usize> {
        down()
    }
}

#[async_trait::async_trait]
impl stepup::store::AuditStore for DownStore {
    async fn append_audit(&self, _: stepup::store::AuditRecord) -> Down<()> {
        down()
    }
    async fn audit_events(&self, _: &str, _: usize) -> Down<Vec<stepup::store::AuditRecord>> {
        down()
    }
}

#[tokio::test]
async fn every_verification_fails_closed_when_the_store_is_down() {
    let clock = ManualClock::at_unix(T0);
    let mfa = engine(Stores::shared(DownStore), keyring(), &clock);
    let unavailable =
        |result: Result<(), MfaError>| matches!(result, Err(MfaError::Unavailable(_)));
    assert!(unavailable(
        mfa.verify_totp("u", "123456").await.map(|_| ())
    ));
    assert!(unavailable(
        mfa.redeem_backup_code("u", "ABCDE-FGHJK").await.map(|_| ())
    ));
    assert!(unavailable(mfa.is_enrolled("u").await.map(|_| ())));
    assert!(unavailable(mfa.methods("u").await.map(|_| ())));
    assert!(unavailable(mfa.factor_summary("u").await.map(|_| ())));
    assert!(unavailable(
        mfa.is_locked("u", Method::Totp).await.map(|_| ())
    ));
    assert!(unavailable(
        mfa.start_challenge("u", &["pwd"], None).await.map(|_| ())
    ));
    assert!(unavailable(
        mfa.complete_challenge("token", Proof::Totp("123456"))
            .await
            .map(|_| ())
    ));
    assert!(unavailable(
        mfa.complete_challenge("token", Proof::BackupCode("ABCDE-FGHJK"))
            .await
            .map(|_| ())
    ));
    assert!(unavailable(
        mfa.begin_totp_enrollment("u", "u").await.map(|_| ())
    ));
    assert!(unavailable(
        mfa.confirm_totp_enrollment("u", "123456").await.map(|_| ())
    ));
    assert!(unavailable(
        mfa.regenerate_backup_codes("u").await.map(|_| ())
    ));
    assert!(unavailable(mfa.remove_totp("u").await.map(|_| ())));
    // A token's revocation cannot be confirmed: that is an error, never "not revoked".
    assert!(unavailable(mfa.is_token_revoked("u", T0).await.map(|_| ())));
    assert!(unavailable(mfa.delete_user("u").await));
    assert!(unavailable(
        mfa.redeem_authorization_code("code", "demo", "http://localhost/cb", "verifier")
            .await
            .map(|_| ())
    ));
    assert!(unavailable(
        mfa.remember_device("u", Duration::from_secs(60), DeviceSeen::default())
            .await
            .map(|_| ())
    ));
    assert!(unavailable(mfa.devices("u").await.map(|_| ())));
    assert!(unavailable(
        mfa.admit_address(Some("203.0.113.9")).await.map(|_| ())
    ));
    assert!(unavailable(mfa.ping().await));
}

/// Collects what a `Notifier` hears.
#[derive(Clone, Default)]
struct Heard(Arc<std::sync::Mutex<Vec<(String, AuditEvent)>>>);

#[async_trait::async_trait]
impl stepup::Notifier for Heard {
    async fn factor_changed(&self, user: &str, event: &AuditEvent) {
        self.0
            .lock()
            .unwrap()
            .push((user.to_owned(), event.clone()));
    }
}

#[tokio::test]
async fn the_notifier_hears_factor_changes_and_nothing_else() {
    let clock = ManualClock::at_unix(T0);
    let heard = Heard::default();
    let mfa = engine(Stores::shared(memory_store(&clock)), keyring(), &clock)
        .with_notifier(Arc::new(heard.clone()));
    let harness = Harness {
        mfa,
        clock,
        _dir: None,
    };
    let (key, _) = enroll(&harness, "nia").await;
    harness
        .mfa
        .verify_totp("nia", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
    assert!(harness.mfa.verify_totp("nia", "000000").await.is_err());
    harness.mfa.regenerate_backup_codes("nia").await.unwrap();
    harness.mfa.remove_totp("nia").await.unwrap();
    let heard: Vec<(String, AuditEvent)> = heard.0.lock().unwrap().clone();
    let changes: Vec<&str> = heard.iter().map(|(_, event)| event.kind()).collect();
    assert_eq!(
        changes,
        ["totp_enrolled", "backup_codes_regenerated", "totp_removed"]
    );
    assert!(heard.iter().all(|(user, _)| user == "nia"));
    assert!(heard.iter().all(|(_, event)| event.is_factor_change()));
    assert_eq!(heard[0].1, AuditEvent::TotpEnrolled { backup_codes: 10 });
    let stored = harness.mfa.audit().events("nia", 100).await.unwrap();
    let kinds: Vec<&str> = stored.iter().map(|event| event.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "totp_enrollment_started",
            "totp_enrolled",
            "mfa_failed",
            "backup_codes_regenerated",
            "totp_removed"
        ]
    );
}
