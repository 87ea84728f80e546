//! # stepup
//!
//! Multi-factor and step-up authentication for tower-based web services: one layer turns bearer
//! tokens into an [`AuthContext`], and per-route layers demand a level of authentication, answering
//! with an RFC 9470 step-up challenge when the caller falls short.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::{delete, get, post}};
//! use stepup::{AuthContext, JwtIssuer, RequireAcr, RequireMfa, authenticate};
//!
//! async fn delete_account(caller: AuthContext) -> String {
//!     format!("deleted {}", caller.subject())
//! }
//!
//! let issuer = JwtIssuer::hs256(b"an example secret of at least 32 bytes")?;
//! let app: Router = Router::new()
//!     .route("/api/account", delete(delete_account).layer(RequireMfa))
//!     .route(
//!         "/api/admin",
//!         post(|| async { "ok" }).layer(RequireAcr::level("phr").max_age(Duration::from_secs(300))),
//!     )
//!     .route("/api/me", get(|caller: AuthContext| async move { caller.subject().to_owned() }))
//!     .layer(authenticate(issuer.verifier().build()?));
//! # Ok::<(), stepup::Error>(())
//! ```
//!
//! ## Crates
//!
//! - `stepup-core`: context, levels and policy, clock, tokens, rejections (no web framework);
//! - `stepup-tower`: `authenticate()`, `RequireAcr` / `RequireMfa`, client addresses, rate
//!   limits and the remembered-device cookie, for any tower service;
//! - `stepup-store`: the storage traits, `MemoryStore` and the conformance suites;
//! - `stepup-store-sqlite`, `stepup-store-postgres`: the backends;
//! - `stepup-mfa`: the engine, [`Mfa`], with one module per factor;
//! - `stepup-axum`: [`StepUp`], the drop-in routes.
//!
//! ## Features
//!
//! - `axum` (default): the extractors and the drop-in routes for axum 0.8;
//! - `sqlite` (default): [`SqliteStore`];
//! - `postgres`: [`PostgresStore`];
//! - `redis`: [`RedisStore`], for the ephemeral state.

pub use stepup_core::acr::{amr, level};
pub use stepup_core::clock::{self, Clock, ManualClock, SharedClock, SystemClock};
pub use stepup_core::profile::{self, IdpProfile};
pub use stepup_core::token::{
    self, AccessTokenClaims, Algorithm, Grant, IssuedToken, JwkSet, JwtIssuer, JwtVerifier,
    SigningKey, VerifyingKey,
};
pub use stepup_core::{
    AcrLevels, AcrRequirement, AuthContext, AuthRejection, Error, StepUpChallenge, StepUpReason,
    TokenError,
};
pub use stepup_tower::{
    Authenticate, AuthenticateLayer, ClientAddr, ForwardedHeader, PeerAddr, RateLimit,
    RateLimitLayer, RejectRevoked, RejectRevokedLayer, RememberedDevicesLayer, RequireAcr,
    RequireAcrService, RequireMfa, ResolveClientAddr, ResolveClientAddrLayer, ResponseBody,
    ResponseFuture, TrustedDevice, TrustedProxies, authenticate, client_addr,
};

/// Lower-level access to the middleware modules.
pub mod middleware {
    pub use stepup_tower::authenticate::bearer_token;
    pub use stepup_tower::{
        authenticate, client_addr, rate_limit, remembered_device, require_acr, revocation,
    };
}

pub use stepup_mfa::{
    AddressPolicy, AttemptPolicy, Audit, AuditEvent, KdfPool, Keyring, Method, Mfa, MfaError,
    Notifier, Proof, Stores, TotpAlgorithm, TotpConfig,
};
pub use stepup_store::{MemoryStore, Store, StoreError};
#[cfg(feature = "postgres")]
pub use stepup_store_postgres::PostgresStore;
#[cfg(feature = "redis")]
pub use stepup_store_redis::RedisStore;
#[cfg(feature = "sqlite")]
pub use stepup_store_sqlite::SqliteStore;

#[cfg(feature = "axum")]
pub use stepup_axum::{
    ApiError, JsonBody, OAuthClient, PasswordCheck, PasswordCheckFailed, StepUp, StepUpBuilder,
    admin_reset, peer_from_connect_info,
};

/// The storage traits, their records and the conformance suites.
pub mod store {
    pub use stepup_store::*;
}

/// Mail: the `Mailer` seam, the JSON-lines outbox, and `SmtpMailer` (feature `smtp`).
pub mod mail {
    pub use stepup_mail::*;
}

/// The engine and its modules: factors, the MFA step, devices, codes, audit, limits, sealing.
pub mod mfa {
    pub use stepup_mfa::*;
}
