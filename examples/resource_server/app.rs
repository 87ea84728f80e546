//! The resource server's application: its settings, the verifier that trusts the configured
//! OIDC issuer, and the router. `main.rs` reads the settings from the environment; the tests
//! (`tests/resource_server.rs`) build them by hand against a fake provider.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::routing::{delete, get};
use serde_json::{Value, json};
use stepup::clock::SharedClock;
use stepup::profile::IdpProfile;
use stepup::resource::{ProtectedResourceMetadata, ResourceMetadataService};
use stepup::token::JwtVerifier;
use stepup::{AuthContext, RequireAcr, RequireMfa, authenticate};

/// The address served when `STEPUP_ADDR` is not set.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:3001";

/// What to set, printed when the settings are incomplete.
pub(crate) const USAGE: &str = "\
Environment of the resource server:
  OIDC_ISSUER         required: the issuer of your identity provider, found by OIDC discovery
                      (e.g. https://idp.example.com/realms/main; its `issuer` must match exactly)
  OIDC_AUDIENCE       the audience your access tokens carry, comma-separated if several
                      (default: the resource identifier, STEPUP_PUBLIC_URL)
  STEPUP_IDP_PROFILE  keycloak, okta, auth0, cognito, entra or generic (default generic)
  STEPUP_ACR_MAP      level=value pairs naming your provider's acr values,
                      e.g. mfa=urn:example:2fa,phr=urn:example:phr (without it, generic reads
                      stepup's own pwd/mfa/phr, and amr containing mfa)
  STEPUP_ADDR         the address to listen on (default 127.0.0.1:3001)
  STEPUP_PUBLIC_URL   the resource identifier clients use (default http://<STEPUP_ADDR>)

For example:
  OIDC_ISSUER=http://127.0.0.1:8080/realms/main OIDC_AUDIENCE=account \\
  STEPUP_IDP_PROFILE=keycloak cargo run --example resource_server";

/// The settings, read from the environment by `main.rs`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The provider's issuer identifier.
    pub(crate) issuer: String,
    /// The audiences accepted.
    pub(crate) audiences: Vec<String>,
    /// How the provider says how the user authenticated.
    pub(crate) profile: IdpProfile,
    /// The address to listen on.
    pub(crate) addr: SocketAddr,
    /// The resource identifier (RFC 9728 `resource`).
    pub(crate) resource: String,
}

impl Settings {
    /// The settings from `lookup` (the environment in `main.rs`); the error says what is wrong.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let lookup = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let issuer = lookup("OIDC_ISSUER").ok_or("OIDC_ISSUER is not set")?;
        let addr = lookup("STEPUP_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("STEPUP_ADDR is not an address: {addr}"))?;
        let resource = lookup("STEPUP_PUBLIC_URL").unwrap_or_else(|| format!("http://{addr}"));
        let resource = resource.trim_end_matches('/').to_owned();
        let audiences = match lookup("OIDC_AUDIENCE") {
            Some(audiences) => audiences
                .split(',')
                .map(str::trim)
                .filter(|audience| !audience.is_empty())
                .map(str::to_owned)
                .collect(),
            None => vec![resource.clone()],
        };
        let name = lookup("STEPUP_IDP_PROFILE").unwrap_or_else(|| "generic".to_owned());
        let mut profile = IdpProfile::named(&name)
            .map_err(|_| format!("STEPUP_IDP_PROFILE is not a known profile: {name}"))?;
        if let Some(map) = lookup("STEPUP_ACR_MAP") {
            profile = profile
                .with_acr_map(&map)
                .map_err(|error| format!("STEPUP_ACR_MAP: {error}"))?;
        }
        Ok(Self {
            issuer,
            audiences,
            profile,
            addr,
            resource,
        })
    }

    /// The RFC 9728 metadata: this resource, and the provider as its authorization server.
    pub(crate) fn metadata(&self) -> Result<ProtectedResourceMetadata, stepup::Error> {
        Ok(ProtectedResourceMetadata::new(&self.resource)?
            .with_authorization_server(&self.issuer)
            .with_scopes_supported(["openid"])
            .with_resource_name("stepup resource server example"))
    }

    /// A verifier that finds the provider's keys by discovery and keeps them fresh; the
    /// profile reads the provider's claims. Must be built inside a tokio runtime.
    pub(crate) fn verifier(&self, clock: SharedClock) -> Result<JwtVerifier, stepup::Error> {
        self.audiences
            .iter()
            .fold(JwtVerifier::builder(), |builder, audience| {
                builder.audience(audience)
            })
            .discover(&self.issuer)
            .profile(self.profile.clone())
            .clock(clock)
            .build()
    }
}

/// The API: a profile anyone signed in may read, an account deletion that needs a second factor
/// within five minutes, and an admin page that needs a phishing-resistant one. Every challenge
/// names the resource's metadata, served beside it.
pub(crate) fn router(verifier: JwtVerifier, metadata: &ProtectedResourceMetadata) -> Router {
    Router::new()
        .route("/api/me", get(me))
        .route(
            "/api/account",
            delete(delete_account).layer(RequireMfa.max_age(Duration::from_secs(300))),
        )
        .route("/api/admin", get(admin).layer(RequireAcr::level("phr")))
        .layer(authenticate(verifier).with_resource_metadata(metadata.metadata_url()))
        .route_service(
            &metadata.well_known_path(),
            ResourceMetadataService::new(metadata),
        )
}

/// `200 {sub, iss, acr, amr, auth_time, scope}`: how the caller authenticated, in stepup's
/// terms (`acr` is `pwd`, `mfa` or `phr` whatever the provider's own words).
async fn me(caller: AuthContext) -> Json<Value> {
    Json(json!({
        "sub": caller.subject(),
        "iss": caller.issuer(),
        "acr": caller.acr(),
        "amr": caller.amr(),
        "auth_time": caller.auth_time(),
        "scope": caller.scope(),
    }))
}

/// Reached only with `mfa` (or `phr`) at most 300 s old.
async fn delete_account(caller: AuthContext) -> Json<Value> {
    tracing::info!(sub = caller.subject(), "account deleted");
    Json(json!({"success": true}))
}

/// Reached only with `phr`.
async fn admin(caller: AuthContext) -> Json<Value> {
    Json(json!({"admin": caller.subject()}))
}
