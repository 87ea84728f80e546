//! What every engine test shares: an engine with every factor registered, on every store
//! backend, with the test's own clock, phone, mailbox and accounts.
//!
//! - [`on_every_store!`] runs `async fn scenario(h: Harness)` on memory, SQLite (a file of the
//!   test's own) and PostgreSQL (a schema of the test's own); its `redis:` form adds PostgreSQL
//!   with the ephemeral state in Redis (a key prefix of the test's own). Without `DATABASE_URL`
//!   (or `REDIS_URL`) a scenario prints why and passes, except on CI (`CI=true`), where it fails.
//! - [`Harness`]: the engine (`mfa`), the clock (a [`ManualClock`]: nothing sleeps to make time
//!   pass), the stores, the phone every SMS reaches, the mailbox every mail reaches, and helpers
//!   that go through the engine's public lifecycle and login.
#![allow(dead_code, unreachable_pub)]

#[path = "../../../stepup-store-postgres/tests/support/mod.rs"]
pub mod pg_support;

use std::collections::HashSet;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use stepup_core::AuthContext;
use stepup_core::clock::{Clock, ManualClock};
use stepup_core::token::{JwtIssuer, JwtVerifier};
use stepup_mail::{Mail, MailError, Mailer};
use stepup_mfa::delivery::SendPolicy;
use stepup_mfa::email::Email;
use stepup_mfa::sms::{Sms, SmsError, SmsPolicy, SmsProvider, SmsSender};
use stepup_mfa::totp::{Totp, TotpAlgorithm, TotpKey};
use stepup_mfa::webauthn::{
    CreationChallengeResponse, PublicKeyCredential, RelyingParty, RequestChallengeResponse, Url,
    Webauthn,
};
use stepup_mfa::{
    AddressPolicy, AttemptPolicy, ClientInfo, CompletedChallenge, Conclusion, Enrolled, KdfPool,
    Keyring, Login, LoginStep, Mfa, MfaError, PasswordCheck, PasswordCheckFailed, PasswordLogin,
    Stores,
};
use stepup_store::{Credential, FactorStore, MemoryStore};
use stepup_store_postgres::PostgresStore;
use stepup_store_redis::RedisStore;
use stepup_store_sqlite::SqliteStore;
use webauthn_authenticator_rs::WebauthnAuthenticator;

pub use pg_support::TestSchema;
// Each test binary uses a part of the support.
#[allow(unused_imports)]
pub use stepup_test_env::{code_in, recovery_code_in};

/// The fixed "now" every test starts at: 2027-01-15T08:00:00Z.
pub const T0: u64 = 1_800_000_000;
/// The engine's lookup key.
pub const LOOKUP_KEY: &[u8] = &[42; 32];
/// The relying party's origin, and its id.
pub const ORIGIN: &str = "https://login.example.com";
pub const RP_ID: &str = "example.com";
/// The phone of the SMS tests, and how answers show it.
pub const PHONE: &str = "+15551236789";
pub const MASKED_PHONE: &str = "+1*****6789";
/// Every account's password.
pub const PASSWORD: &str = "correct horse";
/// The per-user window of failed verifications (the default policy's).
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// The token issuer's secret.
const JWT_SECRET: &[u8] = b"engine tests: a secret of thirty-two bytes or more";

/// The keyring every harness seals with (`k1`).
pub fn keyring() -> Keyring {
    Keyring::new("k1", &[1; 32]).unwrap()
}

/// A client at `address`.
pub fn client_at(address: &str) -> ClientInfo {
    ClientInfo::at(address.parse::<IpAddr>().unwrap())
}

/// The `n`th of many distinct clients (10.x.y.z).
pub fn nth_client(n: usize) -> ClientInfo {
    let n = u32::try_from(n).unwrap();
    ClientInfo::at(IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]))
}

// ---- The phone, the mailbox, the accounts --------------------------------------------------

/// A phone that keeps every text it gets: `(to, body)`.
#[derive(Clone, Default)]
pub struct Phone(Arc<Mutex<Vec<(String, String)>>>);

#[async_trait::async_trait]
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
    /// The code of the last text, which must have gone to `PHONE`.
    pub fn last_code(&self) -> String {
        let texts = self.0.lock().unwrap();
        let (to, body) = texts.last().expect("a text was sent");
        assert_eq!(to, PHONE);
        code_in(body)
    }

    /// How many texts were sent.
    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Every text sent.
    pub fn texts(&self) -> Vec<(String, String)> {
        self.0.lock().unwrap().clone()
    }
}

/// A mailer that keeps every mail, and wakes whoever waits for one (recovery mails leave in the
/// background): no test sleeps for a mail.
#[derive(Clone)]
pub struct Mailbox {
    mails: Arc<Mutex<Vec<Mail>>>,
    sent: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Default for Mailbox {
    fn default() -> Self {
        Self {
            mails: Arc::default(),
            sent: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

#[async_trait::async_trait]
impl Mailer for Mailbox {
    async fn send(&self, mail: Mail) -> Result<(), MailError> {
        let count = {
            let mut mails = self.mails.lock().unwrap();
            mails.push(mail);
            mails.len()
        };
        self.sent.send_replace(count);
        Ok(())
    }
}

impl Mailbox {
    /// Every mail so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// The mails to `to`.
    pub fn mails_to(&self, to: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|mail| mail.to == to)
            .collect()
    }

    /// The code of the last mail to `to`.
    pub fn last_code_to(&self, to: &str) -> String {
        let mail = self.mails_to(to).pop().expect("a mail was sent");
        code_in(&mail.body)
    }

    /// Waits (at most 30 s) until the mails so far satisfy `done`.
    pub async fn wait_until(&self, done: impl Fn(&[Mail]) -> bool) {
        let mut sent = self.sent.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !done(&self.mails()) {
            tokio::time::timeout_at(deadline, sent.changed())
                .await
                .expect("the mails awaited never came")
                .unwrap();
        }
    }

    /// The first mail with `subject` after the first `skip`, waiting for it (at most 30 s).
    pub async fn wait_for(&self, skip: usize, subject: &str) -> Mail {
        let mut sent = self.sent.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(mail) = self
                .mails()
                .into_iter()
                .skip(skip)
                .find(|mail| mail.subject == subject)
            {
                return mail;
            }
            tokio::time::timeout_at(deadline, sent.changed())
                .await
                .unwrap_or_else(|_| panic!("no mail {subject:?}"))
                .unwrap();
        }
    }
}

/// What a hook runs, given the user the engine asked about.
pub type Hook = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The application's accounts: every user exists unless deleted here; the username is the user
/// id or the address `{user}@example.com` (none for users whose name starts with `nomail`), the
/// password [`PASSWORD`]. A test can hook the next question the engine asks about an account,
/// to make something happen at that very moment.
#[derive(Clone, Default)]
pub struct Accounts {
    deleted: Arc<Mutex<HashSet<String>>>,
    on_exists: Arc<Mutex<Option<Hook>>>,
    on_label: Arc<Mutex<Option<Hook>>>,
}

impl Accounts {
    /// Forgets the account `user`.
    pub fn delete(&self, user: &str) {
        self.deleted.lock().unwrap().insert(user.to_owned());
    }

    /// Runs `hook` (once) the next time the engine asks whether an account exists.
    pub fn on_next_exists(&self, hook: Hook) {
        *self.on_exists.lock().unwrap() = Some(hook);
    }

    /// Runs `hook` (once) the next time the engine asks for an account's label.
    pub fn on_next_label(&self, hook: Hook) {
        *self.on_label.lock().unwrap() = Some(hook);
    }

    fn take(slot: &Mutex<Option<Hook>>) -> Option<Hook> {
        slot.lock().unwrap().take()
    }
}

/// The address of `user`'s account.
pub fn address_of(user: &str) -> String {
    format!("{user}@example.com")
}

#[async_trait::async_trait]
impl PasswordCheck for Accounts {
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed> {
        // A user signs in by id or by address.
        let user = username.strip_suffix("@example.com").unwrap_or(username);
        let known = !self.deleted.lock().unwrap().contains(user);
        Ok((known && password == PASSWORD).then(|| user.to_owned()))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed> {
        if let Some(hook) = Self::take(&self.on_exists) {
            hook(user.to_owned()).await;
        }
        Ok(!self.deleted.lock().unwrap().contains(user))
    }

    async fn user_of(&self, username: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok(Some(username.to_owned()))
    }

    async fn email_of(&self, user: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok((!user.starts_with("nomail")).then(|| address_of(user)))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<String>, PasswordCheckFailed> {
        Ok(email
            .strip_suffix("@example.com")
            .filter(|user| !self.deleted.lock().unwrap().contains(*user))
            .map(str::to_owned))
    }

    async fn account_label(&self, user: &str) -> Option<String> {
        if let Some(hook) = Self::take(&self.on_label) {
            hook(user.to_owned()).await;
        }
        None
    }
}

// ---- The backends ----------------------------------------------------------------------------

/// Where a harness keeps its state.
pub enum Backend {
    Memory,
    /// A database file of the test's own: its directory is kept alive with the harness.
    Sqlite {
        store: SqliteStore,
        dir: tempfile::TempDir,
    },
    Postgres,
    /// PostgreSQL for the durable state, Redis for the ephemeral state.
    PostgresAndRedis,
}

/// A PostgreSQL schema of the test's own; drop it with [`Postgres::finish`].
pub struct Postgres {
    pub store: PostgresStore,
    pub schema: TestSchema,
}

impl Postgres {
    /// A fresh schema judging expiry by `clock`; `None` (the reason printed) without
    /// `DATABASE_URL`, a panic under `CI=true`.
    pub async fn start(clock: &ManualClock) -> Option<Self> {
        let schema = TestSchema::create().await?;
        let store = schema.store(Arc::new(clock.clone())).await;
        Some(Self { store, schema })
    }

    /// Closes the pool and drops the schema.
    pub async fn finish(self) {
        self.store.pool().close().await;
        self.schema.drop_schema().await;
    }
}

/// A Redis store under a key prefix of the test's own, judging expiry by `clock`; `None` (the
/// reason printed) without `REDIS_URL`, a panic under `CI=true`.
pub async fn redis(clock: &ManualClock) -> Option<RedisStore> {
    let url = stepup_test_env::redis_url()?;
    let store = RedisStore::open_with_clock(&url, Arc::new(clock.clone()))
        .await
        .expect("open the Redis store at REDIS_URL")
        .with_prefix(format!("stepup_test_{}:", stepup_test_env::random_hex()));
    Some(store)
}

// ---- The harness -----------------------------------------------------------------------------

/// An engine with every factor registered on one backend, and what the test needs around it.
pub struct Harness {
    /// The engine: TOTP, SMS (to [`Harness::phone`]), email and recovery mail (to
    /// [`Harness::mailbox`]), WebAuthn for [`ORIGIN`], backup codes, a token issuer.
    pub mfa: Mfa,
    pub clock: ManualClock,
    pub stores: Stores,
    pub phone: Phone,
    pub mailbox: Mailbox,
    pub accounts: Accounts,
    pub backend: Backend,
}

impl Harness {
    fn new(stores: Stores, clock: ManualClock, backend: Backend) -> Self {
        let phone = Phone::default();
        let mailbox = Mailbox::default();
        let accounts = Accounts::default();
        let mfa = build(&stores, keyring(), &clock, &phone, &mailbox, &accounts);
        Self {
            mfa,
            clock,
            stores,
            phone,
            mailbox,
            accounts,
            backend,
        }
    }

    /// On a `MemoryStore`.
    pub async fn memory() -> Self {
        let clock = ManualClock::at_unix(T0);
        let store = MemoryStore::new().with_clock(Arc::new(clock.clone()));
        Self::new(Stores::shared(store), clock, Backend::Memory)
    }

    /// On a SQLite database file of its own.
    pub async fn sqlite() -> Self {
        let clock = ManualClock::at_unix(T0);
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("stepup.db").display());
        let store = SqliteStore::open_with_clock(&url, Arc::new(clock.clone()))
            .await
            .unwrap();
        let stores = Stores::shared(store.clone());
        Self::new(stores, clock, Backend::Sqlite { store, dir })
    }

    /// On a PostgreSQL schema of its own; `None` without `DATABASE_URL`.
    pub async fn postgres() -> Option<(Self, Postgres)> {
        let clock = ManualClock::at_unix(T0);
        let pg = Postgres::start(&clock).await?;
        let stores = Stores::shared(pg.store.clone());
        Some((Self::new(stores, clock, Backend::Postgres), pg))
    }

    /// On a PostgreSQL schema of its own with the ephemeral state in Redis; `None` without
    /// `DATABASE_URL` or `REDIS_URL`.
    pub async fn postgres_and_redis() -> Option<(Self, Postgres)> {
        let clock = ManualClock::at_unix(T0);
        let redis = redis(&clock).await?;
        let pg = Postgres::start(&clock).await?;
        let stores = Stores::shared(pg.store.clone()).with_ephemeral(redis);
        Some((Self::new(stores, clock, Backend::PostgresAndRedis), pg))
    }

    /// Another engine like the harness's, on `stores`, sealing with `keyring`.
    pub fn engine_on(&self, stores: &Stores, keyring: Keyring) -> Mfa {
        build(
            stores,
            keyring,
            &self.clock,
            &self.phone,
            &self.mailbox,
            &self.accounts,
        )
    }

    /// The harness's engine with the SMS factor under `policy`.
    pub fn with_sms_policy(&self, policy: SmsPolicy) -> Mfa {
        self.mfa
            .clone()
            .with_factor(Sms::new(SmsProvider::sender(self.phone.clone())).with_policy(policy))
    }

    /// The harness's engine with the email factor under `policy`.
    pub fn with_email_policy(&self, policy: SendPolicy) -> Mfa {
        self.mfa
            .clone()
            .with_factor(Email::shared(Arc::new(self.mailbox.clone())).with_policy(policy))
    }

    /// The harness's engine with limits out of reach (per user, per address, the factor lock),
    /// for races whose only bound must be the one under test.
    pub fn unlimited(&self) -> Mfa {
        unlimited(&self.mfa)
    }

    /// Now, by the harness's clock.
    pub fn now(&self) -> u64 {
        self.clock.unix_seconds()
    }

    /// The durable store.
    pub fn factors(&self) -> &dyn FactorStore {
        self.stores.factors.as_ref()
    }

    // ---- TOTP ----

    /// Enrolls an authenticator app for `user` through the lifecycle (the secret read from the
    /// answer); the clock ends on a fresh time step.
    pub async fn enroll_totp(&self, mfa: &Mfa, user: &str) -> (TotpKey, Enrolled) {
        let key = self.start_totp(mfa, user).await;
        let enrolled = mfa
            .finish_enrollment(
                user,
                "totp",
                &json!({ "code": key.code_at(self.now()) }),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        assert_eq!(enrolled.kind, "totp");
        // The confirming code's step is used: move on to the next step.
        self.clock.advance(Duration::from_secs(30));
        (key, enrolled)
    }

    /// Starts an authenticator-app enrollment; returns the key the app would hold.
    pub async fn start_totp(&self, mfa: &Mfa, user: &str) -> TotpKey {
        let answer = mfa
            .start_enrollment(user, "totp", &json!({}), &ClientInfo::default())
            .await
            .unwrap();
        totp_key(&answer)
    }

    /// The current code of `key`.
    pub fn code(&self, key: &TotpKey) -> String {
        key.code_at(self.now())
    }

    /// A well-formed code that no step accepted now (within the skew) produces.
    pub fn wrong_code(&self, key: &TotpKey) -> String {
        wrong_code(key, self.now())
    }

    // ---- SMS and email ----

    /// Enrolls [`PHONE`] for `user` on `mfa`; returns the enrollment. The clock ends past the
    /// resend cooldown.
    pub async fn enroll_sms(&self, mfa: &Mfa, user: &str) -> Enrolled {
        let sent = mfa
            .start_enrollment(
                user,
                "sms",
                &json!({ "phone": PHONE }),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        assert_eq!(sent["phone"], MASKED_PHONE);
        let enrolled = mfa
            .finish_enrollment(
                user,
                "sms",
                &json!({ "code": self.phone.last_code() }),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        self.clock.advance(Duration::from_secs(31));
        enrolled
    }

    /// Enrolls the account's own address for `user` on `mfa` (`{}`); the clock ends past the
    /// resend cooldown.
    pub async fn enroll_email(&self, mfa: &Mfa, user: &str) -> Enrolled {
        mfa.start_enrollment(user, "email", &json!({}), &ClientInfo::default())
            .await
            .unwrap();
        let enrolled = mfa
            .finish_enrollment(
                user,
                "email",
                &json!({ "code": self.mailbox.last_code_to(&address_of(user)) }),
                &ClientInfo::default(),
            )
            .await
            .unwrap();
        self.clock.advance(Duration::from_secs(31));
        enrolled
    }

    // ---- WebAuthn ----

    /// Registers a credential of `authenticator` for `user` labelled `label`; returns the
    /// enrollment and the user handle the authenticator was given.
    pub async fn register_passkey(
        &self,
        mfa: &Mfa,
        user: &str,
        authenticator: &mut impl WebauthnAuthenticator,
        label: Option<&str>,
    ) -> (Enrolled, Value) {
        let started = mfa
            .start_enrollment(user, "webauthn", &json!({}), &ClientInfo::default())
            .await
            .unwrap();
        let handle = started["publicKey"]["user"]["id"].clone();
        let credential = authenticator
            .do_registration(origin(), creation_options(&started))
            .unwrap();
        let mut input = json!({
            "registration_token": started["registration_token"],
            "credential": credential,
        });
        if let Some(label) = label {
            input["label"] = json!(label);
        }
        let enrolled = mfa
            .finish_enrollment(user, "webauthn", &input, &ClientInfo::default())
            .await
            .unwrap();
        (enrolled, handle)
    }

    /// An MFA step of `user` prepared for WebAuthn and answered by `authenticator`: the
    /// `mfa_token` and the proof.
    pub async fn passkey_assertion(
        &self,
        mfa: &Mfa,
        user: &str,
        authenticator: &mut impl WebauthnAuthenticator,
    ) -> (String, Value) {
        let token = mfa_token(mfa, user).await;
        let options = mfa
            .prepare_challenge(&token, "webauthn", &ClientInfo::default())
            .await
            .unwrap();
        let credential = authenticator
            .do_authentication(origin(), request_options(&options))
            .unwrap();
        (token, json!({ "credential": credential }))
    }

    /// A passwordless sign-in ceremony answered by `authenticator` with its credential
    /// `credential_id` and the user handle `handle`: the proof for `finish_sign_in`.
    pub async fn passwordless_proof(
        &self,
        mfa: &Mfa,
        authenticator: &mut impl WebauthnAuthenticator,
        credential_id: &str,
        handle: &Value,
    ) -> Value {
        let started = mfa
            .start_sign_in("webauthn", &ClientInfo::default())
            .await
            .unwrap();
        let assertion = authenticator
            .do_authentication(origin(), as_discoverable(&started, credential_id))
            .unwrap();
        json!({
            "passkey_token": started["passkey_token"],
            "credential": with_user_handle(&assertion, handle),
        })
    }

    // ---- Logins and tokens ----

    /// A password login of `user` (no device, no waiting client).
    pub async fn sign_in(&self, mfa: &Mfa, user: &str) -> Result<LoginStep, MfaError> {
        let login = PasswordLogin {
            username: user,
            password: PASSWORD,
            device: None,
            pending: None,
        };
        mfa.sign_in(login, &ClientInfo::default()).await
    }

    /// The token `login` concludes with, as a resource server sees it.
    pub async fn token(&self, mfa: &Mfa, login: Login) -> AuthContext {
        match mfa.conclude(login).await.unwrap() {
            Conclusion::Token { token, .. } => verifier(mfa).verify(&token.access_token).unwrap(),
            other => panic!("expected a token, got {other:?}"),
        }
    }
}

/// Builds the engine every harness runs.
fn build(
    stores: &Stores,
    keyring: Keyring,
    clock: &ManualClock,
    phone: &Phone,
    mailbox: &Mailbox,
    accounts: &Accounts,
) -> Mfa {
    Mfa::new(stores.clone(), keyring, LOOKUP_KEY)
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_accounts(accounts.clone())
        .with_mailer(Arc::new(mailbox.clone()))
        .with_issuer(JwtIssuer::hs256(JWT_SECRET).unwrap())
        // Races queue many backup-code hashes on few cores: waiting is fine, a 503 is not.
        .with_kdf_pool(KdfPool::new(2, Duration::from_secs(600)))
        .with_factor(Totp::default())
        .with_factor(Sms::new(SmsProvider::sender(phone.clone())))
        .with_factor(Email::shared(Arc::new(mailbox.clone())))
        .with_factor(Webauthn::new(RelyingParty::new(RP_ID, ORIGIN).unwrap()))
}

/// `mfa` with limits out of reach (per user, per address, the factor lock).
pub fn unlimited(mfa: &Mfa) -> Mfa {
    mfa.clone()
        .with_attempt_policy(AttemptPolicy {
            max_failures: 1_000_000,
            lock_after: 1_000_000,
            ..AttemptPolicy::default()
        })
        .with_address_policy(AddressPolicy {
            max_failures: 1_000_000,
            ..AddressPolicy::default()
        })
}

/// `mfa` with the per-user and per-address limits out of reach, the 100-failure lock kept.
pub fn lockable(mfa: &Mfa) -> Mfa {
    mfa.clone()
        .with_attempt_policy(AttemptPolicy {
            max_failures: 1_000_000,
            lock_after: 100,
            ..AttemptPolicy::default()
        })
        .with_address_policy(AddressPolicy {
            max_failures: 1_000_000,
            ..AddressPolicy::default()
        })
}

/// A verifier of the tokens `mfa` issues.
pub fn verifier(mfa: &Mfa) -> JwtVerifier {
    mfa.issuer().unwrap().verifier().build().unwrap()
}

/// The key an authenticator app makes of an enrollment's answer.
pub fn totp_key(answer: &Value) -> TotpKey {
    let secret = totp_rs::Secret::try_from_base32(answer["secret"].as_str().unwrap()).unwrap();
    TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap()
}

/// A well-formed code that no step accepted at `now` (within the skew) produces.
pub fn wrong_code(key: &TotpKey, now: u64) -> String {
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

/// Starts an MFA step for `user` after a password.
pub async fn mfa_token(mfa: &Mfa, user: &str) -> String {
    mfa.start_challenge(user, &["pwd"], None)
        .await
        .unwrap()
        .mfa_token
}

/// A whole MFA step of `user`: started after a password, finished with `proof` of `kind`.
pub async fn login(
    mfa: &Mfa,
    user: &str,
    kind: &str,
    proof: Value,
) -> Result<CompletedChallenge, MfaError> {
    let challenge = mfa.start_challenge(user, &["pwd"], None).await?;
    mfa.finish_challenge(&challenge.mfa_token, kind, &proof, &ClientInfo::default())
        .await
}

/// A whole MFA step of `user` with the TOTP code `code`.
pub async fn totp_login(mfa: &Mfa, user: &str, code: &str) -> Result<CompletedChallenge, MfaError> {
    login(mfa, user, "totp", json!({ "code": code })).await
}

/// A whole MFA step of `user` with the backup code `code`: the codes left.
pub async fn backup_login(mfa: &Mfa, user: &str, code: &str) -> Result<u64, MfaError> {
    let done = login(mfa, user, "backup_code", json!({ "code": code })).await?;
    Ok(done.answer["remaining_codes"].as_u64().unwrap())
}

/// The detail of `user`'s stored audit events of `kind`.
pub async fn events(mfa: &Mfa, user: &str, kind: &str) -> Vec<Value> {
    mfa.audit()
        .events(user, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|event| event.kind == kind)
        .map(|event| serde_json::from_str(&event.detail).unwrap())
        .collect()
}

/// The kinds of `user`'s stored audit events, oldest first.
pub async fn event_kinds(mfa: &Mfa, user: &str) -> Vec<String> {
    mfa.audit()
        .events(user, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.kind)
        .collect()
}

/// The user's stored credentials of `kind`, any generation and status.
pub async fn stored_credentials(
    factors: &dyn FactorStore,
    user: &str,
    kind: &str,
) -> Vec<Credential> {
    factors
        .credentials(user)
        .await
        .unwrap()
        .into_iter()
        .filter(|credential| credential.kind == kind)
        .collect()
}

/// Asserts `result` is the refusal with `code` and `status`.
#[track_caller]
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, MfaError>, status: u16, code: &str) {
    match result {
        Err(error) => {
            assert_eq!(
                (error.status().as_u16(), error.code()),
                (status, code),
                "{error:?}"
            );
        }
        Ok(value) => panic!("expected {status} {code}, got {value:?}"),
    }
}

/// How long a `429` says to wait.
#[track_caller]
pub fn retry_after<T: std::fmt::Debug>(result: Result<T, MfaError>) -> Duration {
    match result {
        Err(MfaError::RateLimited(limited)) => limited.retry_after,
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

/// The kind a `FactorLocked` refusal names.
#[track_caller]
pub fn locked_kind<T: std::fmt::Debug>(result: Result<T, MfaError>) -> String {
    match result {
        Err(MfaError::FactorLocked(locked)) => locked.kind,
        other => panic!("expected FactorLocked, got {other:?}"),
    }
}

// ---- WebAuthn plumbing -------------------------------------------------------------------------

/// The relying party's origin.
pub fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

/// What an authenticator gets from an enrollment's answer.
pub fn creation_options(answer: &Value) -> CreationChallengeResponse {
    serde_json::from_value(json!({ "publicKey": answer["publicKey"] })).unwrap()
}

/// What an authenticator gets from a prepared challenge.
pub fn request_options(answer: &Value) -> RequestChallengeResponse {
    serde_json::from_value(json!({ "publicKey": answer["publicKey"] })).unwrap()
}

/// What a discoverable authenticator does on its own (the soft ones only answer allow-listed
/// credentials): pick its credential `credential_id`.
pub fn as_discoverable(answer: &Value, credential_id: &str) -> RequestChallengeResponse {
    let mut public_key = answer["publicKey"].clone();
    public_key["allowCredentials"] = json!([{ "type": "public-key", "id": credential_id }]);
    serde_json::from_value(json!({ "publicKey": public_key })).unwrap()
}

/// The assertion with the user handle a discoverable authenticator returns.
pub fn with_user_handle(credential: &PublicKeyCredential, handle: &Value) -> Value {
    let mut credential = serde_json::to_value(credential).unwrap();
    credential["response"]["userHandle"] = handle.clone();
    credential
}

// ---- The backend matrix ------------------------------------------------------------------------

/// Runs each `async fn scenario(h: Harness)` named on memory, SQLite and PostgreSQL:
/// `on_every_store!(a, b);`. The form `on_every_store!(redis: a);` runs the named scenarios on
/// PostgreSQL with the ephemeral state in Redis as well (name them in the plain form too). Each
/// backend is a module (`memory`, `sqlite`, `postgres`, `postgres_and_redis`) of `#[tokio::test]`s
/// on a multi-threaded runtime, so races are real.
#[allow(unused_macros)]
macro_rules! on_every_store {
    (redis: $($scenario:ident),* $(,)?) => {
        mod postgres_and_redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some((harness, pg)) = crate::support::Harness::postgres_and_redis().await
                    else {
                        return;
                    };
                    super::$scenario(harness).await;
                    pg.finish().await;
                }
            )*
        }
    };
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario(crate::support::Harness::memory().await).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    super::$scenario(crate::support::Harness::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $scenario() {
                    let Some((harness, pg)) = crate::support::Harness::postgres().await else {
                        return;
                    };
                    super::$scenario(harness).await;
                    pg.finish().await;
                }
            )*
        }
    };
}
