//! An existing API protected by stepup's layers alone, with tokens from any OpenID Connect
//! provider: `OIDC_ISSUER=https://idp.example.com cargo run --example resource_server`.
//!
//! - `GET /api/me`: anyone signed in;
//! - `DELETE /api/account`: a second factor within the last 5 minutes (`RequireMfa`,
//!   `max_age` 300);
//! - `GET /api/admin`: a phishing-resistant factor (`RequireAcr::level("phr")`);
//! - `GET /.well-known/oauth-protected-resource`: its RFC 9728 metadata, naming the provider.
//!
//! A caller short of a level gets the RFC 9470 challenge in the provider's own vocabulary
//! (Keycloak `acr_values="2"`, Okta `urn:okta:loa:2fa:any`, …), with `resource_metadata`, so a
//! client can ask the provider for exactly that. Settings: see [`app::USAGE`] (printed when
//! `OIDC_ISSUER` is missing).

mod app;

use std::process::ExitCode;
use std::sync::Arc;

use stepup::clock::SystemClock;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,stepup=debug".into()),
        )
        .init();
    let settings = match app::Settings::from_lookup(|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(problem) => {
            eprintln!("resource_server: {problem}\n\n{}", app::USAGE);
            return ExitCode::from(2);
        }
    };
    match serve(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("resource_server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: app::Settings) -> Result<(), Box<dyn std::error::Error>> {
    let metadata = settings.metadata()?;
    let verifier = settings.verifier(Arc::new(SystemClock))?;
    // Not fatal: until the provider answers, its tokens get 503 (never 401), and the key source
    // keeps trying in the background.
    if let Err(error) = verifier.refresh_keys().await {
        tracing::warn!(%error, issuer = %settings.issuer, "the provider's keys are not loaded yet");
    }
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        issuer = %settings.issuer,
        profile = ?settings.profile.kind(),
        metadata = %metadata.metadata_url(),
        "resource server listening"
    );
    axum::serve(listener, app::router(verifier, &metadata))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
