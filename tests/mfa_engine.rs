//! The second-factor engine on every store backend: replay and single-use under concurrency,
//! attempt limits, expiry, key rotation, and what reaches the database file.

use std::sync::Arc;
use std::time::Duration;

use stepup::Clock;
use stepup::mfa::totp::TotpKey;
use stepup::{Keyring, ManualClock, MemoryStore, Mfa, MfaError, Proof, SqliteStore, TotpAlgorithm};

const T0: u64 = 1_800_000_000;
const LOOKUP_KEY: &[u8] = &[42; 32];

struct Harness {
    mfa: Mfa,
    clock: ManualClock,
    /// The SQLite file, when the backend is SQLite (kept alive for the test's length).
    dir: Option<tempfile::TempDir>,
}

fn keyring() -> Keyring {
    Keyring::new("k1", &[1; 32]).unwrap()
}

fn engine<S: stepup::FactorStore + stepup::EphemeralStore>(
    store: S,
    keyring: Keyring,
    clock: &ManualClock,
) -> Mfa {
    let store = Arc::new(store);
    Mfa::new(store.clone(), store, keyring, LOOKUP_KEY)
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
}

async fn memory() -> Harness {
    let clock = ManualClock::at_unix(T0);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    Harness {
        mfa: engine(store, keyring(), &clock),
        clock,
        dir: None,
    }
}

async fn sqlite() -> Harness {
    let clock = ManualClock::at_unix(T0);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("stepup.db").display());
    let store = SqliteStore::open_with_clock(&url, Arc::new(clock.clone()))
        .await
        .unwrap();
    Harness {
        mfa: engine(store, keyring(), &clock),
        clock,
        dir: Some(dir),
    }
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
    };
}

on_every_store!(
    enrollment_is_pending_until_a_valid_code,
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
    assert_eq!(
        mfa.factors("pending").await.unwrap().backup_codes_remaining,
        0
    );

    let (_, codes) = enroll(&harness, "pending").await;
    assert_eq!(codes.len(), 10);
    assert!(mfa.is_enrolled("pending").await.unwrap());
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
    assert_eq!(mfa.factors("bob").await.unwrap().backup_codes_remaining, 10);
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
    assert_eq!(challenge.methods, ["totp", "backup_code"]);
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
    let record = mfa.factor_store().totp("erin").await.unwrap().unwrap();
    assert!(record.last_used_step < Some(harness.clock.unix_seconds() / 30));
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
    let store = harness.mfa.factor_store().clone();
    let sealed_before = store.totp("gina").await.unwrap().unwrap().sealed_secret;
    assert!(sealed_before.starts_with("v1.k1."));

    // Rotate: k2 seals, k1 still opens.
    let rotated_keyring = Keyring::new("k2", &[2; 32])
        .unwrap()
        .with_old_key("k1", &[1; 32])
        .unwrap();
    let rotated = Mfa::new(
        store.clone(),
        Arc::new(MemoryStore::new()),
        rotated_keyring,
        LOOKUP_KEY,
    )
    .unwrap()
    .with_clock(Arc::new(harness.clock.clone()));
    rotated
        .verify_totp("gina", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 1);
    assert_eq!(rotated.reseal_secrets().await.unwrap(), 0);
    let sealed_after = store.totp("gina").await.unwrap().unwrap().sealed_secret;
    assert!(sealed_after.starts_with("v1.k2."), "{sealed_after}");

    // Only the new key is needed from now on.
    let new_only = Mfa::new(
        store,
        Arc::new(MemoryStore::new()),
        Keyring::new("k2", &[2; 32]).unwrap(),
        LOOKUP_KEY,
    )
    .unwrap()
    .with_clock(Arc::new(harness.clock.clone()));
    harness.clock.advance(Duration::from_secs(30));
    new_only
        .verify_totp("gina", &key.code_at(harness.clock.unix_seconds()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_file_holds_no_secret_code_or_token_in_the_clear() {
    let harness = sqlite().await;
    let enrollment = harness
        .mfa
        .begin_totp_enrollment("henry", "h@example.com")
        .await
        .unwrap();
    let secret = totp_rs::Secret::try_from_base32(&enrollment.secret).unwrap();
    let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();
    let codes = harness
        .mfa
        .confirm_totp_enrollment("henry", &key.code_at(T0))
        .await
        .unwrap();
    let challenge = harness
        .mfa
        .start_challenge("henry", &["pwd"], None)
        .await
        .unwrap();

    // The database and its write-ahead log, byte for byte.
    let dir = harness.dir.as_ref().unwrap().path();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(bytes.len() > 4096, "the test must read a real database");
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    assert!(contains(b"henry"), "the user's rows are there");
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
}

/// A store whose every call fails, as when its database is unreachable.
struct DownStore;

fn down<T>() -> Result<T, stepup::StoreError> {
    Err(stepup::StoreError::Unavailable("connection refused".into()))
}

#[async_trait::async_trait]
impl stepup::FactorStore for DownStore {
    async fn totp(&self, _: &str) -> stepup::store::StoreResult<Option<stepup::store::TotpRecord>> {
        down()
    }
    async fn put_pending_totp(
        &self,
        _: &str,
        _: stepup::store::TotpRecord,
    ) -> stepup::store::StoreResult<bool> {
        down()
    }
    async fn activate_totp(
        &self,
        _: &str,
        _: u64,
        _: Vec<stepup::store::BackupCodeHash>,
    ) -> stepup::store::StoreResult<bool> {
        down()
    }
    async fn accept_totp_step(&self, _: &str, _: u64) -> stepup::store::StoreResult<bool> {
        down()
    }
    async fn delete_totp(&self, _: &str) -> stepup::store::StoreResult<bool> {
        down()
    }
    async fn totp_secrets(&self) -> stepup::store::StoreResult<Vec<(String, String)>> {
        down()
    }
    async fn replace_totp_secret(
        &self,
        _: &str,
        _: &str,
        _: &str,
    ) -> stepup::store::StoreResult<bool> {
        down()
    }
    async fn replace_backup_codes(
        &self,
        _: &str,
        _: Vec<stepup::store::BackupCodeHash>,
    ) -> stepup::store::StoreResult<()> {
        down()
    }
    async fn backup_code_hash(
        &self,
        _: &str,
        _: &str,
    ) -> stepup::store::StoreResult<Option<String>> {
        down()
    }
    async fn consume_backup_code(&self, _: &str, _: &str) -> stepup::store::StoreResult<bool> {
        down()
    }
    async fn remaining_backup_codes(&self, _: &str) -> stepup::store::StoreResult<usize> {
        down()
    }
    async fn delete_factors(&self, _: &str) -> stepup::store::StoreResult<()> {
        down()
    }
    async fn ping(&self) -> stepup::store::StoreResult<()> {
        down()
    }
}

#[async_trait::async_trait]
impl stepup::EphemeralStore for DownStore {
    async fn insert_if_absent(
        &self,
        _: &str,
        _: &[u8],
        _: Duration,
    ) -> stepup::store::StoreResult<bool> {
        down()
    }
    async fn get(&self, _: &str) -> stepup::store::StoreResult<Option<Vec<u8>>> {
        down()
    }
    async fn take(&self, _: &str) -> stepup::store::StoreResult<Option<Vec<u8>>> {
        down()
    }
    async fn increment(&self, _: &str, _: Duration) -> stepup::store::StoreResult<u64> {
        down()
    }
    async fn remove(&self, _: &str) -> stepup::store::StoreResult<()> {
        down()
    }
}

#[tokio::test]
async fn every_verification_fails_closed_when_the_store_is_down() {
    let clock = ManualClock::at_unix(T0);
    let mfa = engine(DownStore, keyring(), &clock);
    let unavailable = |result: Result<_, MfaError>| matches!(result, Err(MfaError::Unavailable(_)));
    assert!(unavailable(
        mfa.verify_totp("u", "123456").await.map(|_| ())
    ));
    assert!(unavailable(
        mfa.redeem_backup_code("u", "ABCDE-FGHJK").await.map(|_| ())
    ));
    assert!(unavailable(mfa.is_enrolled("u").await.map(|_| ())));
    assert!(unavailable(
        mfa.start_challenge("u", &["pwd"], None).await.map(|_| ())
    ));
    assert!(unavailable(
        mfa.complete_challenge("token", Proof::Totp("123456"))
            .await
            .map(|_| ())
    ));
    assert!(unavailable(
        mfa.begin_totp_enrollment("u", "u").await.map(|_| ())
    ));
    assert!(unavailable(
        mfa.confirm_totp_enrollment("u", "123456").await.map(|_| ())
    ));
}

/// Collects what a `Notifier` hears.
#[derive(Clone, Default)]
struct Heard(Arc<std::sync::Mutex<Vec<(String, String)>>>);

#[async_trait::async_trait]
impl stepup::Notifier for Heard {
    async fn factor_changed(&self, user: &str, change: &str, _: &serde_json::Value) {
        self.0
            .lock()
            .unwrap()
            .push((user.to_owned(), change.to_owned()));
    }
}

#[tokio::test]
async fn the_notifier_hears_factor_changes_and_nothing_else() {
    let clock = ManualClock::at_unix(T0);
    let store = Arc::new(MemoryStore::new().with_clock(Arc::new(clock.clone())));
    let heard = Heard::default();
    let mfa = Mfa::new(store.clone(), store.clone(), keyring(), LOOKUP_KEY)
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_audit(
            stepup::Audit::default()
                .with_store(store.clone())
                .with_notifier(Arc::new(heard.clone())),
        );
    let harness = Harness {
        mfa,
        clock,
        dir: None,
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
    let heard: Vec<(String, String)> = heard.0.lock().unwrap().clone();
    let changes: Vec<&str> = heard.iter().map(|(_, change)| change.as_str()).collect();
    assert_eq!(
        changes,
        ["totp_enrolled", "backup_codes_regenerated", "totp_removed"]
    );
    assert!(heard.iter().all(|(user, _)| user == "nia"));
    let stored = harness.mfa.audit().events("nia", 100).await.unwrap();
    assert_eq!(
        stored.len(),
        5,
        "enrollment started, enrolled, failed, regenerated, removed"
    );
}
