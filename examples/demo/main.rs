//! The stepup demo server: `cargo run --example demo`.
//!
//! Environment: `STEPUP_ADDR` (default `127.0.0.1:3000`), `STEPUP_JWT_SECRET` (at least 32 bytes;
//! without it a random development key is generated and tokens die with the process).

mod app;

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use stepup::JwtIssuer;

const ISSUER: &str = "stepup-demo";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,stepup=debug".into()),
        )
        .init();

    let addr: SocketAddr = std::env::var("STEPUP_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3000".into())
        .parse()
        .map_err(|error| format!("STEPUP_ADDR is not an address: {error}"))?;
    let secret = match std::env::var("STEPUP_JWT_SECRET") {
        Ok(secret) => secret.into_bytes(),
        Err(_) => {
            tracing::warn!(
                "STEPUP_JWT_SECRET is not set: using a random development key; \
                 tokens will not survive a restart"
            );
            let mut secret = [0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            URL_SAFE_NO_PAD.encode(secret).into_bytes()
        }
    };
    let issuer = JwtIssuer::hs256(&secret)?
        .with_issuer(ISSUER)
        .with_audience(ISSUER);
    let verifier = issuer.verifier().build()?;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!("stepup demo listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app::router(issuer, verifier))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
