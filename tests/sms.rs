//! SMS codes (issue 10): the engine on memory, SQLite and PostgreSQL with a recording sender, and
//! Twilio Verify against a local fake (over HTTP: `crates/stepup-axum/tests/sms.rs`). Never the
//! network, never a sleep: the clock is a `ManualClock`.

mod demo_support;
mod fake_twilio;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use demo_support::*;
use fake_twilio::FakeTwilio;
use serde_json::{Value, json};
use stepup::mfa::totp::TotpKey;
use stepup::mfa::{SmsError, SmsPolicy, SmsProvider, SmsSender, TwilioVerify};
use stepup::{
    AttemptPolicy, Clock, Keyring, ManualClock, MemoryStore, Method, Mfa, MfaError, Proof,
    SqliteStore, Stores, TotpAlgorithm,
};

const PHONE: &str = "+15551236789";
const MASKED: &str = "+1*****6789";
const LOOKUP_KEY: &[u8] = &[42; 32];

/// A phone that keeps every text it gets.
#[derive(Clone, Default)]
struct Phone(Arc<Mutex<Vec<(String, String)>>>);

#[stepup::store::async_trait]
impl SmsSender for Phone {
    async fn send(&self, to: &str, body: &str) -> Result<(), SmsError> {
        self.0
            .lock()
            .unwrap()
            .push((to.to_owned(), body.to_owned()));
        Ok(())
    }
}

impl Phone {
    fn last_code(&self) -> String {
        let texts = self.0.lock().unwrap();
        let (to, body) = texts.last().expect("a text was sent");
        assert_eq!(to, PHONE);
        code_in(body)
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn code_in(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit())
        .find(|word| word.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}

struct Harness {
    mfa: Mfa,
    clock: ManualClock,
    phone: Phone,
    _dir: Option<tempfile::TempDir>,
}

impl Harness {
    fn with(&self, policy: SmsPolicy) -> Mfa {
        self.mfa.clone().with_sms_policy(policy)
    }

    /// Enrolls `PHONE` for `user`; returns the backup codes. The clock ends past the cooldown.
    async fn enroll(&self, mfa: &Mfa, user: &str) -> Vec<String> {
        let sent = mfa.begin_sms_enrollment(user, PHONE, None).await.unwrap();
        assert_eq!(sent.phone, MASKED);
        assert_eq!(sent.message, format!("Code sent to {MASKED}"));
        let codes = mfa
            .confirm_sms_enrollment(user, &self.phone.last_code())
            .await
            .unwrap();
        self.clock.advance(Duration::from_secs(31));
        codes
    }

    async fn mfa_token(&self, mfa: &Mfa, user: &str) -> String {
        mfa.start_challenge(user, &["pwd"], None)
            .await
            .unwrap()
            .mfa_token
    }
}

fn engine(stores: Stores, clock: &ManualClock, provider: SmsProvider) -> Mfa {
    Mfa::new(stores, Keyring::new("k1", &[1; 32]).unwrap(), LOOKUP_KEY)
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_sms_provider(provider)
}

async fn memory() -> Harness {
    let clock = ManualClock::at_unix(T0);
    let phone = Phone::default();
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    Harness {
        mfa: engine(
            Stores::shared(store),
            &clock,
            SmsProvider::sender(phone.clone()),
        ),
        clock,
        phone,
        _dir: None,
    }
}

async fn sqlite() -> Harness {
    let clock = ManualClock::at_unix(T0);
    let phone = Phone::default();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("stepup.db").display());
    let store = SqliteStore::open_with_clock(&url, Arc::new(clock.clone()))
        .await
        .unwrap();
    Harness {
        mfa: engine(
            Stores::shared(store),
            &clock,
            SmsProvider::sender(phone.clone()),
        ),
        clock,
        phone,
        _dir: Some(dir),
    }
}

/// A harness on a PostgreSQL schema of the test's own; `None` without `DATABASE_URL`.
async fn postgres() -> Option<(Harness, backends::Postgres)> {
    let clock = ManualClock::at_unix(T0);
    let phone = Phone::default();
    let pg = backends::Postgres::start(&clock).await?;
    let harness = Harness {
        mfa: engine(pg.stores(), &clock, SmsProvider::sender(phone.clone())),
        clock,
        phone,
        _dir: None,
    };
    Some((harness, pg))
}

macro_rules! on_every_backend {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::memory().await).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::sqlite().await).await
                }
            )*
        }
        mod postgres {
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

on_every_backend!(
    enrollment_then_login_with_an_sms_code,
    a_resend_waits_for_the_cooldown,
    sends_are_limited_per_number_per_user_and_per_address,
    a_new_code_keeps_the_failure_count,
    codes_expire_by_the_injected_clock,
    one_code_submitted_100_times_at_once_succeeds_once,
    a_hundred_wrong_sms_codes_lock_the_factor,
    a_code_of_one_mfa_token_is_refused_on_another,
    bad_numbers_and_countries_off_the_allow_list_are_refused,
    sms_can_be_refused_as_the_only_factor,
    removing_the_other_factor_is_refused_while_sms_would_be_left_alone,
    a_number_begun_beside_a_factor_since_removed_is_not_confirmed,
    racing_factor_changes_never_leave_sms_alone,
    reseal_moves_the_phone_numbers_to_the_new_key,
    sms_is_not_offered_without_a_provider,
);

fn no_cooldown() -> SmsPolicy {
    SmsPolicy {
        resend_cooldown: Duration::ZERO,
        ..SmsPolicy::default()
    }
}

/// A per-user policy that never gets in the way of counting a factor's streak.
fn generous_attempts() -> AttemptPolicy {
    AttemptPolicy {
        max_failures: 1_000_000,
        lock_after: 100,
        ..AttemptPolicy::default()
    }
}

async fn events(mfa: &Mfa, user: &str, kind: &str) -> Vec<Value> {
    mfa.audit()
        .events(user, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.kind == kind)
        .map(|event| serde_json::from_str(&event.detail).unwrap())
        .collect()
}

async fn enrollment_then_login_with_an_sms_code(h: Harness) {
    let mfa = h.mfa.clone();
    assert!(!mfa.is_enrolled("ann").await.unwrap());
    let backup = h.enroll(&mfa, "ann").await;
    assert_eq!(backup.len(), 10, "a first factor brings backup codes");
    assert_eq!(
        mfa.methods("ann").await.unwrap(),
        vec![Method::Sms, Method::BackupCode]
    );
    let summary = mfa.factor_summary("ann").await.unwrap();
    let factor = &summary.factors[0];
    assert_eq!(factor.method, Method::Sms);
    assert!(factor.active && factor.restricted);
    assert_eq!(factor.phone.as_deref(), Some(MASKED));
    let listed = serde_json::to_value(&summary).unwrap();
    assert_eq!(listed["factors"][0]["phone"], MASKED);
    assert_eq!(listed["factors"][0]["restricted"], true);

    let token = h.mfa_token(&mfa, "ann").await;
    let sent = mfa.send_sms_challenge(&token, None).await.unwrap();
    assert_eq!(sent.message, "Code sent to +1*****6789");
    let code = h.phone.last_code();
    let done = mfa
        .complete_challenge(&token, Proof::Sms(&code))
        .await
        .unwrap();
    assert_eq!(done.amr, vec!["pwd", "sms"]);
    assert_eq!(done.method, Method::Sms);
    assert!(!done.phishing_resistant);
    // Single use, and the token is spent.
    let again = h.mfa_token(&mfa, "ann").await;
    assert!(matches!(
        mfa.complete_challenge(&again, Proof::Sms(&code)).await,
        Err(MfaError::InvalidCode)
    ));
    assert_eq!(events(&mfa, "ann", "sms_sent").await.len(), 2);
    assert_eq!(events(&mfa, "ann", "sms_enrolled").await.len(), 1);
    assert_eq!(
        events(&mfa, "ann", "mfa_failed").await,
        vec![json!({"method": "sms"})]
    );

    // A second enrollment is refused while one is active; removal ends it.
    assert!(matches!(
        mfa.begin_sms_enrollment("ann", PHONE, None).await,
        Err(MfaError::AlreadyEnrolled)
    ));
    assert!(mfa.remove_sms("ann").await.unwrap());
    assert!(!mfa.is_enrolled("ann").await.unwrap());
    assert_eq!(mfa.remaining_backup_codes("ann").await.unwrap(), 0);
}

async fn a_resend_waits_for_the_cooldown(h: Harness) {
    let mfa = h.mfa.clone();
    h.enroll(&mfa, "bo").await;
    let token = h.mfa_token(&mfa, "bo").await;
    mfa.send_sms_challenge(&token, None).await.unwrap();
    h.clock.advance(Duration::from_secs(10));
    match mfa.send_sms_challenge(&token, None).await {
        Err(MfaError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(20))
        }
        other => panic!("expected the cooldown, got {other:?}"),
    }
    assert_eq!(
        events(&mfa, "bo", "sms_refused").await,
        vec![json!({"reason": "cooldown"})]
    );
    h.clock.advance(Duration::from_secs(20));
    mfa.send_sms_challenge(&token, None).await.unwrap();
    // The resend replaced the first code; the new one works.
    let code = h.phone.last_code();
    mfa.complete_challenge(&token, Proof::Sms(&code))
        .await
        .unwrap();
}

async fn sends_are_limited_per_number_per_user_and_per_address(h: Harness) {
    let limit = |max| {
        vec![stepup::mfa::SmsLimit {
            max,
            window: Duration::from_secs(3600),
        }]
    };
    // Per number: two users share one number.
    let mfa = h.with(SmsPolicy {
        per_number: limit(3),
        ..no_cooldown()
    });
    for (user, expected_ok) in [("cy", true), ("cy", true), ("di", true), ("di", false)] {
        let outcome = mfa.begin_sms_enrollment(user, PHONE, None).await;
        assert_eq!(outcome.is_ok(), expected_ok, "{user}: {outcome:?}");
    }
    assert_eq!(
        events(&mfa, "di", "sms_refused").await,
        vec![json!({"reason": "number_limit"})]
    );
    // The hour passes.
    h.clock.advance(Duration::from_secs(3601));
    mfa.begin_sms_enrollment("di", PHONE, None).await.unwrap();

    // Per user, whatever the number.
    let mfa = h.with(SmsPolicy {
        per_user: limit(2),
        ..no_cooldown()
    });
    mfa.begin_sms_enrollment("ed", "+15550000001", None)
        .await
        .unwrap();
    mfa.begin_sms_enrollment("ed", "+15550000002", None)
        .await
        .unwrap();
    match mfa.begin_sms_enrollment("ed", "+15550000003", None).await {
        Err(MfaError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(3600))
        }
        other => panic!("expected the per-user limit, got {other:?}"),
    }
    // Per address, whatever the user.
    let mfa = h.with(SmsPolicy {
        per_address: limit(1),
        ..no_cooldown()
    });
    mfa.begin_sms_enrollment("fa", "+15550000004", Some("192.0.2.9"))
        .await
        .unwrap();
    assert!(matches!(
        mfa.begin_sms_enrollment("gu", "+15550000005", Some("192.0.2.9"))
            .await,
        Err(MfaError::RateLimited { .. })
    ));
    assert_eq!(
        events(&mfa, "gu", "sms_refused").await,
        vec![json!({"reason": "address_limit"})]
    );
}

async fn a_new_code_keeps_the_failure_count(h: Harness) {
    let many = vec![stepup::mfa::SmsLimit {
        max: 100,
        window: Duration::from_secs(3600),
    }];
    let mfa = h
        .with(SmsPolicy {
            per_number: many.clone(),
            per_user: many,
            ..no_cooldown()
        })
        .with_attempt_policy(generous_attempts());
    h.enroll(&mfa, "ha").await;
    let factors = mfa.stores().factors.clone();
    let mut failures = 0;
    for _ in 0..3 {
        let token = h.mfa_token(&mfa, "ha").await;
        mfa.send_sms_challenge(&token, None).await.unwrap();
        let right = h.phone.last_code();
        let wrong = if right == "000000" {
            "111111"
        } else {
            "000000"
        };
        for _ in 0..2 {
            assert!(matches!(
                mfa.complete_challenge(&token, Proof::Sms(wrong)).await,
                Err(MfaError::InvalidCode)
            ));
            failures += 1;
        }
        // Another code for the same token: the count goes on.
        mfa.send_sms_challenge(&token, None).await.unwrap();
        assert_eq!(factors.failures("ha", "sms").await.unwrap(), failures);
    }
}

async fn codes_expire_by_the_injected_clock(h: Harness) {
    let mfa = h.with(SmsPolicy {
        code_ttl: Duration::from_secs(120),
        ..no_cooldown()
    });
    h.enroll(&mfa, "io").await;
    let token = h.mfa_token(&mfa, "io").await;
    mfa.send_sms_challenge(&token, None).await.unwrap();
    let code = h.phone.last_code();
    h.clock.advance(Duration::from_secs(121));
    assert!(matches!(
        mfa.complete_challenge(&token, Proof::Sms(&code)).await,
        Err(MfaError::InvalidCode)
    ));
    // An enrollment code lives 10 minutes at most, whatever the policy asks.
    let long = h.with(SmsPolicy {
        code_ttl: Duration::from_secs(3600),
        ..no_cooldown()
    });
    long.begin_sms_enrollment("jo", PHONE, None).await.unwrap();
    let code = h.phone.last_code();
    h.clock.advance(Duration::from_secs(10 * 60));
    assert!(matches!(
        long.confirm_sms_enrollment("jo", &code).await,
        Err(MfaError::InvalidCode)
    ));
}

async fn one_code_submitted_100_times_at_once_succeeds_once(h: Harness) {
    let mfa = h.mfa.clone().with_attempt_policy(generous_attempts());
    h.enroll(&mfa, "ka").await;
    let token = h.mfa_token(&mfa, "ka").await;
    mfa.send_sms_challenge(&token, None).await.unwrap();
    let code = h.phone.last_code();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (mfa, token, code) = (mfa.clone(), token.clone(), code.clone());
            tokio::spawn(async move { mfa.complete_challenge(&token, Proof::Sms(&code)).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

async fn a_hundred_wrong_sms_codes_lock_the_factor(h: Harness) {
    let mfa = h.mfa.clone().with_attempt_policy(generous_attempts());
    h.enroll(&mfa, "lu").await;
    for attempt in 0..100 {
        // Each mfa_token dies at its fifth wrong code: take a new one now and then.
        let token = h.mfa_token(&mfa, "lu").await;
        match mfa.complete_challenge(&token, Proof::Sms("000000")).await {
            Err(MfaError::InvalidCode) => {}
            other => panic!("wrong code {attempt}: {other:?}"),
        }
    }
    assert!(mfa.is_locked("lu", Method::Sms).await.unwrap());
    let token = h.mfa_token(&mfa, "lu").await;
    assert!(matches!(
        mfa.send_sms_challenge(&token, None).await,
        Err(MfaError::FactorLocked {
            method: Method::Sms
        })
    ));
    assert!(matches!(
        mfa.complete_challenge(&token, Proof::Sms("123456")).await,
        Err(MfaError::FactorLocked {
            method: Method::Sms
        })
    ));
    assert_eq!(
        events(&mfa, "lu", "factor_locked").await,
        vec![json!({"method": "sms", "failures": 100})]
    );
    assert!(mfa.factor_summary("lu").await.unwrap().factors[0].locked);
}

async fn a_code_of_one_mfa_token_is_refused_on_another(h: Harness) {
    let mfa = h.with(no_cooldown());
    h.enroll(&mfa, "mi").await;
    let first = h.mfa_token(&mfa, "mi").await;
    let second = h.mfa_token(&mfa, "mi").await;
    mfa.send_sms_challenge(&first, None).await.unwrap();
    let code = h.phone.last_code();
    assert!(matches!(
        mfa.complete_challenge(&second, Proof::Sms(&code)).await,
        Err(MfaError::InvalidCode)
    ));
    mfa.complete_challenge(&first, Proof::Sms(&code))
        .await
        .unwrap();
    // An enrollment code is no login code either.
    assert!(matches!(
        mfa.send_sms_challenge("not a token", None).await,
        Err(MfaError::InvalidMfaToken)
    ));
}

async fn bad_numbers_and_countries_off_the_allow_list_are_refused(h: Harness) {
    for bad in [
        "5551236789",
        "+0123456789",
        "+1555",
        "+1555123678901234",
        "+1 555 CALL NOW",
    ] {
        assert!(
            matches!(
                h.mfa.begin_sms_enrollment("no", bad, None).await,
                Err(MfaError::InvalidPhoneNumber)
            ),
            "{bad}"
        );
    }
    let mfa = h.with(SmsPolicy {
        allowed_country_codes: Some(vec!["44".into(), "49".into()]),
        ..SmsPolicy::default()
    });
    assert!(matches!(
        mfa.begin_sms_enrollment("no", PHONE, None).await,
        Err(MfaError::SmsRefused {
            reason: "country_not_allowed"
        })
    ));
    assert_eq!(
        events(&mfa, "no", "sms_refused").await,
        vec![json!({"reason": "country_not_allowed"})]
    );
    assert_eq!(h.phone.count(), 0);
    mfa.begin_sms_enrollment("no", "+447700900123", None)
        .await
        .unwrap();
}

async fn sms_can_be_refused_as_the_only_factor(h: Harness) {
    let mfa = h.with(SmsPolicy {
        needs_another_factor: true,
        ..SmsPolicy::default()
    });
    assert!(matches!(
        mfa.begin_sms_enrollment("ola", PHONE, None).await,
        Err(MfaError::SmsRefused {
            reason: "sms_needs_another_factor"
        })
    ));
    assert_eq!(h.phone.count(), 0);
}

/// The same methods, in any order (the stores list credentials in their own order), backup
/// codes last.
fn assert_same_methods(got: Vec<Method>, expected: &[Method]) {
    assert_eq!(got.len(), expected.len(), "{got:?}");
    assert!(expected.iter().all(|m| got.contains(m)), "{got:?}");
    assert_eq!(got.last(), expected.last(), "{got:?}");
}

/// Enrolls an authenticator app for `user` on `mfa`; the clock ends on a fresh time step.
async fn enroll_totp(h: &Harness, mfa: &Mfa, user: &str) -> TotpKey {
    let enrollment = mfa
        .begin_totp_enrollment(user, "user@example.com")
        .await
        .unwrap();
    let secret = totp_rs::Secret::try_from_base32(&enrollment.secret).unwrap();
    let key = TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap();
    mfa.confirm_totp_enrollment(user, &key.code_at(h.clock.unix_seconds()))
        .await
        .unwrap();
    h.clock.advance(Duration::from_secs(30));
    key
}

async fn removing_the_other_factor_is_refused_while_sms_would_be_left_alone(h: Harness) {
    let strict = h.with(SmsPolicy {
        needs_another_factor: true,
        ..SmsPolicy::default()
    });
    enroll_totp(&h, &strict, "quin").await;
    h.enroll(&strict, "quin").await;
    // Removing the app would leave SMS alone: refused, nothing removed.
    assert!(matches!(
        strict.remove_totp("quin").await,
        Err(MfaError::SmsWouldBeAlone)
    ));
    assert_same_methods(
        strict.methods("quin").await.unwrap(),
        &[Method::Totp, Method::Sms, Method::BackupCode],
    );
    // SMS itself may go; then the app may go too.
    assert!(strict.remove_sms("quin").await.unwrap());
    assert!(strict.remove_totp("quin").await.unwrap());
    assert!(!strict.is_enrolled("quin").await.unwrap());

    // Where the application allows SMS alone (the default), the app can go.
    let lenient = h.mfa.clone();
    enroll_totp(&h, &lenient, "rae").await;
    h.enroll(&lenient, "rae").await;
    assert!(lenient.remove_totp("rae").await.unwrap());
    assert_eq!(
        lenient.methods("rae").await.unwrap(),
        vec![Method::Sms, Method::BackupCode]
    );
}

fn strict() -> SmsPolicy {
    SmsPolicy {
        needs_another_factor: true,
        ..SmsPolicy::default()
    }
}

async fn a_number_begun_beside_a_factor_since_removed_is_not_confirmed(h: Harness) {
    let strict = h.with(strict());
    enroll_totp(&h, &strict, "uma").await;
    strict
        .begin_sms_enrollment("uma", PHONE, None)
        .await
        .unwrap();
    let code = h.phone.last_code();
    // The number is only pending, so the app may go; then the number cannot be confirmed alone.
    assert!(strict.remove_totp("uma").await.unwrap());
    assert!(matches!(
        strict.confirm_sms_enrollment("uma", &code).await,
        Err(MfaError::SmsRefused {
            reason: "sms_needs_another_factor"
        })
    ));
    assert!(!strict.is_enrolled("uma").await.unwrap());
}

/// Confirming a number and removing the only other factor, at once, for many users: the check
/// each makes of the other factors holds while it writes (one factor change per user at a time),
/// so SMS is never left alone, whichever wins.
async fn racing_factor_changes_never_leave_sms_alone(h: Harness) {
    let strict = h.with(SmsPolicy {
        per_number: Vec::new(),
        ..strict()
    });
    let users: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    let mut pending = Vec::new();
    for user in &users {
        enroll_totp(&h, &strict, user).await;
        strict
            .begin_sms_enrollment(user, PHONE, None)
            .await
            .unwrap();
        pending.push((user.clone(), h.phone.last_code()));
    }
    let tasks: Vec<_> = pending
        .into_iter()
        .map(|(user, code)| {
            let (confirmer, remover) = (strict.clone(), strict.clone());
            let (u1, u2) = (user.clone(), user.clone());
            tokio::spawn(async move {
                tokio::join!(
                    tokio::spawn(async move { confirmer.confirm_sms_enrollment(&u1, &code).await }),
                    tokio::spawn(async move { remover.remove_totp(&u2).await }),
                )
            })
        })
        .collect();
    for task in tasks {
        let (confirmed, removed) = task.await.unwrap();
        let (confirmed, removed) = (confirmed.unwrap(), removed.unwrap());
        assert!(
            !(confirmed.is_ok() && matches!(removed, Ok(true))),
            "both won: {confirmed:?} {removed:?}"
        );
        for refused in [confirmed.as_ref().err(), removed.as_ref().err()]
            .into_iter()
            .flatten()
        {
            assert!(
                matches!(
                    refused,
                    MfaError::FactorChangeInProgress
                        | MfaError::SmsWouldBeAlone
                        | MfaError::SmsRefused { .. }
                ),
                "{refused:?}"
            );
        }
    }
    for user in &users {
        let methods = strict.methods(user).await.unwrap();
        assert!(
            !methods.contains(&Method::Sms) || methods.contains(&Method::Totp),
            "{user}: SMS alone: {methods:?}"
        );
    }
}

async fn reseal_moves_the_phone_numbers_to_the_new_key(h: Harness) {
    h.enroll(&h.mfa, "sol").await;
    let stored = |mfa: &Mfa| {
        let factors = mfa.stores().factors.clone();
        async move {
            let credential = factors.credentials_of_kind("sms").await.unwrap().remove(0);
            let payload: Value = serde_json::from_str(&credential.payload).unwrap();
            payload["number"].as_str().unwrap().to_owned()
        }
    };
    assert_eq!(Keyring::key_id_of(&stored(&h.mfa).await), Ok("k1"));
    let rotated = Keyring::new("k2", &[9; 32])
        .unwrap()
        .with_old_key("k1", &[1; 32])
        .unwrap();
    let with = |keyring: Keyring| {
        Mfa::new(h.mfa.stores().clone(), keyring, LOOKUP_KEY)
            .unwrap()
            .with_clock(Arc::new(h.clock.clone()))
            .with_sms_provider(SmsProvider::sender(h.phone.clone()))
    };
    let mfa = with(rotated);
    assert_eq!(mfa.reseal_secrets().await.unwrap(), 1);
    assert_eq!(Keyring::key_id_of(&stored(&mfa).await), Ok("k2"));
    assert_eq!(
        mfa.reseal_secrets().await.unwrap(),
        0,
        "nothing left to move"
    );
    // The new key alone opens the number: the old key can be dropped.
    let new_only = with(Keyring::new("k2", &[9; 32]).unwrap());
    assert_eq!(
        new_only.sms_phone("sol").await.unwrap().as_deref(),
        Some(MASKED)
    );
    let token = h.mfa_token(&new_only, "sol").await;
    new_only.send_sms_challenge(&token, None).await.unwrap();
    new_only
        .complete_challenge(&token, Proof::Sms(&h.phone.last_code()))
        .await
        .unwrap();
    // The old key alone no longer does.
    assert!(h.mfa.sms_phone("sol").await.is_err());
}

async fn sms_is_not_offered_without_a_provider(h: Harness) {
    h.enroll(&h.mfa, "tia").await;
    let without = Mfa::new(
        h.mfa.stores().clone(),
        Keyring::new("k1", &[1; 32]).unwrap(),
        LOOKUP_KEY,
    )
    .unwrap()
    .with_clock(Arc::new(h.clock.clone()));
    assert!(!without.sms_enabled());
    // SMS alone: the backup codes remain the way in.
    assert_eq!(
        without.methods("tia").await.unwrap(),
        vec![Method::BackupCode]
    );
    let challenge = without
        .start_challenge("tia", &["pwd"], None)
        .await
        .unwrap();
    assert_eq!(challenge.methods, vec![Method::BackupCode]);
    assert!(matches!(
        without.send_sms_challenge(&challenge.mfa_token, None).await,
        Err(MfaError::SmsNotConfigured)
    ));
    // Beside an app: the app and the codes.
    enroll_totp(&h, &without, "tia").await;
    assert_same_methods(
        without.methods("tia").await.unwrap(),
        &[Method::Totp, Method::BackupCode],
    );
    assert_same_methods(
        h.mfa.methods("tia").await.unwrap(),
        &[Method::Sms, Method::Totp, Method::BackupCode],
    );
}

#[tokio::test]
async fn the_database_holds_no_number_and_no_code() {
    let h = sqlite().await;
    let mfa = h.mfa.clone();
    h.enroll(&mfa, "pia").await;
    let token = h.mfa_token(&mfa, "pia").await;
    mfa.send_sms_challenge(&token, None).await.unwrap();
    let code = h.phone.last_code();
    let dir = h._dir.as_ref().unwrap().path().to_owned();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let dump = String::from_utf8_lossy(&bytes);
    assert!(!dump.contains("5551236789"), "the number is sealed");
    assert!(
        !contains_word(&dump, &code),
        "the code is kept only as a keyed digest"
    );
}

// ---- Twilio Verify, against the local fake ----

async fn twilio_engine(fake: &FakeTwilio, clock: &ManualClock) -> Mfa {
    let twilio = TwilioVerify::new(
        fake_twilio::ACCOUNT_SID,
        fake_twilio::AUTH_TOKEN,
        fake_twilio::SERVICE_SID,
    )
    .unwrap()
    .with_base_url(&fake.base);
    let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
    Mfa::new(
        Stores::shared(store),
        Keyring::new("k1", &[1; 32]).unwrap(),
        LOOKUP_KEY,
    )
    .unwrap()
    .with_clock(Arc::new(clock.clone()))
    .with_attempt_policy(generous_attempts())
    .with_sms_provider(SmsProvider::verifier(twilio))
    .with_sms_policy(no_cooldown())
}

#[tokio::test]
async fn twilio_verify_makes_and_checks_the_codes() {
    let fake = FakeTwilio::start().await;
    let clock = ManualClock::at_unix(T0);
    let mfa = twilio_engine(&fake, &clock).await;

    let sent = mfa.begin_sms_enrollment("qi", PHONE, None).await.unwrap();
    assert_eq!(sent.message, "Code sent to +1*****6789");
    let code = fake.code_for(PHONE).unwrap();
    assert!(matches!(
        mfa.confirm_sms_enrollment("qi", "000000").await,
        Err(MfaError::InvalidCode)
    ));
    assert_eq!(
        mfa.confirm_sms_enrollment("qi", &code).await.unwrap().len(),
        10
    );

    // Login: a check without a send for this token is refused before Twilio is asked.
    let token = mfa
        .start_challenge("qi", &["pwd"], None)
        .await
        .unwrap()
        .mfa_token;
    let checks = fake.requests().len();
    assert!(matches!(
        mfa.complete_challenge(&token, Proof::Sms(&code)).await,
        Err(MfaError::InvalidCode)
    ));
    assert_eq!(fake.requests().len(), checks);
    mfa.send_sms_challenge(&token, None).await.unwrap();
    let code = fake.code_for(PHONE).unwrap();
    let done = mfa
        .complete_challenge(&token, Proof::Sms(&code))
        .await
        .unwrap();
    assert_eq!(done.amr, vec!["pwd", "sms"]);

    // Twilio resends the same code; stepup keeps counting failures across it.
    let token = mfa
        .start_challenge("qi", &["pwd"], None)
        .await
        .unwrap()
        .mfa_token;
    mfa.send_sms_challenge(&token, None).await.unwrap();
    let first = fake.code_for(PHONE).unwrap();
    let wrong = if first == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..2 {
        assert!(matches!(
            mfa.complete_challenge(&token, Proof::Sms(wrong)).await,
            Err(MfaError::InvalidCode)
        ));
    }
    mfa.send_sms_challenge(&token, None).await.unwrap();
    assert_eq!(fake.code_for(PHONE).unwrap(), first);
    assert_eq!(mfa.stores().factors.failures("qi", "sms").await.unwrap(), 2);
    // A code checked too often is gone (60202): a wrong code then, never a 5xx.
    for _ in 0..2 {
        let _ = mfa.complete_challenge(&token, Proof::Sms(wrong)).await;
    }
    let token = mfa
        .start_challenge("qi", &["pwd"], None)
        .await
        .unwrap()
        .mfa_token;
    mfa.send_sms_challenge(&token, None).await.unwrap();
    for _ in 0..fake_twilio::MAX_CHECKS {
        let _ = mfa.complete_challenge(&token, Proof::Sms(wrong)).await;
    }
}

#[tokio::test]
async fn twilio_errors_are_typed() {
    let fake = FakeTwilio::start().await;
    let clock = ManualClock::at_unix(T0);
    let mfa = twilio_engine(&fake, &clock).await;
    // 20429: Twilio's rate limit is stepup's 429.
    assert!(matches!(
        mfa.begin_sms_enrollment("ru", fake_twilio::RATE_LIMITED_NUMBER, None)
            .await,
        Err(MfaError::RateLimited { .. })
    ));
    // 60203: too many sends to one number.
    for _ in 0..fake_twilio::MAX_SENDS {
        mfa.begin_sms_enrollment("su", "+15550001111", None)
            .await
            .unwrap();
    }
    assert!(matches!(
        mfa.begin_sms_enrollment("su", "+15550001111", None).await,
        Err(MfaError::RateLimited { .. })
    ));
    // 20404 and 60202 on a check: the code is gone, a wrong code.
    let twilio = TwilioVerify::new(
        fake_twilio::ACCOUNT_SID,
        fake_twilio::AUTH_TOKEN,
        fake_twilio::SERVICE_SID,
    )
    .unwrap()
    .with_base_url(&fake.base);
    use stepup::mfa::SmsVerifier;
    assert_eq!(
        twilio.check("+15550002222", "123456").await,
        Err(SmsError::VerificationGone)
    );
    twilio.start("+15550002222").await.unwrap();
    for _ in 0..fake_twilio::MAX_CHECKS {
        assert_eq!(twilio.check("+15550002222", "999999x").await, Ok(false));
    }
    assert_eq!(
        twilio.check("+15550002222", "999999x").await,
        Err(SmsError::VerificationGone)
    );
    // Wrong credentials: unavailable, never a success.
    let wrong = TwilioVerify::new(fake_twilio::ACCOUNT_SID, "wrong", fake_twilio::SERVICE_SID)
        .unwrap()
        .with_base_url(&fake.base);
    assert!(matches!(
        wrong.start(PHONE).await,
        Err(SmsError::Unavailable(_))
    ));
    // Its Debug holds no credential.
    assert!(!format!("{twilio:?}").contains(fake_twilio::AUTH_TOKEN));
}

// ---- The log (the HTTP side is tested in crates/stepup-axum/tests/sms.rs) ----

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every other test of this binary logs into this subscriber too: none of them may leak either.
#[tokio::test]
async fn no_code_and_no_full_number_in_any_log_line() {
    let captured = Captured::default();
    let writer = captured.clone();
    let installed = tracing_subscriber::fmt()
        .with_env_filter(
            "trace,hyper=info,hyper_util=info,reqwest=info,h2=info,tokio=info,runtime=info",
        )
        .with_ansi(false)
        // A timestamp's microseconds could spell a code.
        .without_time()
        .with_writer(move || writer.clone())
        .try_init();
    assert!(installed.is_ok(), "the first subscriber of this binary");

    let mut secrets = vec![PHONE.to_owned(), "5551236789".to_owned()];
    // Twilio.
    let fake = FakeTwilio::start().await;
    let clock = ManualClock::at_unix(T0);
    let mfa = twilio_engine(&fake, &clock).await;
    mfa.begin_sms_enrollment("vic", PHONE, None).await.unwrap();
    let code = fake.code_for(PHONE).unwrap();
    mfa.confirm_sms_enrollment("vic", &code).await.unwrap();
    secrets.push(code);
    let _ = mfa
        .begin_sms_enrollment("vic", fake_twilio::RATE_LIMITED_NUMBER, None)
        .await;
    secrets.push(fake_twilio::RATE_LIMITED_NUMBER.to_owned());

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("sms_sent"), "sends are audited");
    assert!(log.contains(MASKED));
    for secret in &secrets {
        for line in log.lines() {
            assert!(
                !contains_word(line, secret),
                "{secret} reached the log: {line}"
            );
        }
    }
}

/// Whether `needle` occurs in `haystack` not as part of a longer run of letters and digits (a
/// 6-digit code may turn up inside a random hex id by chance).
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}
