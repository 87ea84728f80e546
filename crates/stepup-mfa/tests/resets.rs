//! Resets on every store backend: recovery (by a mailed code and the password, at once or after
//! a delay), the administrator's reset and account deletion move the user's generation on, so
//! nothing made before them — or racing them — logs the user in afterwards, while a token minted
//! after them is valid at once, in the same second. Recovery codes are single-use under 100
//! concurrent confirmations.

#[macro_use]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stepup_core::AuthContext;
use stepup_core::policy::TrustedDevice;
use stepup_mfa::recovery::RECOVERY_CODE_TTL;
use stepup_mfa::{ClientInfo, LoginStep, Mfa, MfaError, PasswordLogin, RecoveryOutcome};
use support::*;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

on_every_store!(
    nothing_made_before_or_during_an_admin_reset_logs_the_user_in,
    nothing_made_before_or_during_an_account_deletion_logs_the_user_in,
    one_of_100_concurrent_recovery_confirmations_wins,
    a_recovery_voids_everything_and_its_token_is_valid_at_once,
    a_wrong_password_uses_the_recovery_code_up,
    a_recovery_code_works_once_and_expires_after_an_hour,
    a_recovery_request_for_an_unknown_address_mails_nothing,
    a_recovery_request_does_the_same_store_work_on_every_path,
    recovery_requests_of_one_ipv6_64_share_a_budget,
    a_delayed_recovery_takes_effect_at_the_first_password_login_after_its_due_time,
    a_login_with_a_factor_cancels_a_pending_recovery,
    an_admin_reset_unlocks_and_is_audited_with_the_admin,
    a_device_vouched_for_before_a_reset_does_not_skip_the_new_factor,
    an_enrollment_stored_after_a_reset_never_replaces_the_owners_new_factor,
    an_authorization_code_issued_before_a_reset_is_refused_after_it,
);

on_every_store!(
    redis: nothing_made_before_or_during_an_admin_reset_logs_the_user_in,
    one_of_100_concurrent_recovery_confirmations_wins,
    a_recovery_request_does_the_same_store_work_on_every_path,
);

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The token of a whole MFA login of `user` with `key`, remembering the device when asked.
async fn mfa_login(
    h: &Harness,
    mfa: &Mfa,
    user: &str,
    key: &stepup_mfa::totp::TotpKey,
    remember: bool,
) -> (AuthContext, Option<String>) {
    let token = mfa_token(mfa, user).await;
    let login = mfa
        .finish_mfa(
            &token,
            "totp",
            &json!({"code": h.code(key)}),
            remember,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    let device = login.device.as_ref().map(|device| device.token.clone());
    h.clock.advance(Duration::from_secs(30));
    (h.token(mfa, login).await, device)
}

// ---- The race ----------------------------------------------------------------------------------

/// How the user is reset.
#[derive(Clone, Copy)]
enum Reset {
    Admin,
    Deletion,
}

/// What the tasks racing the reset made: none of it may log the user in afterwards.
#[derive(Default)]
struct Made {
    devices: Vec<String>,
    tokens: Vec<AuthContext>,
    mfa_tokens: Vec<String>,
    passkeys: Vec<(SoftPasskey, String, Value)>,
}

impl Made {
    fn add(&mut self, other: Made) {
        self.devices.extend(other.devices);
        self.tokens.extend(other.tokens);
        self.mfa_tokens.extend(other.mfa_tokens);
        self.passkeys.extend(other.passkeys);
    }
}

/// A request of the holder of `session` (checked first, as every adapter does), then `then`.
async fn as_caller<T>(
    mfa: &Mfa,
    session: &AuthContext,
    then: impl Future<Output = Result<T, MfaError>>,
) -> Result<T, MfaError> {
    mfa.check_caller(session).await?;
    then.await
}

/// How far a race has gone: what was made so far, and whether the reset is done.
#[derive(Clone, Default)]
struct Progress {
    made: Arc<AtomicUsize>,
    reset_done: Arc<AtomicBool>,
}

impl Progress {
    fn made_one(&self) {
        self.made.fetch_add(1, Ordering::SeqCst);
    }

    fn reset_done(&self) -> bool {
        self.reset_done.load(Ordering::SeqCst)
    }
}

/// The attacker's loop: registers a passkey of its own under `session` (two requests, each
/// checking the session, as every adapter does; the factor-change lease admits one change at a
/// time, so it tries again while another runs), then completes MFA steps with it, remembering
/// the device and concluding each with a token, until one round after the reset.
async fn register_and_remember(mfa: Mfa, session: AuthContext, progress: Progress) -> Made {
    let mut made = Made::default();
    let Ok(started) = as_caller(
        &mfa,
        &session,
        mfa.start_enrollment("ada", "webauthn", &json!({}), &ClientInfo::default()),
    )
    .await
    else {
        return made;
    };
    let mut key = SoftPasskey::new(true);
    let handle = started["publicKey"]["user"]["id"].clone();
    let credential = key
        .do_registration(origin(), creation_options(&started))
        .unwrap();
    let input = json!({
        "registration_token": started["registration_token"],
        "credential": credential,
    });
    let mut id = None;
    for _ in 0..1000 {
        match as_caller(
            &mfa,
            &session,
            mfa.finish_enrollment("ada", "webauthn", &input, &ClientInfo::default()),
        )
        .await
        {
            Ok(enrolled) => {
                progress.made_one();
                id = Some(enrolled.credential_id);
                break;
            }
            Err(MfaError::FactorChangeInProgress(_)) => tokio::task::yield_now().await,
            Err(_) => break,
        }
    }
    let Some(id) = id else {
        return made;
    };
    let mut rounds_after_reset = 0;
    for _ in 0..20 {
        if progress.reset_done() {
            rounds_after_reset += 1;
            if rounds_after_reset > 1 {
                break;
            }
        }
        let Ok(challenge) = mfa.start_challenge("ada", &["pwd"], None).await else {
            continue;
        };
        made.mfa_tokens.push(challenge.mfa_token.clone());
        let Ok(options) = mfa
            .prepare_challenge(&challenge.mfa_token, "webauthn", &ClientInfo::default())
            .await
        else {
            continue;
        };
        let Ok(assertion) = key.do_authentication(origin(), request_options(&options)) else {
            continue;
        };
        let proof = json!({"credential": assertion});
        let login = remembered_login(&mfa, &challenge.mfa_token, "webauthn", &proof).await;
        if !login.devices.is_empty() {
            progress.made_one();
        }
        made.add(login);
    }
    made.passkeys.push((key, id, handle));
    made
}

/// An MFA step finished with `proof`, remembering the device; the token it concludes with.
async fn remembered_login(mfa: &Mfa, token: &str, kind: &str, proof: &Value) -> Made {
    let mut made = Made::default();
    made.mfa_tokens.push(token.to_owned());
    let Ok(login) = mfa
        .finish_mfa(token, kind, proof, true, &ClientInfo::default())
        .await
    else {
        return made;
    };
    if let Some(device) = &login.device {
        made.devices.push(device.token.clone());
    }
    if let Ok(stepup_mfa::Conclusion::Token { token, .. }) = mfa.conclude(login).await {
        made.tokens
            .push(verifier(mfa).verify(&token.access_token).unwrap());
    }
    made
}

/// 100 tasks of a party holding a session from before the reset — registering passkeys of its
/// own and completing MFA steps with them with `remember_device`, finishing enrollments begun
/// before, answering MFA steps begun before — race the reset, which lands once they have made
/// something. Afterwards nothing they made logs the user in: no credential offered, no device
/// vouching, no `mfa_token` usable, no token standing; a token minted after the reset, in the
/// reset's own second, stands at once; the owner enrolls anew and only the new factor counts.
async fn race_against(h: Harness, reset: Reset) {
    let mfa = h.unlimited();
    let (key, enrolled) = h.enroll_totp(&mfa, "ada").await;
    let codes = enrolled.backup_codes;
    let (session, device) = mfa_login(&h, &mfa, "ada", &key, true).await;
    let device = device.unwrap();
    let vouched = mfa.device(&device).await.unwrap().unwrap();
    // Enrollments begun before the race: a phone and an address pending.
    mfa.start_enrollment(
        "ada",
        "sms",
        &json!({"phone": PHONE}),
        &ClientInfo::default(),
    )
    .await
    .unwrap();
    let sms_code = h.phone.last_code();
    mfa.start_enrollment("ada", "email", &json!({}), &ClientInfo::default())
        .await
        .unwrap();
    let email_code = h.mailbox.last_code_to(&address_of("ada"));
    // MFA steps begun before the race, each with its proof waiting.
    let mut steps = Vec::new();
    for code in &codes {
        steps.push((
            mfa_token(&mfa, "ada").await,
            "backup_code",
            json!({"code": code}),
        ));
    }
    for _ in 0..8 {
        steps.push((
            mfa_token(&mfa, "ada").await,
            "totp",
            json!({"code": h.code(&key)}),
        ));
    }
    let reset_at = h.now();

    let progress = Progress::default();
    let resetter = {
        let (mfa, progress) = (mfa.clone(), progress.clone());
        tokio::spawn(async move {
            // Once the attacker's tasks have made something, while they go on (waiting at most
            // a minute: a race that made nothing fails below).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while progress.made.load(Ordering::SeqCst) < 10
                && tokio::time::Instant::now() < deadline
            {
                tokio::task::yield_now().await;
            }
            let outcome = match reset {
                Reset::Admin => mfa.admin_reset("ada", "root").await,
                Reset::Deletion => mfa.delete_user("ada").await,
            };
            progress.reset_done.store(true, Ordering::SeqCst);
            outcome
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for (token, kind, proof) in steps {
        let mfa = mfa.clone();
        tasks.spawn(async move { remembered_login(&mfa, &token, kind, &proof).await });
    }
    for (kind, code) in [("sms", sms_code), ("email", email_code)] {
        let (mfa, session) = (mfa.clone(), session.clone());
        tasks.spawn(async move {
            let _ = as_caller(
                &mfa,
                &session,
                mfa.finish_enrollment("ada", kind, &json!({"code": code}), &ClientInfo::default()),
            )
            .await;
            Made::default()
        });
    }
    while tasks.len() < 100 {
        let (mfa, session, progress) = (mfa.clone(), session.clone(), progress.clone());
        tasks.spawn(register_and_remember(mfa, session, progress));
    }
    let mut made = Made::default();
    for outcome in tasks.join_all().await {
        made.add(outcome);
    }
    resetter.await.unwrap().unwrap();
    // The race made things before the reset, and went on after it.
    eprintln!(
        "the race made {} devices, {} tokens, {} passkeys, {} mfa_tokens",
        made.devices.len(),
        made.tokens.len(),
        made.passkeys.len(),
        made.mfa_tokens.len()
    );
    assert!(
        made.devices.len() + made.passkeys.len() >= 10,
        "devices {}, passkeys {}",
        made.devices.len(),
        made.passkeys.len()
    );
    made.devices.push(device.clone());
    made.tokens.push(session.clone());

    // Nothing of before or during the race is offered, vouches, or stands.
    assert!(mfa.methods("ada").await.unwrap().is_empty());
    assert!(!mfa.is_enrolled("ada").await.unwrap());
    assert!(mfa.factor_summary("ada").await.unwrap().factors.is_empty());
    assert_eq!(mfa.remaining_backup_codes("ada").await.unwrap(), 0);
    assert!(mfa.devices("ada").await.unwrap().is_empty());
    for device in &made.devices {
        assert!(mfa.device(device).await.unwrap().is_none());
    }
    for token in &made.tokens {
        assert!(!mfa.check_token(token).await.unwrap());
    }

    // A token minted now, in the reset's own second, stands at once.
    assert_eq!(h.now(), reset_at);
    let LoginStep::Authenticated(login) = h.sign_in(&mfa, "ada").await.unwrap() else {
        panic!("after a reset the password alone signs in");
    };
    assert_eq!(login.authentication.acr, "pwd");
    let fresh = h.token(&mfa, login).await;
    assert_eq!(fresh.issued_at(), Some(reset_at));
    assert!(mfa.check_token(&fresh).await.unwrap());
    mfa.check_caller(&fresh).await.unwrap();

    // The owner enrolls anew: only the new factor counts.
    let (new_key, new) = h.enroll_totp(&mfa, "ada").await;
    assert_eq!(mfa.methods("ada").await.unwrap(), ["totp", "backup_code"]);
    let summary = mfa.factor_summary("ada").await.unwrap();
    assert_eq!(summary.factors.len(), 1, "{summary:?}");
    assert_eq!(summary.factors[0].kind, "totp");
    assert_eq!(summary.backup_codes_remaining, 10);
    // No mfa_token of before or during the race completes, even with the new factor.
    for token in &made.mfa_tokens {
        for (kind, proof) in [
            ("totp", json!({"code": h.code(&new_key)})),
            ("backup_code", json!({"code": new.backup_codes[0]})),
        ] {
            assert!(matches!(
                mfa.finish_challenge(token, kind, &proof, &ClientInfo::default())
                    .await,
                Err(MfaError::InvalidMfaToken(_))
            ));
        }
    }
    // No device of before or during the race skips the new factor.
    assert!(mfa.device(&device).await.unwrap().is_none());
    let login = PasswordLogin {
        username: "ada",
        password: PASSWORD,
        device: Some(&vouched),
        pending: None,
    };
    assert!(matches!(
        mfa.sign_in(login, &ClientInfo::default()).await.unwrap(),
        LoginStep::MfaRequired(_)
    ));
    // No passkey of the race signs in, alone or as the second factor.
    for (mut key, id, handle) in made.passkeys {
        let proof = h.passwordless_proof(&mfa, &mut key, &id, &handle).await;
        assert!(matches!(
            mfa.finish_sign_in("webauthn", &proof, None, &ClientInfo::default())
                .await,
            Err(MfaError::InvalidCode(_))
        ));
        let token = mfa_token(&mfa, "ada").await;
        assert!(matches!(
            mfa.prepare_challenge(&token, "webauthn", &ClientInfo::default())
                .await,
            Err(MfaError::NotEnrolled(_))
        ));
    }
    // The old tokens stay void; the new one stands.
    for token in &made.tokens {
        assert!(!mfa.check_token(token).await.unwrap());
    }
    assert!(mfa.check_token(&fresh).await.unwrap());
    let (after, _) = mfa_login(&h, &mfa, "ada", &new_key, false).await;
    assert!(mfa.check_token(&after).await.unwrap());
}

async fn nothing_made_before_or_during_an_admin_reset_logs_the_user_in(h: Harness) {
    race_against(h, Reset::Admin).await;
}

async fn nothing_made_before_or_during_an_account_deletion_logs_the_user_in(h: Harness) {
    race_against(h, Reset::Deletion).await;
}

// ---- Recovery ----------------------------------------------------------------------------------

/// Requests a recovery for `user`'s address; returns the mailed code.
async fn mailed_recovery_code(h: &Harness, mfa: &Mfa, user: &str) -> String {
    let before = h.mailbox.mails().len();
    mfa.start_recovery(&address_of(user), &ClientInfo::default())
        .await
        .unwrap();
    let mail = h
        .mailbox
        .wait_for(before, "Your account recovery code")
        .await;
    assert_eq!(mail.to, address_of(user));
    recovery_code_in(&mail.body)
}

async fn one_of_100_concurrent_recovery_confirmations_wins(h: Harness) {
    let mfa = h.mfa.clone();
    h.enroll_totp(&mfa, "ada").await;
    let code = mailed_recovery_code(&h, &mfa, "ada").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let (mfa, code) = (mfa.clone(), code.clone());
        tasks.spawn(async move { mfa.finish_recovery(&code, PASSWORD, &nth_client(i)).await });
    }
    let mut completed = 0;
    for outcome in tasks.join_all().await {
        match outcome {
            Ok(RecoveryOutcome::Completed { user, .. }) => {
                assert_eq!(user, "ada");
                completed += 1;
            }
            Err(MfaError::InvalidRecoveryCode(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(completed, 1);
    assert_eq!(mfa.generation("ada").await.unwrap().value, 1, "one reset");
    assert_eq!(events(&mfa, "ada", "recovery_completed").await.len(), 1);
}

async fn a_recovery_voids_everything_and_its_token_is_valid_at_once(h: Harness) {
    let mfa = h.mfa.clone();
    let (key, enrolled) = h.enroll_totp(&mfa, "ada").await;
    let (old, device) = mfa_login(&h, &mfa, "ada", &key, true).await;
    let device = device.unwrap();
    let pending = mfa_token(&mfa, "ada").await;

    let code = mailed_recovery_code(&h, &mfa, "ada").await;
    assert!(code.len() >= 43, "256 random bits");
    let recovered_at = h.now();
    let RecoveryOutcome::Completed { user, login } = mfa
        .finish_recovery(&code, PASSWORD, &ClientInfo::default())
        .await
        .unwrap()
    else {
        panic!("no delay: the recovery completes");
    };
    assert_eq!(user, "ada");
    assert_eq!(login.via, "recovery");
    assert_eq!(login.authentication.acr, "pwd");
    assert_eq!(login.authentication.amr, ["pwd"]);
    assert_eq!(login.authentication.generation, 1);
    // Its token stands at once, in the recovery's own second.
    let token = h.token(&mfa, login).await;
    assert_eq!(token.issued_at(), Some(recovered_at));
    assert!(mfa.check_token(&token).await.unwrap());
    assert_eq!(
        events(&mfa, "ada", "token_issued").await.last().unwrap()["via"],
        "recovery"
    );

    // Everything of before is void.
    assert!(!mfa.check_token(&old).await.unwrap());
    assert!(mfa.device(&device).await.unwrap().is_none());
    assert!(mfa.factor_summary("ada").await.unwrap().factors.is_empty());
    assert_eq!(mfa.remaining_backup_codes("ada").await.unwrap(), 0);
    // An administrator's reset in the very same second voids the recovery's token too.
    assert_eq!(h.now(), recovered_at);
    mfa.admin_reset("ada", "root").await.unwrap();
    assert!(!mfa.check_token(&token).await.unwrap());
    // The user enrolls again; the old mfa_token, backup codes and app do nothing.
    let (new_key, _) = h.enroll_totp(&mfa, "ada").await;
    assert!(matches!(
        mfa.finish_challenge(
            &pending,
            "totp",
            &json!({"code": h.code(&new_key)}),
            &ClientInfo::default()
        )
        .await,
        Err(MfaError::InvalidMfaToken(_))
    ));
    assert!(
        backup_login(&mfa, "ada", &enrolled.backup_codes[0])
            .await
            .is_err()
    );
    assert!(totp_login(&mfa, "ada", &h.code(&key)).await.is_err());
    totp_login(&mfa, "ada", &h.code(&new_key)).await.unwrap();
    let kinds = event_kinds(&mfa, "ada").await;
    for kind in ["recovery_requested", "factors_reset", "recovery_completed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
    // The code is in the mail alone: no audit event holds it.
    for event in mfa.audit().events("ada", 1000).await.unwrap() {
        assert!(!event.detail.contains(&code), "{}", event.detail);
    }
}

async fn a_wrong_password_uses_the_recovery_code_up(h: Harness) {
    let mfa = h.mfa.clone();
    let (key, _) = h.enroll_totp(&mfa, "ada").await;
    let code = mailed_recovery_code(&h, &mfa, "ada").await;
    let client = ClientInfo::default();
    assert_refused(
        mfa.finish_recovery(&code, "wrong horse", &client).await,
        400,
        "invalid_token",
    );
    assert!(matches!(
        mfa.finish_recovery(&code, PASSWORD, &client).await,
        Err(MfaError::InvalidRecoveryCode(_))
    ));
    assert_eq!(
        events(&mfa, "ada", "mfa_failed").await,
        [json!({"method": "recovery"})]
    );
    // Nothing was reset.
    assert_eq!(mfa.generation("ada").await.unwrap().value, 0);
    totp_login(&mfa, "ada", &h.code(&key)).await.unwrap();
}

async fn a_recovery_code_works_once_and_expires_after_an_hour(h: Harness) {
    let mfa = h.mfa.clone();
    h.enroll_totp(&mfa, "ada").await;
    let client = ClientInfo::default();
    let code = mailed_recovery_code(&h, &mfa, "ada").await;
    mfa.finish_recovery(&code, PASSWORD, &client).await.unwrap();
    for code in [code.as_str(), "made-up", ""] {
        assert!(matches!(
            mfa.finish_recovery(code, PASSWORD, &client).await,
            Err(MfaError::InvalidRecoveryCode(_))
        ));
    }
    let code = mailed_recovery_code(&h, &mfa, "ada").await;
    h.clock.advance(RECOVERY_CODE_TTL);
    assert!(matches!(
        mfa.finish_recovery(&code, PASSWORD, &client).await,
        Err(MfaError::InvalidRecoveryCode(_))
    ));
    // A fresh one works.
    let code = mailed_recovery_code(&h, &mfa, "ada").await;
    mfa.finish_recovery(&code, PASSWORD, &client).await.unwrap();
    assert_eq!(mfa.generation("ada").await.unwrap().value, 2);
}

async fn a_recovery_request_for_an_unknown_address_mails_nothing(h: Harness) {
    let mfa = h.mfa.clone();
    // An unknown address, and one of an account without an address on file: answered alike,
    // and nothing is ever sent (no mail leaves, even in the background).
    mfa.start_recovery("nobody@example.org", &ClientInfo::default())
        .await
        .unwrap();
    mfa.start_recovery(&address_of("nomail-ann"), &ClientInfo::default())
        .await
        .unwrap();
    assert!(matches!(
        mfa.start_recovery("", &ClientInfo::default()).await,
        Err(MfaError::InvalidInput(_))
    ));
    // A known address gets its mail.
    mailed_recovery_code(&h, &mfa, "ada").await;
    assert_eq!(h.mailbox.mails().len(), 1, "one mail, to the known address");
    assert!(
        events(&mfa, "nobody", "recovery_requested")
            .await
            .is_empty()
    );
    // More than five requests an hour for one address are answered alike, and not mailed.
    for _ in 0..6 {
        mfa.start_recovery(&address_of("bea"), &ClientInfo::default())
            .await
            .unwrap();
    }
    h.mailbox
        .wait_until(|mails| {
            mails
                .iter()
                .filter(|mail| mail.to == address_of("bea"))
                .count()
                >= 5
        })
        .await;
    assert_eq!(h.mailbox.mails_to(&address_of("bea")).len(), 5);
    // Each mail follows its audit record.
    assert_eq!(events(&mfa, "bea", "recovery_requested").await.len(), 5);
}

tokio::task_local! {
    /// Set around the request whose store calls are counted (not the work it leaves behind).
    static COUNTED: ();
}

/// The store calls made inside [`COUNTED`], in order, by name.
#[derive(Clone, Default)]
struct Calls(Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Calls {
    fn note(&self, call: &'static str) {
        if COUNTED.try_with(|_| ()).is_ok() {
            self.0.lock().unwrap().push(call);
        }
    }

    fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// The ephemeral store, its calls noted.
struct CountedEphemeral(Arc<dyn stepup_store::EphemeralStore>, Calls);

#[stepup_store::async_trait]
impl stepup_store::EphemeralStore for CountedEphemeral {
    async fn insert_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> stepup_store::StoreResult<bool> {
        self.1.note("ephemeral.insert_if_absent");
        self.0.insert_if_absent(key, value, ttl).await
    }
    async fn get(&self, key: &str) -> stepup_store::StoreResult<Option<Vec<u8>>> {
        self.1.note("ephemeral.get");
        self.0.get(key).await
    }
    async fn take(&self, key: &str) -> stepup_store::StoreResult<Option<Vec<u8>>> {
        self.1.note("ephemeral.take");
        self.0.take(key).await
    }
    async fn increment(&self, key: &str, ttl: Duration) -> stepup_store::StoreResult<u64> {
        self.1.note("ephemeral.increment");
        self.0.increment(key, ttl).await
    }
    async fn decrement(&self, key: &str) -> stepup_store::StoreResult<u64> {
        self.1.note("ephemeral.decrement");
        self.0.decrement(key).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
        ttl: Duration,
    ) -> stepup_store::StoreResult<bool> {
        self.1.note("ephemeral.compare_and_swap");
        self.0.compare_and_swap(key, expected, new, ttl).await
    }
    async fn remove(&self, key: &str) -> stepup_store::StoreResult<()> {
        self.1.note("ephemeral.remove");
        self.0.remove(key).await
    }
}

/// The audit store, its calls noted.
struct CountedAudit(Arc<dyn stepup_store::AuditStore>, Calls);

#[stepup_store::async_trait]
impl stepup_store::AuditStore for CountedAudit {
    async fn append_audit(
        &self,
        record: stepup_store::AuditRecord,
    ) -> stepup_store::StoreResult<()> {
        self.1.note("audit.append_audit");
        self.0.append_audit(record).await
    }
    async fn audit_events(
        &self,
        user: &str,
        limit: usize,
    ) -> stepup_store::StoreResult<Vec<stepup_store::AuditRecord>> {
        self.1.note("audit.audit_events");
        self.0.audit_events(user, limit).await
    }
}

/// A recovery request makes the same store calls whether its address belongs to an account that
/// gets the mail, to nobody, to an account without an address on file, or to an account over
/// the mail limit or its client over the client limit: counted, not timed.
async fn a_recovery_request_does_the_same_store_work_on_every_path(h: Harness) {
    let calls = Calls::default();
    let mut stores = h.stores.clone();
    stores.ephemeral = Arc::new(CountedEphemeral(stores.ephemeral.clone(), calls.clone()));
    stores.audit = Arc::new(CountedAudit(stores.audit.clone(), calls.clone()));
    let mfa = h.engine_on(&stores, keyring());
    let request = |email: String, client: ClientInfo| {
        let mfa = mfa.clone();
        COUNTED.scope((), async move {
            mfa.start_recovery(&email, &client).await.unwrap()
        })
    };

    request(address_of("ada"), client_at("192.0.2.1")).await;
    let mailed = calls.take();
    assert_eq!(
        mailed,
        [
            "ephemeral.increment",
            "ephemeral.increment",
            "ephemeral.insert_if_absent"
        ],
        "both counters and the code; the audit record follows in the background"
    );
    h.mailbox.wait_for(0, "Your account recovery code").await;
    for (path, email) in [
        ("unknown", "nobody@example.org".to_owned()),
        ("no address on file", address_of("nomail-ann")),
    ] {
        request(email, client_at("192.0.2.1")).await;
        assert_eq!(calls.take(), mailed, "{path}");
    }
    // Over the mail address's limit.
    for _ in 0..stepup_mfa::recovery::REQUESTS_PER_HOUR {
        request(address_of("bea"), client_at("192.0.2.2")).await;
        assert_eq!(calls.take(), mailed);
    }
    request(address_of("bea"), client_at("192.0.2.2")).await;
    assert_eq!(calls.take(), mailed, "over the mail limit");
    // Over the client's limit.
    for n in 0..stepup_mfa::recovery::REQUESTS_PER_CLIENT_PER_HOUR {
        request(address_of(&format!("cy{n}")), client_at("192.0.2.3")).await;
        calls.take();
    }
    request(address_of("dee"), client_at("192.0.2.3")).await;
    assert_eq!(calls.take(), mailed, "over the client limit");
    // Mail goes out in the background: wait for every mail that is due before counting.
    let bea = address_of("bea");
    h.mailbox
        .wait_until(|mails| {
            let to_cy = mails.iter().filter(|mail| mail.to.starts_with("cy"));
            to_cy.count() == 20 && mails.iter().filter(|mail| mail.to == bea).count() == 5
        })
        .await;
    assert!(h.mailbox.mails_to(&address_of("dee")).is_empty());
    assert_eq!(h.mailbox.mails_to(&bea).len(), 5);
    assert!(events(&mfa, "dee", "recovery_requested").await.is_empty());
}

/// Recovery mails are limited per client address like every per-address limit: two IPv6
/// clients of one /64 share one budget; another /64 has its own.
async fn recovery_requests_of_one_ipv6_64_share_a_budget(h: Harness) {
    let mfa = h.mfa.clone();
    let per_client = stepup_mfa::recovery::REQUESTS_PER_CLIENT_PER_HOUR;
    for n in 0..per_client {
        let client = client_at(if n % 2 == 0 {
            "2001:db8:1:2::1"
        } else {
            "2001:db8:1:2:ffff::9"
        });
        mfa.start_recovery(&address_of(&format!("ed{n}")), &client)
            .await
            .unwrap();
    }
    mfa.start_recovery(&address_of("fay"), &client_at("2001:db8:1:2::abcd"))
        .await
        .unwrap();
    mfa.start_recovery(&address_of("gus"), &client_at("2001:db8:1:3::1"))
        .await
        .unwrap();
    h.mailbox.wait_for(0, "Your account recovery code").await;
    h.mailbox
        .wait_until(|mails| mails.len() == usize::try_from(per_client).unwrap() + 1)
        .await;
    assert!(
        h.mailbox.mails_to(&address_of("fay")).is_empty(),
        "the /64's budget is spent"
    );
    assert_eq!(
        h.mailbox.mails_to(&address_of("gus")).len(),
        1,
        "another /64 has its own"
    );
    // The hour passes: the /64 is mailed again.
    h.clock.advance(Duration::from_secs(3601));
    mfa.start_recovery(&address_of("fay"), &client_at("2001:db8:1:2::abcd"))
        .await
        .unwrap();
    h.mailbox
        .wait_until(|mails| mails.iter().any(|mail| mail.to == address_of("fay")))
        .await;
}

async fn a_delayed_recovery_takes_effect_at_the_first_password_login_after_its_due_time(
    h: Harness,
) {
    let mfa = h.mfa.clone().with_recovery_delay(DAY);
    h.enroll_totp(&mfa, "ada").await;
    let code = mailed_recovery_code(&h, &mfa, "ada").await;
    let confirmed_at = h.now();
    let RecoveryOutcome::Pending { user, due_at } = mfa
        .finish_recovery(&code, PASSWORD, &ClientInfo::default())
        .await
        .unwrap()
    else {
        panic!("a delayed recovery is pending");
    };
    assert_eq!(
        (user.as_str(), due_at),
        ("ada", confirmed_at + DAY.as_secs())
    );
    assert_eq!(mfa.pending_recovery("ada").await.unwrap(), Some(due_at));
    assert_eq!(
        events(&mfa, "ada", "recovery_pending").await,
        [json!({"due_at": due_at})]
    );

    // Before the due time nothing changed: the login asks for the factor.
    h.clock.advance(DAY - Duration::from_secs(60));
    assert!(matches!(
        h.sign_in(&mfa, "ada").await.unwrap(),
        LoginStep::MfaRequired(_)
    ));
    assert!(mfa.is_enrolled("ada").await.unwrap());

    // After it, the first password login applies the reset, and its token stands at once.
    h.clock.advance(Duration::from_secs(60));
    let LoginStep::Authenticated(login) = h.sign_in(&mfa, "ada").await.unwrap() else {
        panic!("the due recovery signs in with the password");
    };
    assert_eq!(login.via, "recovery");
    assert_eq!(login.authentication.acr, "pwd");
    let token = h.token(&mfa, login).await;
    assert!(mfa.check_token(&token).await.unwrap());
    assert!(mfa.factor_summary("ada").await.unwrap().factors.is_empty());
    assert_eq!(mfa.pending_recovery("ada").await.unwrap(), None);
    assert_eq!(events(&mfa, "ada", "recovery_completed").await.len(), 1);
}

async fn a_login_with_a_factor_cancels_a_pending_recovery(h: Harness) {
    let mfa = h.mfa.clone().with_recovery_delay(DAY);
    let (key, _) = h.enroll_totp(&mfa, "ada").await;
    let code = mailed_recovery_code(&h, &mfa, "ada").await;
    mfa.finish_recovery(&code, PASSWORD, &ClientInfo::default())
        .await
        .unwrap();
    assert!(mfa.pending_recovery("ada").await.unwrap().is_some());

    h.clock.advance(Duration::from_secs(60 * 60));
    totp_login(&mfa, "ada", &h.code(&key)).await.unwrap();
    assert_eq!(mfa.pending_recovery("ada").await.unwrap(), None);
    assert_eq!(events(&mfa, "ada", "recovery_cancelled").await.len(), 1);

    // Past the due time, the factor is still there.
    h.clock.advance(DAY * 2);
    assert!(matches!(
        h.sign_in(&mfa, "ada").await.unwrap(),
        LoginStep::MfaRequired(_)
    ));
    assert_eq!(mfa.generation("ada").await.unwrap().value, 0);
}

async fn an_admin_reset_unlocks_and_is_audited_with_the_admin(h: Harness) {
    let mfa = h
        .mfa
        .clone()
        .with_attempt_policy(stepup_mfa::AttemptPolicy {
            max_failures: 50,
            lock_after: 3,
            ..stepup_mfa::AttemptPolicy::default()
        });
    let (key, _) = h.enroll_totp(&mfa, "ada").await;
    let (before, _) = mfa_login(&h, &mfa, "ada", &key, false).await;
    for _ in 0..3 {
        assert!(totp_login(&mfa, "ada", &h.wrong_code(&key)).await.is_err());
    }
    assert!(mfa.is_locked("ada", "totp").await.unwrap());
    let reset_at = h.now();
    mfa.admin_reset("ada", "root").await.unwrap();
    assert!(!mfa.is_locked("ada", "totp").await.unwrap());
    assert!(!mfa.check_token(&before).await.unwrap());
    assert_eq!(
        events(&mfa, "ada", "admin_reset").await,
        [json!({"admin": "root"})]
    );
    // The password alone signs in, its token good at once; the user enrolls again.
    assert_eq!(h.now(), reset_at);
    let LoginStep::Authenticated(login) = h.sign_in(&mfa, "ada").await.unwrap() else {
        panic!("after a reset the password alone signs in");
    };
    assert!(mfa.check_token(&h.token(&mfa, login).await).await.unwrap());
    let (key, _) = h.enroll_totp(&mfa, "ada").await;
    totp_login(&mfa, "ada", &h.code(&key)).await.unwrap();
}

/// A remembered device vouched for (by the layer) before a reset, presented at a password login
/// after the owner enrolled a new factor: it skips nothing.
async fn a_device_vouched_for_before_a_reset_does_not_skip_the_new_factor(h: Harness) {
    let mfa = h.mfa.clone();
    let (key, _) = h.enroll_totp(&mfa, "ada").await;
    let (_, device) = mfa_login(&h, &mfa, "ada", &key, true).await;
    let vouched: TrustedDevice = mfa.device(&device.unwrap()).await.unwrap().unwrap();
    // While it stands, it skips the MFA step (at `mfa`, without `auth_time`).
    let with_device = PasswordLogin {
        username: "ada",
        password: PASSWORD,
        device: Some(&vouched),
        pending: None,
    };
    let LoginStep::Authenticated(login) = mfa
        .sign_in(with_device.clone(), &ClientInfo::default())
        .await
        .unwrap()
    else {
        panic!("a remembered device skips the step");
    };
    assert_eq!(login.authentication.acr, "mfa");
    assert_eq!(login.authentication.auth_time, None);

    mfa.admin_reset("ada", "root").await.unwrap();
    h.enroll_totp(&mfa, "ada").await;
    assert!(matches!(
        mfa.sign_in(with_device, &ClientInfo::default())
            .await
            .unwrap(),
        LoginStep::MfaRequired(_)
    ));
}

/// An enrollment begun before a reset whose pending credential is stored only after the owner
/// enrolled anew never replaces the owner's new factor.
async fn an_enrollment_stored_after_a_reset_never_replaces_the_owners_new_factor(h: Harness) {
    let mfa = h.mfa.clone();
    h.enroll_email(&mfa, "ada").await;
    // The attacker's enrollment reads the generation, then — while the factor makes its secret
    // — the owner resets the account and enrolls a new app.
    let owner = h.engine_on(&h.stores, keyring());
    let owner_key: Arc<std::sync::Mutex<Option<stepup_mfa::totp::TotpKey>>> = Arc::default();
    let (slot, clock) = (owner_key.clone(), h.clock.clone());
    h.accounts.on_next_label(Arc::new(move |user| {
        let (owner, slot, clock) = (owner.clone(), slot.clone(), clock.clone());
        Box::pin(async move {
            owner.admin_reset(&user, "root").await.unwrap();
            let answer = owner
                .start_enrollment(&user, "totp", &json!({}), &ClientInfo::default())
                .await
                .unwrap();
            let key = totp_key(&answer);
            let code = key.code_at(stepup_core::clock::Clock::unix_seconds(&clock));
            owner
                .finish_enrollment(
                    &user,
                    "totp",
                    &json!({"code": code}),
                    &ClientInfo::default(),
                )
                .await
                .unwrap();
            *slot.lock().unwrap() = Some(key);
        })
    }));
    let stale = mfa
        .start_enrollment("ada", "totp", &json!({}), &ClientInfo::default())
        .await;
    assert!(
        matches!(stale, Err(MfaError::AlreadyEnrolled(_))),
        "the stale write is refused: {stale:?}"
    );
    let key = owner_key
        .lock()
        .unwrap()
        .take()
        .expect("the owner enrolled");
    assert_eq!(mfa.methods("ada").await.unwrap(), ["totp", "backup_code"]);
    let summary = mfa.factor_summary("ada").await.unwrap();
    assert_eq!(summary.factors.len(), 1);
    assert_eq!(summary.factors[0].status, "active");
    h.clock.advance(Duration::from_secs(30));
    totp_login(&mfa, "ada", &h.code(&key)).await.unwrap();
}

async fn an_authorization_code_issued_before_a_reset_is_refused_after_it(h: Harness) {
    use base64::Engine;
    use sha2::Digest;
    let mfa = h.mfa.clone();
    let (key, _) = h.enroll_totp(&mfa, "ada").await;
    let verifier_string = "a-pkce-verifier-long-enough-to-be-valid-0123456789";
    let pending = stepup_mfa::PendingAuthorization {
        client_id: "demo".into(),
        redirect_uri: "http://localhost:3000/callback".into(),
        state: Some("xyz".into()),
        code_challenge: base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier_string.as_bytes())),
        ..Default::default()
    };
    let challenge = mfa
        .start_challenge("ada", &["pwd"], Some(pending.clone()))
        .await
        .unwrap();
    let login = mfa
        .finish_mfa(
            &challenge.mfa_token,
            "totp",
            &json!({"code": h.code(&key)}),
            false,
            &ClientInfo::default(),
        )
        .await
        .unwrap();
    let stepup_mfa::Conclusion::Code { code: early, .. } = mfa.conclude(login).await.unwrap()
    else {
        panic!("a waiting client gets a code");
    };
    let redeem = async |code: &str| {
        mfa.redeem_authorization_code(
            code,
            "demo",
            "http://localhost:3000/callback",
            verifier_string,
            &ClientInfo::default(),
        )
        .await
    };
    h.clock.advance(Duration::from_secs(5));
    mfa.admin_reset("ada", "root").await.unwrap();
    assert!(matches!(
        redeem(&early).await,
        Err(MfaError::InvalidGrant(_))
    ));
    assert_eq!(
        events(&mfa, "ada", "authorization_code_refused")
            .await
            .len(),
        1
    );
    // A code issued after the reset, in its second, is good, and so is its token.
    let login = PasswordLogin {
        username: "ada",
        password: PASSWORD,
        device: None,
        pending: Some(pending),
    };
    let LoginStep::Authenticated(login) = mfa.sign_in(login, &ClientInfo::default()).await.unwrap()
    else {
        panic!("after the reset the password alone signs in");
    };
    let stepup_mfa::Conclusion::Code { code, .. } = mfa.conclude(login).await.unwrap() else {
        panic!("a waiting client gets a code");
    };
    let authentication = redeem(&code).await.unwrap();
    assert_eq!(authentication.generation, 1);
    let token = mfa
        .issue_token(&authentication, "authorization_code")
        .await
        .unwrap();
    let token = verifier(&mfa).verify(&token.access_token).unwrap();
    assert!(mfa.check_token(&token).await.unwrap());
    // A code is redeemed once.
    assert!(matches!(
        redeem(&code).await,
        Err(MfaError::InvalidGrant(_))
    ));
}
