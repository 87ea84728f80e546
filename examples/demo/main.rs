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
//!   `{"to","body","at"}` to `STEPUP_SMS_OUTBOX` (default `<database>.sms.jsonl`);
//! - mail (recovery codes, notices): `STEPUP_SMTP_URL` (e.g. `smtps://user:password@host:465`)
//!   and `STEPUP_MAIL_FROM` to send through SMTP; without them each mail is appended as one JSON
//!   line `{"to","subject","body","at"}` to `STEPUP_MAIL_OUTBOX` (default `<database>.mail.jsonl`);
//! - `STEPUP_JWT_SECRET` (≥ 32 bytes), `STEPUP_SEAL_KEY` and `STEPUP_LOOKUP_KEY` (32 bytes,
//!   base64url), `STEPUP_SEAL_KEY_ID` (default `k1`). Any key not given comes from a development key
//!   file beside the database (`<database>.keys.json`), generated on first start with a warning.

mod app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use stepup::{Keyring, SystemClock};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,stepup=debug".into()),
        )
        .init();

    let addr: SocketAddr = env_or("STEPUP_ADDR", "127.0.0.1:3000")
        .parse()
        .map_err(|error| format!("STEPUP_ADDR is not an address: {error}"))?;
    let database_url = env_or("STEPUP_DATABASE_URL", "sqlite://stepup-demo.db");
    let secrets = load_secrets(&database_url)?;
    let database = app::Database::open(&database_url, Arc::new(SystemClock)).await?;
    let redis = match std::env::var("STEPUP_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(
            stepup_store_redis::RedisStore::open_with_clock(&url, Arc::new(SystemClock)).await?,
        ),
        _ => None,
    };
    let client = app::demo_client(
        &env_or("STEPUP_CLIENT_ID", "demo"),
        &env_or("STEPUP_REDIRECT_URI", "http://localhost:3000/callback"),
    );
    let public_url = env_or(
        "STEPUP_PUBLIC_URL",
        &format!("http://localhost:{}", addr.port()),
    );
    let router = app::router_with_sms(
        app::Backends {
            database,
            redis,
            outbox_dir: None,
        },
        &secrets,
        client,
        Arc::new(SystemClock),
        &public_url,
        sms_from_env()?,
    )
    .await?;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("stepup demo listening on http://{}", listener.local_addr()?);
    // The peer address feeds the per-address rate limits.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

/// Twilio Verify with `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN` and `TWILIO_VERIFY_SERVICE_SID`
/// (`TWILIO_API_BASE` to point elsewhere); else the outbox file `STEPUP_SMS_OUTBOX`; else `None`
/// (the outbox beside the database).
fn sms_from_env() -> Result<Option<stepup::mfa::SmsProvider>, BoxError> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    if let (Some(account), Some(token), Some(service)) = (
        var("TWILIO_ACCOUNT_SID"),
        var("TWILIO_AUTH_TOKEN"),
        var("TWILIO_VERIFY_SERVICE_SID"),
    ) {
        let mut twilio = stepup::mfa::TwilioVerify::new(&account, &token, &service)?;
        if let Some(base) = var("TWILIO_API_BASE") {
            twilio = twilio.with_base_url(&base);
        }
        tracing::info!("SMS codes through Twilio Verify");
        return Ok(Some(stepup::mfa::SmsProvider::verifier(twilio)));
    }
    Ok(var("STEPUP_SMS_OUTBOX").map(|path| {
        stepup::mfa::SmsProvider::sender(app::SmsOutbox::new(path.into(), Arc::new(SystemClock)))
    }))
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
