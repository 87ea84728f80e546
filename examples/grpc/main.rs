//! stepup's layers on a tonic gRPC service, with tokens from any OpenID Connect provider:
//! `OIDC_ISSUER=https://idp.example.com cargo run --example grpc`.
//!
//! - `stepup.example.Account/WhoAmI`: anyone signed in;
//! - `stepup.example.Account/CloseAccount`: a second factor within the last 5 minutes; short of
//!   it, `UNAUTHENTICATED` with the RFC 9470 challenge in the `www-authenticate` metadata.
//!
//! The layers sit in tonic's own tower stack (see `app.rs`); no axum router is involved. Call it
//! with any gRPC client, e.g. `grpcurl -plaintext -import-path examples/grpc -proto account.proto
//! -H "authorization: Bearer $TOKEN" 127.0.0.1:50051 stepup.example.Account/CloseAccount`.
//! Settings: see [`app::USAGE`].

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
            eprintln!("grpc: {problem}\n\n{}", app::USAGE);
            return ExitCode::from(2);
        }
    };
    match serve(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("grpc: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: app::Settings) -> Result<(), Box<dyn std::error::Error>> {
    let metadata = settings.metadata()?;
    let verifier = settings.verifier(Arc::new(SystemClock))?;
    if let Err(error) = verifier.refresh_keys().await {
        tracing::warn!(%error, issuer = %settings.issuer, "the provider's keys are not loaded yet");
    }
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, issuer = %settings.issuer, "gRPC server listening");
    tonic::transport::Server::builder()
        // The metadata document is fetched over plain HTTP/1.1 as well.
        .accept_http1(true)
        .serve_with_incoming_shutdown(
            app::service(verifier, &metadata),
            tonic::transport::server::TcpIncoming::from(listener),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await?;
    Ok(())
}
