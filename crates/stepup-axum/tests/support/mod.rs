//! The application the HTTP tests drive: a minimal one, as a library user writes it.
//!
//! - its accounts in memory ([`Users`]: argon2id or plain password hashes, mail addresses), its
//!   own routes (`GET /api/me`, `DELETE /api/account` behind a fresh second factor,
//!   `GET /api/vault` behind a fresh phishing-resistant login, an admin reset behind `phr` and a
//!   list of admins), every one behind `stepup.reject_revoked()`;
//! - a [`StepUp`] with TOTP, WebAuthn (relying party `localhost`, origin
//!   `http://localhost:3000`), SMS through an in-memory [`SmsOutbox`], email codes and recovery
//!   mail through one [`MemoryOutbox`], one OAuth client, and the test's [`ManualClock`];
//! - served on `127.0.0.1:0` with the peer address.
//!
//! A [`Backend`] is what the instances of one deployment share (the stores, the accounts, the
//! outboxes, the clock): SQLite in a temporary file, PostgreSQL in a schema of the test's own,
//! or PostgreSQL with the ephemeral state in Redis. [`on_backends!`] runs a scenario on several.
//! Without `DATABASE_URL` (or `REDIS_URL`) a PostgreSQL (or Redis) test prints why and passes,
//! except under `CI=true`, where it fails.
//!
//! This file is the application; beside it: `users.rs` (the accounts), `outboxes.rs`,
//! `backend.rs` (with `on_backends!`), `oauth.rs` (PKCE and the token exchange) and
//! `passkeys.rs`. A JSON answer as the tests read it is `stepup_test_env::Answer`.
#![allow(dead_code, unreachable_pub, unused_macros, unused_imports)]

mod backend;
mod oauth;
mod outboxes;
pub mod passkeys;
mod users;

pub(crate) use backend::on_backends;
pub use backend::*;
pub use oauth::*;
pub use outboxes::*;
pub use stepup_test_env::{Answer, code_in, recovery_code_in};
pub use users::*;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::State;
use axum::http::StatusCode as AxumStatus;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use stepup_axum::{ApiError, OAuthClient, PasswordCheck, PasswordCheckFailed, StepUp};
use stepup_core::AuthContext;
use stepup_core::clock::{Clock, ManualClock, SharedClock};
use stepup_core::token::{Grant, JwtIssuer};
use stepup_mail::{Mail, MemoryOutbox};
use stepup_mfa::email::Email;
use stepup_mfa::factor::async_trait;
use stepup_mfa::sms::{Sms, SmsError, SmsProvider, SmsSender};
use stepup_mfa::totp::{Totp, TotpAlgorithm, TotpConfig, TotpKey};
use stepup_mfa::webauthn::{RelyingParty, Webauthn};
use stepup_mfa::{AttemptPolicy, KdfPool, Keyring, Stores};
use stepup_store_postgres::PostgresStore;
use stepup_store_redis::RedisStore;
use stepup_store_sqlite::SqliteStore;
use stepup_tower::{RequireAcr, RequireMfa, TrustedProxies};

/// The fixed "now" every test starts at: 2027-01-15T08:00:00Z.
pub const T0: u64 = 1_800_000_000;
/// The one OAuth client and its redirect URI.
pub const CLIENT_ID: &str = "demo";
pub const REDIRECT_URI: &str = "http://localhost:3000/callback";
/// The resource (RFC 8707) the authorization server issues tokens for besides its own API.
pub const RESOURCE: &str = "https://mcp.example.com/";
/// The WebAuthn origin (its host is the `rp_id`) and the tokens' issuer and audience.
pub const PUBLIC_URL: &str = "http://localhost:3000";
/// Every account's password, unless a test says otherwise.
pub const PASSWORD: &str = "correct horse";
pub const JWT_SECRET: &[u8] = b"stepup-axum test secret, thirty-two bytes at least";
/// The phone number the SMS tests enroll, and how every answer shows it.
pub const PHONE: &str = "+15551236789";
pub const MASKED_PHONE: &str = "+1*****6789";
/// The challenge of the application's `RequireMfa.max_age(300 s)` route.
pub const CHALLENGE: &str = "Bearer error=\"insufficient_user_authentication\", \
     error_description=\"a stronger authentication level is required\", \
     acr_values=\"mfa\", max_age=300";
/// How fresh the second factor must be for account deletion, and the login for the vault.
pub const FRESH: Duration = Duration::from_secs(300);

/// Wraps an instance's stores (a test's instrumentation).
pub type WrapStores = Arc<dyn Fn(Stores) -> Stores + Send + Sync>;

/// How an instance is configured beyond the defaults.
#[derive(Clone)]
pub struct Options {
    /// The WebAuthn origin; its host is the `rp_id`.
    pub public_url: String,
    /// The reverse proxies whose `X-Forwarded-For` is believed (none by default: the test's
    /// loopback peer is the client).
    pub trusted_proxies: Vec<&'static str>,
    pub recovery_delay: Option<Duration>,
    pub attempts: Option<AttemptPolicy>,
    /// Whether SMS or email may be a user's only factor (the library's default: yes).
    pub restricted_alone: bool,
    pub request_ceiling: Option<(u64, Duration)>,
    /// The prefix IPv6 clients are grouped by (the library's default: 64).
    pub ipv6_prefix: Option<u8>,
    /// The user ids the admin reset route lets in (behind a fresh `phr` login).
    pub admins: Vec<String>,
    /// Wraps the stores before the engine gets them.
    pub wrap_stores: Option<WrapStores>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            public_url: PUBLIC_URL.to_owned(),
            trusted_proxies: Vec::new(),
            recovery_delay: None,
            attempts: None,
            restricted_alone: true,
            request_ceiling: None,
            ipv6_prefix: None,
            admins: Vec::new(),
            wrap_stores: None,
        }
    }
}

/// The state of the application's own routes.
#[derive(Clone)]
struct Own {
    stepup: StepUp,
    users: Users,
    admins: Arc<Vec<String>>,
}

/// One running instance, and the test's HTTP client for it.
pub struct App {
    pub base: String,
    pub http: Client,
    pub stepup: StepUp,
    /// The stores under the engine, for checks of what is really kept.
    pub stores: Stores,
    pub clock: ManualClock,
    pub users: Users,
    pub sms: SmsOutbox,
    pub mail: MemoryOutbox,
    /// The WebAuthn origin authenticators are told they are on.
    pub origin: url::Url,
    pub dir: Arc<tempfile::TempDir>,
}

/// A fresh SQLite backend and one instance on it, for the tests that run on SQLite alone.
pub async fn sqlite_app() -> App {
    sqlite_app_with(Options::default()).await
}

/// [`sqlite_app`] with `options`.
pub async fn sqlite_app_with(options: Options) -> App {
    let backend = Backend::sqlite().await.unwrap();
    backend.app_with(options).await
}

/// The application's token issuer: stepup's own tokens, and the tests' minted ones.
pub fn issuer() -> JwtIssuer {
    JwtIssuer::hs256(JWT_SECRET)
        .unwrap()
        .with_issuer(PUBLIC_URL)
        .with_audience(PUBLIC_URL)
}

/// The StepUp a library user builds: the four factors, recovery mail, one client.
pub async fn build_stepup(backend: &Backend, options: &Options) -> (StepUp, Stores) {
    let clock: SharedClock = Arc::new(backend.clock.clone());
    let host = url::Url::parse(&options.public_url)
        .unwrap()
        .host_str()
        .unwrap()
        .to_owned();
    let relying_party = RelyingParty::new(&host, &options.public_url).unwrap();
    let mailer: Arc<dyn stepup_mail::Mailer> = Arc::new(backend.mail.clone());
    let mut stores = backend.stores().await;
    if let Some(wrap) = &options.wrap_stores {
        stores = wrap(stores);
    }
    let mut builder = StepUp::builder()
        .issuer(issuer())
        .stores(stores.clone())
        .keyring(Keyring::new("test", &[3; 32]).unwrap())
        .lookup_key(&[4; 32])
        .passwords(backend.users.clone())
        .kdf_pool(backend.users.kdf.clone())
        .factor(Totp::new(TotpConfig {
            issuer: "stepup-axum tests".into(),
            ..TotpConfig::default()
        }))
        .factor(Webauthn::new(relying_party))
        .factor(Sms::new(SmsProvider::sender(backend.sms.clone())))
        .factor(Email::shared(mailer.clone()))
        .shared_mailer(mailer)
        .client(OAuthClient::new(CLIENT_ID).with_redirect_uri(REDIRECT_URI))
        // The authorization server: dynamic registration, one resource, one scope.
        .dynamic_registration(stepup_mfa::RegistrationPolicy::default())
        .resource(RESOURCE)
        .scope("tools")
        .clock(clock)
        .restricted_factor_alone(options.restricted_alone)
        .trusted_proxies(TrustedProxies::parse(&options.trusted_proxies).unwrap());
    if let Some(delay) = options.recovery_delay {
        builder = builder.recovery_delay(delay);
    }
    if let Some(attempts) = options.attempts {
        builder = builder.attempt_policy(attempts);
    }
    if let Some(bits) = options.ipv6_prefix {
        builder = builder.ipv6_prefix(bits);
    }
    if let Some((max, window)) = options.request_ceiling {
        builder = builder.request_ceiling(max, window);
    }
    (builder.build().unwrap(), stores)
}

/// The application's router: its own routes, stepup's drop-in routes, JSON fallbacks.
pub fn router(stepup: &StepUp, users: &Users, admins: Vec<String>) -> Router {
    let own = Own {
        stepup: stepup.clone(),
        users: users.clone(),
        admins: Arc::new(admins),
    };
    let application = Router::new()
        .route("/api/me", get(me))
        .route(
            "/api/account",
            delete(delete_account).layer(RequireMfa.max_age(FRESH)),
        )
        // Only a phishing-resistant login (a passkey) of the last 5 minutes opens it.
        .route(
            "/api/vault",
            get(vault).layer(RequireAcr::level("phr").max_age(FRESH)),
        )
        .with_state(own.clone())
        // The application's own routes refuse tokens of reset or deleted users too (stepup's
        // own routes always do).
        .route_layer(stepup.reject_revoked());
    let admin = Router::new()
        .route(
            "/api/admin/users/{user}/mfa/reset",
            post(stepup_axum::admin_reset)
                .layer::<_, Infallible>(axum::middleware::from_fn_with_state(own, only_admins))
                .layer(RequireAcr::level("phr").max_age(FRESH)),
        )
        .with_state(stepup.clone());
    Router::new()
        .merge(application)
        .merge(stepup.routes())
        .merge(admin)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                AxumStatus::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(stepup.authenticate())
}

async fn me(caller: AuthContext) -> Response {
    Json(json!({
        "sub": caller.subject(),
        "acr": caller.acr(),
        "amr": caller.amr(),
        "auth_time": caller.auth_time(),
    }))
    .into_response()
}

/// Account deletion: stepup forgets the user (every token void), then the application does.
async fn delete_account(State(own): State<Own>, caller: AuthContext) -> Result<Response, ApiError> {
    own.stepup.mfa().delete_user(caller.subject()).await?;
    if !own.users.remove(caller.subject()) {
        return Err(ApiError::not_found("no such account"));
    }
    Ok(Json(json!({ "success": true })).into_response())
}

async fn vault(caller: AuthContext) -> Response {
    Json(json!({
        "secret": format!("the vault of {} opens only to a passkey", caller.subject()),
    }))
    .into_response()
}

/// The application's admin policy: a user on its list (after `RequireAcr`).
async fn only_admins(
    State(own): State<Own>,
    caller: Option<AuthContext>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match caller {
        Some(caller) if own.admins.iter().any(|admin| admin == caller.subject()) => {
            next.run(request).await
        }
        _ => {
            ApiError::new(AxumStatus::FORBIDDEN, "forbidden", "administrators only").into_response()
        }
    }
}

/// Serves `router` on a fresh loopback port, with the peer address; returns its base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
    base
}

/// The test's HTTP client: redirects are part of the contract under test, never followed.
pub fn http_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl App {
    async fn start(backend: &Backend, options: Options) -> Self {
        let (stepup, stores) = build_stepup(backend, &options).await;
        let router = router(&stepup, &backend.users, options.admins.clone());
        Self {
            base: serve(router).await,
            http: http_client(),
            stepup,
            stores,
            clock: backend.clock.clone(),
            users: backend.users.clone(),
            sms: backend.sms.clone(),
            mail: backend.mail.clone(),
            origin: url::Url::parse(&options.public_url).unwrap(),
            dir: backend.dir.clone(),
        }
    }

    /// A token signed with the application's key, as stepup would mint it.
    pub fn mint(&self, grant: &Grant) -> String {
        issuer()
            .with_clock(Arc::new(self.clock.clone()))
            .issue(grant)
            .unwrap()
            .access_token
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        Answer::read(self.request(Method::POST, path, token).json(&body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        Answer::read(self.request(Method::PATCH, path, token).json(&body)).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        Answer::read(self.request(Method::GET, path, token)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        Answer::read(self.request(Method::DELETE, path, token)).await
    }

    /// Adds the account `email` (password [`PASSWORD`], kept plain); returns its id.
    pub async fn register(&self, email: &str) -> String {
        self.users.add(email, PASSWORD, Hashing::Plain)
    }

    /// Adds the account `email` with an argon2id hash of [`PASSWORD`]; returns its id.
    pub async fn register_argon2(&self, email: &str) -> String {
        self.users.add(email, PASSWORD, Hashing::Argon2)
    }

    /// A password login of `email`.
    pub async fn login(&self, email: &str) -> Answer {
        self.post(
            "/oauth/authorize",
            None,
            json!({"username": email, "password": PASSWORD}),
        )
        .await
    }

    /// A password login of `email` presenting the device `cookie` (`name=value`).
    pub async fn login_with_cookie(&self, email: &str, cookie: &str) -> Answer {
        Answer::read(
            self.request(Method::POST, "/oauth/authorize", None)
                .header("cookie", cookie)
                .json(&json!({"username": email, "password": PASSWORD})),
        )
        .await
    }

    /// Adds `email`, logs in and enrolls an authenticator app through the earlier paths
    /// (`/api/mfa/setup`, `/api/mfa/verify-setup`); returns the password token, the key and the
    /// backup codes. The clock ends on a fresh time step.
    pub async fn enrolled_user(&self, email: &str) -> (String, TotpKey, Vec<String>) {
        self.register(email).await;
        let token = self.login(email).await.token();
        let (key, codes) = self.enroll_totp(&token).await;
        (token, key, codes)
    }

    /// Enrolls an authenticator app for the holder of `token`; returns the key and the backup
    /// codes. The clock ends on a fresh time step.
    pub async fn enroll_totp(&self, token: &str) -> (TotpKey, Vec<String>) {
        let setup = self.post("/api/mfa/setup", Some(token), json!({})).await;
        assert_eq!(setup.status, StatusCode::OK, "{setup:?}");
        let key = key_from(&setup.body);
        let verified = self
            .post(
                "/api/mfa/verify-setup",
                Some(token),
                json!({"code": self.code(&key)}),
            )
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{verified:?}");
        let codes = strings(&verified.body["backup_codes"]);
        self.clock.advance(Duration::from_secs(30));
        (key, codes)
    }

    /// The authenticator's code now.
    pub fn code(&self, key: &TotpKey) -> String {
        key.code_at(self.clock.unix_seconds())
    }

    /// Logs in with the password; returns the `mfa_token` of the second step.
    pub async fn mfa_token(&self, email: &str) -> String {
        let login = self.login(email).await;
        assert_eq!(login.body["mfa_required"], true, "{login:?}");
        login.body["mfa_token"].as_str().unwrap().to_owned()
    }

    /// `POST /oauth/authorize/mfa` with `mfa_token` and the fields of `proof`.
    pub async fn mfa_step(&self, mfa_token: &str, mut proof: Value) -> Answer {
        proof["mfa_token"] = json!(mfa_token);
        self.post("/oauth/authorize/mfa", None, proof).await
    }

    /// The second step with the authenticator's current code.
    pub async fn mfa_step_with_code(&self, mfa_token: &str, key: &TotpKey) -> Answer {
        self.mfa_step(mfa_token, json!({"code": self.code(key)}))
            .await
    }

    /// A token of a second factor verified now (password, then the app's code); the clock ends
    /// on a fresh time step.
    pub async fn fresh_mfa_token(&self, email: &str, key: &TotpKey) -> String {
        let mfa_token = self.mfa_token(email).await;
        let token = self.mfa_step_with_code(&mfa_token, key).await.token();
        self.clock.advance(Duration::from_secs(30));
        token
    }

    /// The MFA step of `mfa_token` with `proof` and `remember_device`; returns the answer and
    /// the `name=value` of the device cookie it set.
    pub async fn remembered_step(&self, mfa_token: &str, mut proof: Value) -> (Answer, String) {
        proof["mfa_token"] = json!(mfa_token);
        proof["remember_device"] = json!(true);
        let response = self
            .request(Method::POST, "/oauth/authorize/mfa", None)
            .json(&proof)
            .send()
            .await
            .unwrap();
        let cookie = response
            .headers()
            .get("set-cookie")
            .map(|value| cookie_pair(value.to_str().unwrap()))
            .expect("a remembered device gets its cookie");
        (Answer::from_response(response).await, cookie)
    }

    /// The SMS texts so far.
    pub fn texts(&self) -> Vec<Text> {
        self.sms.texts()
    }

    /// The code of the last SMS.
    pub fn last_sms_code(&self) -> String {
        self.sms.last_code()
    }

    /// Every mail so far, oldest first.
    pub fn mails(&self) -> Vec<Mail> {
        self.mail.mails()
    }

    /// The first mail after the first `skip` whose subject is `subject`. Mails leave in the
    /// background: this waits for the task sending it (at most 10 s of real time).
    pub async fn mail_with_subject(&self, skip: usize, subject: &str) -> Mail {
        wait_for_mail(&self.mail, skip, |mail| mail.subject == subject).await
    }

    /// The mails once there are at least `count` (waiting for the background sends).
    pub async fn mails_at_least(&self, count: usize) -> Vec<Mail> {
        for _ in 0..1000 {
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the outbox never held {count} mails: {:?}", self.mails());
    }

    /// The code of the last mail whose subject starts with "Your verification code", after the
    /// first `skip` mails (waiting for it).
    pub async fn mailed_code(&self, skip: usize) -> String {
        let mail = wait_for_mail(&self.mail, skip, |mail| {
            mail.subject.starts_with("Your verification code")
        })
        .await;
        code_in(&mail.body)
    }

    /// The user id behind `token`.
    pub async fn subject(&self, token: &str) -> String {
        let me = self.get("/api/me", Some(token)).await;
        assert_eq!(me.status, StatusCode::OK, "{me:?}");
        me.body["sub"].as_str().unwrap().to_owned()
    }

    /// The kinds of the caller's audit events, oldest first.
    pub async fn event_kinds(&self, token: &str) -> Vec<String> {
        let events = self.get("/api/mfa/events", Some(token)).await;
        assert_eq!(events.status, StatusCode::OK, "{events:?}");
        events.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["kind"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// The first mail of `outbox` after the first `skip` that `wanted` picks, waiting for the
/// background sends (at most 10 s of real time; no clock is involved).
pub async fn wait_for_mail(
    outbox: &MemoryOutbox,
    skip: usize,
    wanted: impl Fn(&Mail) -> bool,
) -> Mail {
    for _ in 0..1000 {
        if let Some(mail) = outbox.mails().into_iter().skip(skip).find(&wanted) {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no such mail among {:?}", outbox.mails());
}

/// The authenticator of a `/api/mfa/setup` (or `POST /api/mfa/factors/totp`) answer.
pub fn key_from(setup: &Value) -> TotpKey {
    let secret = totp_rs::Secret::try_from_base32(setup["secret"].as_str().unwrap()).unwrap();
    TotpKey::new(secret.as_bytes(), TotpAlgorithm::Sha1, 6, 30, 1, "t", "u").unwrap()
}

/// A JSON array of strings.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {value}"))
        .iter()
        .map(|item| item.as_str().unwrap().to_owned())
        .collect()
}

/// The `name=value` part of a `Set-Cookie` header, as a browser sends it back.
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The claims of a token (unverified: the test reads what it was given).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
