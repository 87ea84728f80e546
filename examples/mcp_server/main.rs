//! An MCP server (the official Rust SDK, `rmcp`, streamable HTTP) protected by stepup's layers,
//! with stepup's authorization server — the demo — signing its users in:
//!
//! ```text
//! cargo run --example demo                     # the authorization server, on :3000
//! STEPUP_RESOURCES=http://127.0.0.1:3002/mcp cargo run --example demo   # (restart it so)
//! cargo run --example mcp_server               # this server, on :3002
//! ```
//!
//! - `whoami`: anyone signed in;
//! - `delete_account`: a second factor within the last 5 minutes (`RequireMfa`, `max_age` 300);
//! - `read_vault`: a phishing-resistant login (`RequireAcr::level("phr")`: a passkey).
//!
//! An MCP client needs only the URL `http://127.0.0.1:3002/mcp`: the `401` names the RFC 9728
//! metadata, which names the authorization server, whose RFC 8414 metadata gives registration,
//! the authorization endpoint (PKCE S256, `resource`) and the token endpoint with refresh
//! tokens. A tool short of its level answers `401` with the RFC 9470 challenge
//! (`acr_values`, `max_age`); a new authorization with those parameters asks the signed-in
//! user only for the missing factor. Settings: `STEPUP_ISSUER` (default
//! `http://localhost:3000`), `MCP_ADDR` (default `127.0.0.1:3002`), `MCP_PUBLIC_URL` (default
//! `http://<MCP_ADDR>`).

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
            eprintln!("mcp_server: {problem}");
            return ExitCode::from(2);
        }
    };
    match serve(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcp_server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: app::Settings) -> Result<(), Box<dyn std::error::Error>> {
    let metadata = settings.metadata()?;
    let verifier = settings.verifier(Arc::new(SystemClock))?;
    // Not fatal: until the authorization server answers, its tokens get 503 (never 401), and
    // the key source keeps trying in the background.
    if let Err(error) = verifier.refresh_keys().await {
        tracing::warn!(%error, issuer = %settings.issuer, "the authorization server's keys are not loaded yet");
    }
    let listener = tokio::net::TcpListener::bind(settings.addr).await?;
    tracing::info!(
        addr = %listener.local_addr()?,
        resource = %settings.resource,
        issuer = %settings.issuer,
        "MCP server listening"
    );
    axum::serve(listener, app::router(&settings, verifier, &metadata)).await?;
    Ok(())
}
