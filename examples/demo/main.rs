//! The stepup demo server: `cargo run --example demo`.
//!
//! Environment:
//! - `STEPUP_ADDR` (default `127.0.0.1:3000`);
//! - `STEPUP_DATABASE_URL` (default `sqlite://stepup-demo.db`; `postgres://…` for PostgreSQL);
//! - `STEPUP_REDIS_URL` (optional, `redis://…`): ephemeral state in Redis, for several instances;
//! - `STEPUP_PUBLIC_URL` (default `http://localhost:<port of STEPUP_ADDR>`): where browsers
//!   reach the demo, the one WebAuthn origin; its host is the `rp_id`. Browsers refuse IP-address
//!   origins, so open the demo at `localhost`, not `127.0.0.1`;
//! - `STEPUP_CLIENT_ID` / `STEPUP_REDIRECT_URI`: the registered OAuth client (default `demo`,
//!   `http://localhost:3000/callback`);
//! - SMS: `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_VERIFY_SERVICE_SID` (and
//!   `TWILIO_API_BASE`) for Twilio Verify; without them each SMS is appended as one JSON line
//!   `{"to","body","at"}` to `STEPUP_SMS_OUTBOX` (default `<database>.sms.jsonl`).
//!   `STEPUP_SMS_REGIONS` (optional): comma-separated region codes (ISO 3166-1 alpha-2, e.g.
//!   `GB,DE`) whose numbers may enroll; unset, every region (set it when a real provider sends: SMS
//!   pumping). SMS is never a user's only factor: an app or a passkey comes first;
//! - mail (recovery codes, notices): `STEPUP_SMTP_URL` (e.g. `smtps://user:password@host:465`)
//!   and `STEPUP_MAIL_FROM` to send through SMTP; without them each mail is appended as one JSON
//!   line `{"to","subject","body","at"}` to `STEPUP_MAIL_OUTBOX` (default `<database>.mail.jsonl`);
//! - `STEPUP_DATABASE_SCHEMA` (optional, PostgreSQL only): keep every table in this schema
//!   (created if missing) instead of the first of the `search_path`;
//! - `STEPUP_REDIS_PREFIX` (optional, default `stepup:`): the prefix of every Redis key; instances
//!   of one deployment share it;
//! - `STEPUP_TRUSTED_PROXIES` (optional): comma-separated addresses or networks of the reverse
//!   proxies in front, whose `X-Forwarded-For` names the client (read by `app.rs`);
//! - tokens are signed with ES256: a development key pair (`kid` set) generated on first start
//!   and kept beside the database (`<database>.signing-key.json`, `0600`), published at
//!   `/.well-known/jwks.json` so a resource server elsewhere verifies the demo's tokens; with
//!   `STEPUP_JWT_SECRET` (≥ 32 bytes) they are HS256 instead (nothing published);
//! - `STEPUP_SEAL_KEY` and `STEPUP_LOOKUP_KEY` (32 bytes, base64url), `STEPUP_SEAL_KEY_ID`
//!   (default `k1`). Any key not given comes from a development key file beside the database
//!   (`<database>.keys.json`), generated on first start with a warning;
//! - `STEPUP_RESOURCES` (optional): comma-separated resources (RFC 8707) the demo's authorization
//!   server issues tokens for (e.g. an MCP server's URL), besides its own API;
//! - `STEPUP_OIDC_ISSUER` (optional): an OpenID provider whose users may use the demo's factors
//!   (its keys by OIDC discovery): its access tokens are callers on the factor routes, and
//!   `POST /oauth/token` exchanges them (RFC 8693) for the demo's token after the MFA step;
//!   `STEPUP_OIDC_AUDIENCE` is the audience its tokens name (default the public URL).
//!
//! When a backend is unreachable (see `docs/deployment.md`): without PostgreSQL (or SQLite) the
//! demo refuses to start, with an error naming the database, because it applies its migrations
//! before serving; without Redis it starts, answers `503` until Redis is reachable, then serves,
//! with no restart. A backend going away while serving is `503` too, and service resumes when it
//! is back (`tests/faults.rs`).

pub(crate) mod app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use stepup::Keyring;
use stepup::clock::{SharedClock, SystemClock};
use stepup::mfa::sms::{Region, SmsProvider};
use stepup::middleware::TrustedProxies;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,stepup=debug".into()),
        )
        .init();
    let config = Config::from_env()?;
    let (listener, router) = start(config, Arc::new(SystemClock))
        .await
        .inspect_err(|error| {
            tracing::error!(%error, "the demo cannot start");
        })?;
    tracing::info!("stepup demo listening on http://{}", listener.local_addr()?);
    // A header-read timeout and per-address and total connection caps against slow clients; the
    // peer address reaches the router as `ConnectInfo<SocketAddr>`, for the per-address limits.
    stepup_axum::serve::serve(listener, router, stepup_axum::serve::ServeLimits::default())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Everything the demo is started with; [`Config::from_env`] reads it from the environment
/// (the demo's process tests build one directly).
pub(crate) struct Config {
    /// Where to listen (`STEPUP_ADDR`).
    pub(crate) addr: SocketAddr,
    /// `sqlite://…` or `postgres://…` (`STEPUP_DATABASE_URL`).
    pub(crate) database_url: String,
    /// The PostgreSQL schema of every table (`STEPUP_DATABASE_SCHEMA`).
    pub(crate) database_schema: Option<String>,
    /// Redis for the ephemeral state (`STEPUP_REDIS_URL`).
    pub(crate) redis_url: Option<String>,
    /// The prefix of every Redis key (`STEPUP_REDIS_PREFIX`).
    pub(crate) redis_prefix: Option<String>,
    /// The registered OAuth client (`STEPUP_CLIENT_ID`).
    pub(crate) client_id: String,
    /// Its redirect URI (`STEPUP_REDIRECT_URI`).
    pub(crate) redirect_uri: String,
    /// Where browsers reach the demo (`STEPUP_PUBLIC_URL`).
    pub(crate) public_url: String,
    /// The keys.
    pub(crate) secrets: app::Secrets,
    /// SMS delivery; `None` for the outbox file.
    pub(crate) sms: Option<SmsProvider>,
    /// The regions whose numbers may enroll for SMS (`STEPUP_SMS_REGIONS`); `None`: every region.
    pub(crate) sms_regions: Option<Vec<Region>>,
    /// Where the outboxes go when their variables are unset (`None`: beside the database).
    pub(crate) outbox_dir: Option<PathBuf>,
    /// The administrators (`STEPUP_ADMINS`).
    pub(crate) admins: app::Admins,
    /// The reverse proxies believed (`STEPUP_TRUSTED_PROXIES`).
    pub(crate) trusted_proxies: TrustedProxies,
    /// Whether the page shows the development outboxes (`STEPUP_DEV_PANEL=off` hides them).
    pub(crate) dev_panel: bool,
    /// The ES256 signing key; `None` for HS256 with `STEPUP_JWT_SECRET`.
    pub(crate) signing_key: Option<stepup::SigningKey>,
    /// The resources tokens may be issued for (`STEPUP_RESOURCES`).
    pub(crate) resources: Vec<String>,
    /// The external OpenID provider (`STEPUP_OIDC_ISSUER`, `STEPUP_OIDC_AUDIENCE`).
    pub(crate) external_issuer: Option<stepup::token::TrustedIssuer>,
}

impl Config {
    /// The configuration the environment describes (see the module documentation).
    pub(crate) fn from_env() -> Result<Self, BoxError> {
        let addr: SocketAddr = env_or("STEPUP_ADDR", "127.0.0.1:3000")
            .parse()
            .map_err(|error| format!("STEPUP_ADDR is not an address: {error}"))?;
        let database_url = env_or("STEPUP_DATABASE_URL", "sqlite://stepup-demo.db");
        let secrets = load_secrets(&database_url)?;
        let database_url_for_keys = database_url.clone();
        let set = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let public_url = env_or(
            "STEPUP_PUBLIC_URL",
            &format!("http://localhost:{}", addr.port()),
        );
        let external_issuer = set("STEPUP_OIDC_ISSUER").map(|issuer| {
            let audience = set("STEPUP_OIDC_AUDIENCE").unwrap_or_else(|| public_url.clone());
            stepup::token::TrustedIssuer::new(issuer)
                .audience(audience)
                .discover()
        });
        Ok(Self {
            addr,
            database_schema: set("STEPUP_DATABASE_SCHEMA"),
            redis_url: set("STEPUP_REDIS_URL"),
            redis_prefix: set("STEPUP_REDIS_PREFIX"),
            client_id: env_or("STEPUP_CLIENT_ID", "demo"),
            redirect_uri: env_or("STEPUP_REDIRECT_URI", "http://localhost:3000/callback"),
            public_url,
            database_url,
            secrets,
            sms: sms_from_env()?,
            sms_regions: sms_regions_from_env()?,
            outbox_dir: None,
            admins: app::Admins::from_env(),
            trusted_proxies: trusted_proxies_from_env()?,
            dev_panel: set("STEPUP_DEV_PANEL").is_none_or(|value| value != "off"),
            signing_key: match set("STEPUP_JWT_SECRET") {
                Some(_) => None,
                None => Some(signing_key(&database_url_for_keys)?),
            },
            resources: set("STEPUP_RESOURCES")
                .map(|list| {
                    list.split(',')
                        .map(str::trim)
                        .filter(|resource| !resource.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            external_issuer,
        })
    }
}

/// Opens the backends, builds the demo and binds its listener, time read from `clock`.
///
/// Fails, naming the database, when the database cannot be reached (the migrations and the
/// users table are applied before serving). Redis is connected lazily: unreachable, the demo
/// starts all the same and answers `503` until it is reachable.
pub(crate) async fn start(
    config: Config,
    clock: SharedClock,
) -> Result<(tokio::net::TcpListener, axum::Router), BoxError> {
    let is_postgres = config.database_url.starts_with("postgres://")
        || config.database_url.starts_with("postgresql://");
    let database = match (&config.database_schema, is_postgres) {
        (Some(schema), true) => stepup_store_postgres::PostgresStore::open_in_schema(
            &config.database_url,
            schema,
            clock.clone(),
        )
        .await
        .map(app::Database::Postgres),
        (Some(_), false) => return Err("STEPUP_DATABASE_SCHEMA needs a PostgreSQL database".into()),
        (None, _) => app::Database::open(&config.database_url, clock.clone()).await,
    }
    .map_err(|error| {
        format!(
            "the database (STEPUP_DATABASE_URL) cannot be opened, and the demo does not serve \
             without its migrations applied: {error}"
        )
    })?;
    let redis = match &config.redis_url {
        Some(url) => {
            let store = stepup_store_redis::RedisStore::open_lazily(url, clock.clone())
                .await
                .map_err(|error| format!("STEPUP_REDIS_URL: {error}"))?;
            Some(match &config.redis_prefix {
                Some(prefix) => store.with_prefix(prefix.clone()),
                None => store,
            })
        }
        None => None,
    };
    let settings = app::Settings {
        redis,
        client: app::demo_client(&config.client_id, &config.redirect_uri),
        public_url: config.public_url,
        sms: config.sms,
        sms_regions: config.sms_regions,
        outbox_dir: config.outbox_dir,
        admins: config.admins,
        trusted_proxies: config.trusted_proxies,
        dev_panel: config.dev_panel,
        signing_key: config.signing_key,
        resources: config.resources,
        external_issuer: config.external_issuer,
        ..app::Settings::new(database, config.secrets, clock)
    };
    let router = app::build(settings)
        .await
        .map_err(|error| format!("the demo cannot be built: {error}"))?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|error| format!("cannot listen on {}: {error}", config.addr))?;
    Ok((listener, router))
}

/// The reverse proxies in front of the demo, whose `X-Forwarded-For` names the client:
/// `STEPUP_TRUSTED_PROXIES`, comma-separated addresses or networks. Unset, none is trusted and
/// forwarding headers are ignored (the TCP peer is the client).
fn trusted_proxies_from_env() -> Result<TrustedProxies, BoxError> {
    let list = std::env::var("STEPUP_TRUSTED_PROXIES").unwrap_or_default();
    let networks: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    Ok(TrustedProxies::parse(&networks)
        .map_err(|error| format!("STEPUP_TRUSTED_PROXIES: {error}"))?)
}

/// Twilio Verify with `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` and `TWILIO_VERIFY_SERVICE_SID`
/// (`TWILIO_API_BASE` to point elsewhere); else the outbox file `STEPUP_SMS_OUTBOX`; else `None`
/// (the outbox beside the database).
fn sms_from_env() -> Result<Option<SmsProvider>, BoxError> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if let (Some(account), Some(token), Some(service)) = (
        var("TWILIO_ACCOUNT_SID"),
        var("TWILIO_AUTH_TOKEN"),
        var("TWILIO_VERIFY_SERVICE_SID"),
    ) {
        let mut twilio = stepup::mfa::sms::TwilioVerify::new(&account, &token, &service)?;
        if let Some(base) = var("TWILIO_API_BASE") {
            twilio = twilio.with_base_url(&base);
        }
        tracing::info!("SMS codes through Twilio Verify");
        return Ok(Some(SmsProvider::verifier(twilio)));
    }
    Ok(var("STEPUP_SMS_OUTBOX")
        .map(|path| SmsProvider::sender(app::SmsOutbox::new(path.into(), Arc::new(SystemClock)))))
}

/// `STEPUP_SMS_REGIONS`: comma-separated region codes (`GB,DE`); unset or empty, `None` (every
/// region). A calling code (`44`) or an unknown region is an error naming the variable.
fn sms_regions_from_env() -> Result<Option<Vec<Region>>, BoxError> {
    let list = std::env::var("STEPUP_SMS_REGIONS").unwrap_or_default();
    let regions =
        app::parse_regions(&list).map_err(|error| format!("STEPUP_SMS_REGIONS: {error}"))?;
    if regions.is_empty() && std::env::var_os("TWILIO_ACCOUNT_SID").is_some() {
        tracing::warn!(
            "STEPUP_SMS_REGIONS is unset: numbers of every region may enroll for SMS; list the \
             regions you serve (e.g. GB,DE) against SMS pumping"
        );
    }
    Ok(Some(regions).filter(|regions| !regions.is_empty()))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// Development keys, persisted so that tokens and sealed secrets survive a restart.
#[derive(Serialize, Deserialize)]
struct DevKeys {
    jwt_secret: String,
    seal_key: String,
    lookup_key: String,
}

fn load_secrets(database_url: &str) -> Result<app::Secrets, BoxError> {
    let from_env = |name: &str| std::env::var(name).ok();
    let decode = |name: &str, value: &str| {
        URL_SAFE_NO_PAD
            .decode(value.trim_end_matches('='))
            .map_err(|_| format!("{name} is not base64url"))
    };
    let needs_dev_keys = ["STEPUP_JWT_SECRET", "STEPUP_SEAL_KEY", "STEPUP_LOOKUP_KEY"]
        .iter()
        .any(|name| from_env(name).is_none());
    let dev = if needs_dev_keys {
        Some(dev_keys(database_url)?)
    } else {
        None
    };
    let pick = |name: &str, dev_value: fn(&DevKeys) -> &String| -> Result<String, BoxError> {
        from_env(name)
            .or_else(|| dev.as_ref().map(|keys| dev_value(keys).clone()))
            .ok_or_else(|| format!("{name} is missing").into())
    };
    Ok(app::Secrets {
        jwt_secret: pick("STEPUP_JWT_SECRET", |keys| &keys.jwt_secret)?.into_bytes(),
        seal_key_id: env_or("STEPUP_SEAL_KEY_ID", "k1"),
        seal_key: decode(
            "STEPUP_SEAL_KEY",
            &pick("STEPUP_SEAL_KEY", |keys| &keys.seal_key)?,
        )?,
        lookup_key: decode(
            "STEPUP_LOOKUP_KEY",
            &pick("STEPUP_LOOKUP_KEY", |keys| &keys.lookup_key)?,
        )?,
    })
}

/// The demo's ES256 development key pair, persisted so that tokens survive a restart.
#[derive(Serialize, Deserialize)]
struct DevSigningKey {
    kid: String,
    private_pem: String,
    public_pem: String,
}

/// The ES256 key tokens are signed with: the development key beside the database, generated on
/// first start (with a warning) and kept `0600`.
fn signing_key(database_url: &str) -> Result<stepup::SigningKey, BoxError> {
    let path = key_file(database_url, "signing-key");
    let stored: DevSigningKey = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)?,
        Err(_) => {
            tracing::warn!(
                path = %path.display(),
                "no STEPUP_JWT_SECRET: generated a development ES256 signing key; do not use it \
                 in production"
            );
            let kid = format!(
                "dev-{}",
                &URL_SAFE_NO_PAD.encode(Keyring::generate_key())[..8]
            );
            let generated = stepup::SigningKey::generate_es256(kid)?;
            let stored = DevSigningKey {
                kid: generated.kid,
                private_pem: generated.private_pem,
                public_pem: generated.public_pem,
            };
            write_private(&path, serde_json::to_string_pretty(&stored)?.as_bytes())?;
            stored
        }
    };
    Ok(
        stepup::SigningKey::es256_pem(stored.private_pem.as_bytes(), stored.public_pem.as_bytes())?
            .with_kid(stored.kid),
    )
}

/// `<database>.<name>.json` beside a SQLite file, or in the working directory for PostgreSQL.
fn key_file(database_url: &str, name: &str) -> PathBuf {
    if database_url.starts_with("postgres") {
        return PathBuf::from(format!("stepup-demo-postgres.{name}.json"));
    }
    let database = database_url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let database = database.split('?').next().unwrap_or(database);
    PathBuf::from(format!("{database}.{name}.json"))
}

fn dev_keys(database_url: &str) -> Result<DevKeys, BoxError> {
    let path = if database_url.starts_with("postgres") {
        // A server database has no file to sit beside: the working directory holds the keys.
        PathBuf::from("stepup-demo-postgres.keys.json")
    } else {
        let database = database_url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let database = database.split('?').next().unwrap_or(database);
        PathBuf::from(format!("{database}.keys.json"))
    };
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(serde_json::from_str(&text)?);
    }
    tracing::warn!(
        path = %path.display(),
        "no STEPUP_JWT_SECRET / STEPUP_SEAL_KEY / STEPUP_LOOKUP_KEY: generated development keys; \
         do not use them in production"
    );
    let random = || URL_SAFE_NO_PAD.encode(Keyring::generate_key());
    let keys = DevKeys {
        jwt_secret: random(),
        seal_key: random(),
        lookup_key: random(),
    };
    write_private(&path, serde_json::to_string_pretty(&keys)?.as_bytes())?;
    Ok(keys)
}

/// Writes a file only its owner can read (`0600`): it holds keys that forge tokens and open
/// every sealed secret.
fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}
