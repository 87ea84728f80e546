//! The demo application: its own users table and handlers, stepup with every factor, its
//! drop-in routes, and the page. `main.rs` builds it from the environment ([`build`]); the demo's
//! own tests (the page in Chromium, two processes, faults) build it from [`Settings`].

use std::time::Duration;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use stepup::clock::SharedClock;
use stepup::mfa::PasswordCheckFailed;
use stepup::mfa::email::Email;
use stepup::mfa::sms::{Region, Sms, SmsPolicy, SmsProvider, UnknownRegion};
use stepup::mfa::totp::{Totp, TotpConfig};
use stepup::mfa::webauthn::{RelyingParty, Webauthn};
use stepup::middleware::{Operation, OperationError};
use stepup::routes::{ApiError, JsonBody, OAuthClient};
use stepup::{
    AuthContext, JwtIssuer, Keyring, PasswordCheck, RequireAcr, RequireMfa, RequireTransaction,
    StepUp, Stores,
};

// Beside this file; the paths also hold when the tests include this module.
#[path = "admin.rs"]
mod admin;
#[path = "delivery.rs"]
mod delivery;
#[path = "openapi.rs"]
mod openapi;
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
/// How long the demo's sign-in sessions last.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

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
    pub(crate) async fn open(
        url: &str,
        clock: SharedClock,
    ) -> Result<Self, stepup::store::StoreError> {
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

/// Where browsers reach the demo by default: the WebAuthn origin, whose host is the `rp_id`.
pub(crate) const DEFAULT_PUBLIC_URL: &str = "http://localhost:3000";
/// How recent a phishing-resistant login must be to open the vault.
pub(crate) const VAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// The WebAuthn relying party of a demo reached at `public_url`: that one origin, its host the
/// `rp_id` (browsers refuse IP-address origins: open the demo at `localhost`).
pub(crate) fn relying_party(public_url: &str) -> Result<RelyingParty, BoxError> {
    let url = url::Url::parse(public_url)
        .map_err(|error| format!("STEPUP_PUBLIC_URL is not a URL: {error}"))?;
    let host = url
        .host_str()
        .ok_or("STEPUP_PUBLIC_URL has no host")?
        .to_owned();
    Ok(RelyingParty::new(&host, public_url)
        .map_err(|error| format!("STEPUP_PUBLIC_URL cannot be a WebAuthn origin: {error}"))?)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A comma-separated list of region codes (`GB, de`): the regions, or the first entry that is
/// not one (a calling code such as `44` is not). Empty entries are skipped.
pub(crate) fn parse_regions(list: &str) -> Result<Vec<Region>, UnknownRegion> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(str::parse)
        .collect()
}

/// Everything the demo is built from; `main.rs` reads it from the environment, the tests build
/// one directly.
pub(crate) struct Settings {
    /// stepup's store and the users table.
    pub(crate) database: Database,
    /// Redis for the ephemeral state (challenges, codes, counters) of several instances.
    pub(crate) redis: Option<stepup_store_redis::RedisStore>,
    /// The keys.
    pub(crate) secrets: Secrets,
    /// The registered OAuth client.
    pub(crate) client: OAuthClient,
    /// Where browsers reach the demo: the WebAuthn origin.
    pub(crate) public_url: String,
    /// SMS delivery; `None` for the outbox file.
    pub(crate) sms: Option<SmsProvider>,
    /// The regions whose numbers may enroll for SMS; `None`: every region.
    pub(crate) sms_regions: Option<Vec<Region>>,
    /// Where the outboxes go (`None`: beside the SQLite file, or the working directory).
    pub(crate) outbox_dir: Option<std::path::PathBuf>,
    /// Who may reset another user's factors.
    pub(crate) admins: Admins,
    /// The reverse proxies believed for client addresses.
    pub(crate) trusted_proxies: stepup::middleware::TrustedProxies,
    /// Whether the page shows the development outboxes.
    pub(crate) dev_panel: bool,
    /// The key tokens are signed with (ES256, its `kid` set); `None` signs with HS256 and
    /// `secrets.jwt_secret`.
    pub(crate) signing_key: Option<stepup::SigningKey>,
    /// The resources (RFC 8707) tokens may be issued for, besides the demo's own API.
    pub(crate) resources: Vec<String>,
    /// An identity provider whose users may use the demo's factors (token exchange).
    pub(crate) external_issuer: Option<stepup::token::TrustedIssuer>,
    /// The clock of everything.
    pub(crate) clock: SharedClock,
}

impl Settings {
    /// Settings for `database` with the given keys and clock, everything else by default.
    pub(crate) fn new(database: Database, secrets: Secrets, clock: SharedClock) -> Self {
        Self {
            database,
            redis: None,
            secrets,
            client: demo_client("demo", "http://localhost:3000/callback"),
            public_url: DEFAULT_PUBLIC_URL.to_owned(),
            sms: None,
            sms_regions: None,
            outbox_dir: None,
            admins: Admins::default(),
            trusted_proxies: stepup::middleware::TrustedProxies::none(),
            dev_panel: true,
            signing_key: None,
            resources: Vec::new(),
            external_issuer: None,
            clock,
        }
    }
}

/// The whole demo: its users, stepup with every factor, its own routes and the page.
pub(crate) async fn build(settings: Settings) -> Result<Router, BoxError> {
    let Settings {
        database,
        redis,
        secrets,
        client,
        public_url,
        sms,
        sms_regions,
        outbox_dir,
        admins,
        trusted_proxies,
        dev_panel,
        signing_key,
        resources,
        external_issuer,
        clock,
    } = settings;
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
        SmsProvider::sender(SmsOutbox::new(sms_outbox, clock.clone()))
    });
    let (mailer, mail_outbox) = demo_mailer(mail_outbox, clock.clone())?;
    outboxes.mail = mail_outbox;
    if !dev_panel {
        outboxes = web::Outboxes::default();
    }
    let (table, stores) = match database {
        Database::Sqlite(store) => (
            UserTable::Sqlite(store.pool().clone()),
            Stores::shared(store),
        ),
        Database::Postgres(store) => (
            UserTable::Postgres(store.pool().clone()),
            Stores::shared(store),
        ),
    };
    let stores = match redis.clone() {
        Some(redis) => stores.with_ephemeral(redis),
        None => stores,
    };
    table.create().await?;
    let kdf = stepup::mfa::KdfPool::default();
    let users = Users {
        table,
        kdf: kdf.clone(),
        dummy_hash: kdf.hash(b"a password nobody has").await?,
    };
    // The issuer identifier is where browsers reach the demo (RFC 8414, RFC 9207): tokens,
    // metadata and authorization responses name it; the demo's own API is its audience.
    let issuer = match signing_key {
        Some(key) => JwtIssuer::new(key),
        None => JwtIssuer::hs256(&secrets.jwt_secret)?,
    }
    .with_issuer(public_url.trim_end_matches('/'))
    .with_audience(public_url.trim_end_matches('/'));
    let mut builder = StepUp::builder()
        .issuer(issuer)
        .stores(stores)
        .keyring(Keyring::new(&secrets.seal_key_id, &secrets.seal_key)?)
        .lookup_key(&secrets.lookup_key)
        .passwords(users.clone())
        .client(client)
        .factor(Totp::new(TotpConfig {
            issuer: "stepup demo".into(),
            ..TotpConfig::default()
        }))
        .factor(Webauthn::new(relying_party(&public_url)?))
        .factor(Sms::new(sms).with_policy(SmsPolicy {
            allowed_regions: sms_regions,
            ..SmsPolicy::default()
        }))
        .factor(Email::shared(mailer.clone()))
        // SMS and mail codes are restricted authenticators: beside an app or a passkey only.
        .restricted_factor_alone(false)
        .shared_mailer(mailer)
        .clock(clock.clone())
        .kdf_pool(kdf)
        .trusted_proxies(trusted_proxies)
        // The authorization server for third-party clients (an MCP client): RFC 7591
        // registration, Client ID Metadata Documents (loopback http allowed: a development
        // server), rotated refresh tokens.
        .dynamic_registration(stepup::mfa::RegistrationPolicy::default())
        .client_metadata_documents(stepup::mfa::MetadataDocumentPolicy::development())
        .session_lifetime(SESSION_LIFETIME);
    for resource in resources {
        builder = builder.resource(resource);
    }
    if let Some(external) = external_issuer {
        builder = builder.external_issuer(external);
    }
    let stepup = builder.build()?;
    let demo = Demo(Arc::new(DemoParts {
        openapi: openapi::document(&stepup).to_json()?.into(),
        users,
        stepup: stepup.clone(),
        redis,
    }));
    // Each registration costs one argon2id: at most 10 per address per hour, counted by the
    // engine's one address policy (IPv6 by /64), shared by every instance.
    let register_route = post(register)
        .layer::<_, std::convert::Infallible>(stepup.ceiling(
            "register",
            REGISTRATIONS_PER_HOUR,
            Duration::from_secs(60 * 60),
        ))
        .layer::<_, std::convert::Infallible>(stepup.client_addresses())
        .layer(axum::middleware::map_request(
            stepup::routes::peer_from_connect_info,
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
        .route(
            "/api/transfers",
            post(transfer).layer(
                // The amount and the payee approved with a second factor, this once.
                RequireTransaction::new(transfer_operation)
                    .with_approvals(stepup.transaction_approvals()),
            ),
        )
        .route("/healthz", get(health))
        .route("/callback", get(callback))
        .route("/openapi.json", get(openapi_document))
        .with_state(demo)
        .merge(stepup.routes())
        .merge(admin::routes(&stepup, admins))
        .merge(web::routes(outboxes))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        });
    // The layers every answer passes through wrap the router once: `Router::layer` would wrap
    // each route, and axum copies a route's whole stack of services on every request.
    let [csp, nosniff, referrer, frame, opener] = web::security_headers();
    let service = tower::ServiceBuilder::new()
        .layer(web::server_date(clock))
        .layer(csp)
        .layer(nosniff)
        .layer(referrer)
        .layer(frame)
        .layer(opener)
        // Bearer tokens, and DPoP-bound ones (the page binds its tokens to a key it cannot
        // export): each proof accepted once across every instance.
        .layer(stepup.authenticate().with_dpop(stepup.dpop_policy()?))
        // Every route refuses tokens of deleted, recovered or reset accounts (stepup's own
        // routes check again): answered from the engine's in-memory copy of the generations.
        .layer(stepup.reject_revoked())
        // Every handler made a route now, not on each request (as serving a `Router` does).
        .service(app.with_state::<()>(()));
    Ok(Router::new().fallback_service(service))
}

/// The routes' state. axum clones it for every request (and with every clone of a route), so it
/// is one reference, not a copy of its parts.
#[derive(Clone)]
struct Demo(Arc<DemoParts>);

impl std::ops::Deref for Demo {
    type Target = DemoParts;

    fn deref(&self) -> &DemoParts {
        &self.0
    }
}

struct DemoParts {
    /// `GET /openapi.json`, serialized once: the routes do not change while the process runs.
    openapi: bytes::Bytes,
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
    kdf: stepup::mfa::KdfPool,
    /// Checked when the user is unknown, so that both answers take as long.
    dummy_hash: String,
}

#[stepup::policy::async_trait]
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

async fn openapi_document(State(demo): State<Demo>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        demo.openapi.clone(),
    )
        .into_response()
}

/// `GET /api/me`: what the caller's token says (written straight from the context, no
/// intermediate JSON tree).
#[derive(Serialize)]
struct Me<'a> {
    sub: &'a str,
    acr: Option<&'a str>,
    amr: &'a [String],
    auth_time: Option<u64>,
}

async fn me(caller: AuthContext) -> Response {
    Json(Me {
        sub: caller.subject(),
        acr: caller.acr(),
        amr: caller.amr(),
        auth_time: caller.auth_time(),
    })
    .into_response()
}

async fn delete_account(
    State(demo): State<Demo>,
    caller: AuthContext,
) -> Result<Response, ApiError> {
    // Factors first: should the second step fail, the account still exists and can retry.
    // The user the token stands for: an external provider's user is keyed by issuer and `sub`.
    let user = demo.stepup.mfa().user_of(&caller);
    demo.stepup.mfa().delete_user(&user).await?;
    let deleted = demo
        .users
        .table
        .delete(&user)
        .await
        .map_err(|_| unavailable())?;
    if !deleted {
        return Err(ApiError::not_found("no such account"));
    }
    Ok(Json(json!({ "success": true })).into_response())
}

/// `GET /api/vault`: what only a recent passkey login opens.
#[derive(Serialize)]
struct Vault {
    secret: String,
}

async fn vault(caller: AuthContext) -> Response {
    Json(Vault {
        secret: format!("the vault of {} opens only to a passkey", caller.subject()),
    })
    .into_response()
}

/// The operation of `POST /api/transfers`: `{amount, currency, payee}`.
fn transfer_operation(
    _: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Operation, OperationError> {
    let body: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| OperationError::new("the body must be JSON: {amount, currency, payee}"))?;
    Operation::new("payment")
        .with_amount("amount", &body["amount"])?
        .with_currency("currency", &body["currency"])?
        .with_text("payee", &body["payee"])
}

/// `POST /api/transfers`: reached only with the approval of this very transfer (nothing moves:
/// it is a demo).
async fn transfer(caller: AuthContext, body: String) -> Response {
    let transfer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    Json(json!({
        "transferred": {
            "amount": transfer["amount"],
            "currency": transfer["currency"],
            "payee": transfer["payee"],
        },
        "by": caller.subject(),
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
    demo.stepup.mfa().ping().await?;
    if let Some(redis) = &demo.redis {
        redis.ping().await.map_err(|_| unavailable())?;
    }
    Ok(Json(json!({ "status": "ok" })).into_response())
}

/// The one `503` of every stepup answer.
fn unavailable() -> ApiError {
    ApiError::unavailable()
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
