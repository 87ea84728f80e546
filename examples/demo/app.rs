//! The demo application: its own users table and handlers, plus stepup's drop-in routes. Shared by
//! `main.rs` and the end-to-end tests.

use std::time::Duration;

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use stepup::{
    ApiError, AuthContext, JsonBody, JwtIssuer, Keyring, OAuthClient, PasswordCheck,
    PasswordCheckFailed, RequireAcr, RequireMfa, SharedClock, StepUp, TotpConfig,
};

// Beside this file; the paths also hold when the tests include this module.
#[path = "admin.rs"]
mod admin;
#[path = "delivery.rs"]
mod delivery;
#[path = "users.rs"]
mod users;
pub(crate) use admin::Admins;
use delivery::demo_mailer;
pub(crate) use delivery::{SmsOutbox, default_mail_outbox, default_sms_outbox};
use users::UserTable;
#[path = "web.rs"]
pub(crate) mod web;

/// How recent the second factor must be to delete an account.
pub(crate) const DELETE_ACCOUNT_MAX_AGE: Duration = Duration::from_secs(300);
/// Registrations allowed per client address per hour.
pub(crate) const REGISTRATIONS_PER_HOUR: u64 = 10;
/// `iss` and `aud` of the demo's tokens.
pub(crate) const TOKEN_ISSUER: &str = "stepup-demo";

/// The keys the demo runs with.
pub(crate) struct Secrets {
    pub(crate) jwt_secret: Vec<u8>,
    pub(crate) seal_key_id: String,
    pub(crate) seal_key: Vec<u8>,
    pub(crate) lookup_key: Vec<u8>,
}

/// Makes the SQLite file and its WAL files readable by their owner only (`0600`): they hold the
/// sealed secrets and every hash.
fn restrict_to_owner(url: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        for suffix in ["", "-wal", "-shm"] {
            let file = format!("{path}{suffix}");
            if std::path::Path::new(&file).exists()
                && let Err(error) =
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(%error, file, "could not restrict the database file to its owner");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = url;
}

/// The demo's one OAuth client (`demo`, redirecting to `http://localhost:3000/callback`).
pub(crate) fn demo_client(client_id: &str, redirect_uri: &str) -> OAuthClient {
    OAuthClient::new(client_id).with_redirect_uri(redirect_uri)
}

/// The database the demo runs on: stepup's store and the demo's own users table in it.
#[derive(Clone)]
pub(crate) enum Database {
    /// One SQLite file (the default).
    Sqlite(stepup::SqliteStore),
    /// A PostgreSQL database shared by every instance.
    Postgres(stepup_store_postgres::PostgresStore),
}

impl Database {
    /// Opens `url`: `postgres://…` or `postgresql://…` for PostgreSQL, anything else SQLite.
    pub(crate) async fn open(url: &str, clock: SharedClock) -> Result<Self, stepup::StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = stepup_store_postgres::PostgresStore::open_with_clock(url, clock).await?;
            Ok(Self::Postgres(store))
        } else {
            let store = stepup::SqliteStore::open_with_clock(url, clock).await?;
            restrict_to_owner(url);
            Ok(Self::Sqlite(store))
        }
    }
}

/// Where the demo is reached when `STEPUP_PUBLIC_URL` is not set: the WebAuthn origin, whose
/// host is the `rp_id`.
#[allow(dead_code)] // `main.rs` derives its default from `STEPUP_ADDR`; the tests use this one.
pub(crate) const DEFAULT_PUBLIC_URL: &str = "http://localhost:3000";
/// How recent a phishing-resistant login must be to open the vault.
pub(crate) const VAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// The whole demo over an opened store, reached at [`DEFAULT_PUBLIC_URL`].
#[allow(dead_code)] // The tests' entry; `main.rs` calls `router_at`.
pub(crate) async fn router(
    database: impl Into<Backends>,
    secrets: &Secrets,
    client: OAuthClient,
    clock: SharedClock,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    router_at(database, secrets, client, clock, DEFAULT_PUBLIC_URL).await
}

/// The WebAuthn relying party of a demo reached at `public_url`: that one origin, its host the
/// `rp_id` (browsers refuse IP-address origins: open the demo at `localhost`).
pub(crate) fn relying_party(
    public_url: &str,
) -> Result<stepup::mfa::RelyingParty, Box<dyn std::error::Error + Send + Sync>> {
    let url = url::Url::parse(public_url)
        .map_err(|error| format!("STEPUP_PUBLIC_URL is not a URL: {error}"))?;
    let host = url
        .host_str()
        .ok_or("STEPUP_PUBLIC_URL has no host")?
        .to_owned();
    Ok(stepup::mfa::RelyingParty::new(&host, public_url)
        .map_err(|error| format!("STEPUP_PUBLIC_URL cannot be a WebAuthn origin: {error}"))?)
}

/// Where the demo keeps its state: the database, and optionally Redis for the ephemeral state
/// (challenges, `mfa_token`s, authorization codes, counters) of several instances.
pub(crate) struct Backends {
    pub(crate) database: Database,
    pub(crate) redis: Option<stepup_store_redis::RedisStore>,
    /// Where the SMS and mail outboxes go when their variables are unset (default: beside the
    /// SQLite file, or the working directory for PostgreSQL).
    pub(crate) outbox_dir: Option<std::path::PathBuf>,
}

impl From<Database> for Backends {
    fn from(database: Database) -> Self {
        Self {
            database,
            redis: None,
            outbox_dir: None,
        }
    }
}

/// The stores of one durable backend, with its ephemeral state in Redis when given.
fn stores_of<S: stepup::Store + Clone>(
    store: S,
    redis: Option<stepup_store_redis::RedisStore>,
) -> stepup::Stores {
    let mut stores = stepup::Stores::shared(store);
    if let Some(redis) = redis {
        stores.ephemeral = std::sync::Arc::new(redis);
    }
    stores
}

/// The whole demo over opened stores, reached at `public_url` (the WebAuthn origin).
#[allow(dead_code)] // `main.rs` calls `router_with_sms`.
pub(crate) async fn router_at(
    backends: impl Into<Backends>,
    secrets: &Secrets,
    client: OAuthClient,
    clock: SharedClock,
    public_url: &str,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    router_with_sms(backends, secrets, client, clock, public_url, None).await
}

/// The whole demo over opened stores, reached at `public_url` (the WebAuthn origin), its SMS
/// delivered by `sms` (`None`: appended to the outbox file beside the database,
/// `<database>.sms.jsonl`), its administrators those of `STEPUP_ADMINS`.
pub(crate) async fn router_with_sms(
    backends: impl Into<Backends>,
    secrets: &Secrets,
    client: OAuthClient,
    clock: SharedClock,
    public_url: &str,
    sms: Option<stepup::mfa::SmsProvider>,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let admins = Admins::from_env();
    router_with_admins(backends, secrets, client, clock, public_url, sms, admins).await
}

/// [`router_with_sms`] with the given administrators.
pub(crate) async fn router_with_admins(
    backends: impl Into<Backends>,
    secrets: &Secrets,
    client: OAuthClient,
    clock: SharedClock,
    public_url: &str,
    sms: Option<stepup::mfa::SmsProvider>,
    admins: Admins,
) -> Result<Router, Box<dyn std::error::Error + Send + Sync>> {
    let Backends {
        database,
        redis,
        outbox_dir,
    } = backends.into();
    let (sms_outbox, mail_outbox) = match &outbox_dir {
        Some(dir) => (dir.join("demo.sms.jsonl"), dir.join("demo.mail.jsonl")),
        None => (
            default_sms_outbox(&database),
            default_mail_outbox(&database),
        ),
    };
    let mut outboxes = web::Outboxes::default();
    let sms = sms.unwrap_or_else(|| {
        outboxes.sms = Some(sms_outbox.clone());
        stepup::mfa::SmsProvider::sender(SmsOutbox::new(sms_outbox, clock.clone()))
    });
    let (mailer, mail_outbox) = demo_mailer(mail_outbox, clock.clone())?;
    outboxes.mail = mail_outbox;
    // The page's development panel shows the outboxes; `STEPUP_DEV_PANEL=off` hides them.
    let outboxes = outboxes.unless_turned_off(std::env::var("STEPUP_DEV_PANEL").ok().as_deref());
    let (table, builder) = match database {
        Database::Sqlite(store) => (
            UserTable::Sqlite(store.pool().clone()),
            StepUp::builder().stores(stores_of(store, redis.clone())),
        ),
        Database::Postgres(store) => (
            UserTable::Postgres(store.pool().clone()),
            StepUp::builder().stores(stores_of(store, redis.clone())),
        ),
    };
    table.create().await?;
    let kdf = stepup::KdfPool::default();
    let users = Users {
        table,
        kdf: kdf.clone(),
        dummy_hash: kdf.hash(b"a password nobody has").await?,
    };
    let stepup = builder
        .issuer(
            JwtIssuer::hs256(&secrets.jwt_secret)?
                .with_issuer(TOKEN_ISSUER)
                .with_audience(TOKEN_ISSUER),
        )
        .keyring(Keyring::new(&secrets.seal_key_id, &secrets.seal_key)?)
        .lookup_key(&secrets.lookup_key)
        .passwords(users.clone())
        .client(client)
        .totp(TotpConfig {
            issuer: "stepup demo".into(),
            ..TotpConfig::default()
        })
        .clock(clock)
        .kdf_pool(kdf)
        .trusted_proxies(trusted_proxies_from_env()?)
        .relying_party(relying_party(public_url)?)
        .mailer(mailer)
        .sms(sms)
        .build()?;
    let demo = Demo {
        users,
        stepup: stepup.clone(),
        redis,
    };
    // Each registration costs one argon2id: at most 10 per address per hour.
    let registrations =
        stepup::RateLimitLayer::new(stepup.mfa().stores().ephemeral.clone(), "register")
            .with_limit(REGISTRATIONS_PER_HOUR, Duration::from_secs(60 * 60));
    let register_route = post(register)
        .layer::<_, std::convert::Infallible>(registrations)
        .layer::<_, std::convert::Infallible>(stepup::ResolveClientAddrLayer::new(
            stepup.trusted_proxies().clone(),
        ))
        .layer(axum::middleware::map_request(
            stepup::peer_from_connect_info,
        ));
    let app = Router::new()
        .route("/api/register", register_route)
        .route("/api/me", get(me))
        .route(
            "/api/account",
            delete(delete_account).layer(RequireMfa.max_age(DELETE_ACCOUNT_MAX_AGE)),
        )
        // Only a phishing-resistant login (a passkey) of the last 5 minutes opens it.
        .route(
            "/api/vault",
            get(vault).layer(RequireAcr::level("phr").max_age(VAULT_MAX_AGE)),
        )
        .route("/healthz", get(health))
        .route("/callback", get(callback))
        .with_state(demo)
        // The demo's own routes refuse tokens of deleted accounts too (stepup's always do).
        .route_layer(stepup::RejectRevokedLayer::new(
            stepup.mfa().stores().factors.clone(),
        ))
        .merge(stepup.routes())
        .merge(admin::routes(&stepup, admins))
        .merge(web::routes(outboxes))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(stepup.authenticate());
    Ok(web::with_security_headers(app))
}

#[derive(Clone)]
struct Demo {
    users: Users,
    stepup: StepUp,
    /// Pinged by `/healthz` too, when the ephemeral state lives there.
    redis: Option<stepup_store_redis::RedisStore>,
}

/// The application's users, in its own table of the same database. Passwords are the
/// application's business: stepup only asks [`PasswordCheck`].
#[derive(Clone)]
struct Users {
    table: UserTable,
    /// The slow-hash pool shared with stepup.
    kdf: stepup::KdfPool,
    /// Checked when the user is unknown, so that both answers take as long.
    dummy_hash: String,
}

#[stepup::store::async_trait]
impl PasswordCheck for Users {
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed> {
        let Ok(email) = normalise_email(username) else {
            return Ok(None);
        };
        let row = self
            .table
            .find(&email)
            .await
            .map_err(|_| PasswordCheckFailed)?;
        let hash = row
            .as_ref()
            .map_or_else(|| self.dummy_hash.clone(), |(_, hash)| hash.clone());
        let matches = self
            .kdf
            .verify(password.as_bytes(), &hash)
            .await
            .map_err(|_| PasswordCheckFailed)?;
        Ok(row.filter(|_| matches).map(|(id, _)| id))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed> {
        let email = self
            .table
            .email_of(user)
            .await
            .map_err(|_| PasswordCheckFailed)?;
        Ok(email.is_some())
    }

    async fn user_of(&self, username: &str) -> Result<Option<String>, PasswordCheckFailed> {
        let Ok(email) = normalise_email(username) else {
            return Ok(None);
        };
        let row = self
            .table
            .find(&email)
            .await
            .map_err(|_| PasswordCheckFailed)?;
        Ok(row.map(|(id, _)| id))
    }

    async fn email_of(&self, user: &str) -> Result<Option<String>, PasswordCheckFailed> {
        self.table
            .email_of(user)
            .await
            .map_err(|_| PasswordCheckFailed)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<String>, PasswordCheckFailed> {
        // A malformed address still costs the look-up: every answer takes alike.
        let email = normalise_email(email).unwrap_or_default();
        let row = self
            .table
            .find(&email)
            .await
            .map_err(|_| PasswordCheckFailed)?;
        Ok(row.map(|(id, _)| id))
    }

    async fn account_label(&self, user: &str) -> Option<String> {
        self.table.email_of(user).await.ok().flatten()
    }
}

#[derive(Deserialize)]
struct Registration {
    email: String,
    password: String,
}

async fn register(
    State(demo): State<Demo>,
    JsonBody(registration): JsonBody<Registration>,
) -> Result<Response, ApiError> {
    let email = normalise_email(&registration.email).map_err(ApiError::invalid_request)?;
    check_password(&registration.password).map_err(ApiError::invalid_request)?;
    // The same bounded pool as stepup's own hashing, in its slots' memory: a flood of
    // registrations waits, then gets 503, instead of holding 19 MiB per request.
    let password_hash = demo
        .users
        .kdf
        .hash(registration.password.as_bytes())
        .await
        .map_err(|error| match error {
            stepup::mfa::kdf::KdfError::Busy => unavailable(),
            _ => ApiError::server_error(),
        })?;
    let id = uuid::Uuid::new_v4().to_string();
    let inserted = demo
        .users
        .table
        .insert(&id, &email, &password_hash)
        .await
        .map_err(|_| unavailable())?;
    if !inserted {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "email_taken",
            "this email is already registered",
        ));
    }
    Ok((StatusCode::CREATED, Json(json!({ "user_id": id }))).into_response())
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

async fn delete_account(
    State(demo): State<Demo>,
    caller: AuthContext,
) -> Result<Response, ApiError> {
    // Factors first: should the second step fail, the account still exists and can retry.
    demo.stepup
        .mfa()
        .delete_user(caller.subject())
        .await
        .map_err(|_| unavailable())?;
    let deleted = demo
        .users
        .table
        .delete(caller.subject())
        .await
        .map_err(|_| unavailable())?;
    if !deleted {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such account",
        ));
    }
    Ok(Json(json!({ "success": true })).into_response())
}

async fn vault(caller: AuthContext) -> Response {
    Json(json!({
        "secret": format!("the vault of {} opens only to a passkey", caller.subject()),
    }))
    .into_response()
}

/// Where the demo client's authorization codes land: shows them, for the person trying the flow.
async fn callback(Query(params): Query<HashMap<String, String>>) -> Response {
    Json(json!({
        "code": params.get("code"),
        "state": params.get("state"),
        "next": "POST /oauth/token with grant_type=authorization_code, code, code_verifier, redirect_uri, client_id",
    }))
    .into_response()
}

async fn health(State(demo): State<Demo>) -> Result<Response, ApiError> {
    demo.stepup.mfa().ping().await.map_err(|_| unavailable())?;
    if let Some(redis) = &demo.redis {
        redis.ping().await.map_err(|_| unavailable())?;
    }
    Ok(Json(json!({ "status": "ok" })).into_response())
}

/// The reverse proxies in front of the demo, whose `X-Forwarded-For` names the client:
/// `STEPUP_TRUSTED_PROXIES`, comma-separated addresses or networks. Unset, none is trusted and
/// forwarding headers are ignored (the TCP peer is the client).
fn trusted_proxies_from_env()
-> Result<stepup::TrustedProxies, Box<dyn std::error::Error + Send + Sync>> {
    let list = std::env::var("STEPUP_TRUSTED_PROXIES").unwrap_or_default();
    let networks: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    Ok(stepup::TrustedProxies::parse(&networks)
        .map_err(|error| format!("STEPUP_TRUSTED_PROXIES: {error}"))?)
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the store is unavailable; try again shortly",
    )
}

fn normalise_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    let well_formed = (3..=254).contains(&email.len())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if well_formed {
        Ok(email)
    } else {
        Err("a valid email address is required")
    }
}

fn check_password(password: &str) -> Result<(), &'static str> {
    match password.chars().count() {
        0..8 => Err("the password needs at least 8 characters"),
        8..=256 => Ok(()),
        _ => Err("the password may have at most 256 characters"),
    }
}
