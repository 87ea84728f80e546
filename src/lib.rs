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
//! With the default features, [`StepUp`] adds the drop-in routes (login, MFA step, factor
//! management) over the engine ([`Mfa`]) and an embedded SQLite store.
//!
//! ## Features
//!
//! | feature | what |
//! |---|---|
//! | `axum` | the `AuthContext` extractors (axum-core only) |
//! | `engine` | the engine [`Mfa`], its stores and [`MemoryStore`] |
//! | `routes` (default) | [`StepUp`]: the drop-in axum routes |
//! | `totp` (default) | the TOTP factor |
//! | `webauthn` | passkeys and security keys |
//! | `sms`, `twilio` | SMS codes (any gateway; Twilio Verify) |
//! | `email` | codes by mail |
//! | `smtp` | mail through SMTP |
//! | `sqlite` (default), `postgres`, `redis` | the stores |
//!
//! With `default-features = false` (and `axum` for the extractors) stepup is the layers alone: it
//! compiles no factor, store or HTTP client.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use stepup_core::token::{JwtIssuer, JwtVerifier, SigningKey, VerifyingKey};
pub use stepup_core::{AcrRequirement, AuthContext, AuthRejection, Error};
pub use stepup_tower::{RequireAcr, RequireMfa, RequireScope, RequireTransaction, authenticate};

#[cfg(feature = "routes")]
#[cfg_attr(docsrs, doc(cfg(feature = "routes")))]
pub use stepup_axum::StepUp;
#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
pub use stepup_mfa::{Keyring, Mfa, MfaError, PasswordCheck, Stores};
#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
pub use stepup_store::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use stepup_store_postgres::PostgresStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use stepup_store_redis::RedisStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use stepup_store_sqlite::SqliteStore;

/// Levels (`acr`), methods (`amr`) and requirements.
pub mod acr {
    pub use stepup_core::acr::*;
}

/// Where the level comes from and how a challenge is phrased, for each identity provider.
pub mod profile {
    pub use stepup_core::profile::*;
}

/// RFC 9728 protected-resource metadata: the document, its URL (named in every challenge by
/// `authenticate(…).with_resource_metadata(…)`), and the services that serve it.
pub mod resource {
    pub use stepup_core::resource::*;
    pub use stepup_tower::resource_metadata::{
        ResourceMetadataLayer, ResourceMetadataService, ServeResourceMetadata,
    };
}

/// Refusals as gRPC statuses (the layers answer gRPC calls this way).
pub mod grpc {
    pub use stepup_core::grpc::*;
}

/// The injected clock.
pub mod clock {
    pub use stepup_core::clock::*;
}

/// Access tokens: keys, the verifier, the issuer, claims.
pub mod token {
    pub use stepup_core::token::*;
}

/// Sender-constrained tokens (DPoP, RFC 9449): the policy given to
/// `authenticate(…).with_dpop(…)`, the proof checks, nonces, the in-process replay memory and the
/// `DPoP` challenges.
pub mod dpop {
    pub use stepup_core::dpop::*;
}

/// Who the client is: its address and how per-address limits group addresses.
pub mod client {
    pub use stepup_core::client::*;
}

/// The questions the layers ask ([`policy::RevocationCheck`], [`policy::RequestCeiling`],
/// [`policy::DeviceVouching`], [`policy::ProofReplay`]), which the engine answers.
pub mod policy {
    pub use stepup_core::policy::*;
}

/// The tower layers, one module each, and the RFC 6750 / RFC 9470 rejections.
pub mod middleware {
    pub use stepup_core::{
        DetailsChallenge, ResourceMetadataUrl, ScopeChallenge, StepUpChallenge, StepUpReason,
        TokenError,
    };
    pub use stepup_tower::*;
}

/// The storage traits, their records and the conformance suites.
#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
pub mod store {
    pub use stepup_store::*;
}

/// Mail: the `Mailer` seam, the JSON-lines outbox, and `SmtpMailer` (feature `smtp`).
#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
pub mod mail {
    pub use stepup_mail::*;
}

/// The engine and its modules: the factor seam, the lifecycle, the login, limits, resets,
/// devices, codes, audit, sealing.
#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
pub mod mfa {
    pub use stepup_mfa::*;
}

/// The factors stepup ships, each behind its feature; implement [`mfa::factor::Factor`] for
/// your own.
#[cfg(feature = "engine")]
#[cfg_attr(docsrs, doc(cfg(feature = "engine")))]
pub mod factors {
    #[cfg(feature = "email")]
    #[cfg_attr(docsrs, doc(cfg(feature = "email")))]
    pub use stepup_mfa::email::{self, Email};
    #[cfg(feature = "sms")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sms")))]
    pub use stepup_mfa::sms::{self, Sms, SmsProvider};
    #[cfg(feature = "totp")]
    #[cfg_attr(docsrs, doc(cfg(feature = "totp")))]
    pub use stepup_mfa::totp::{self, Totp, TotpConfig};
    #[cfg(feature = "webauthn")]
    #[cfg_attr(docsrs, doc(cfg(feature = "webauthn")))]
    pub use stepup_mfa::webauthn::{self, RelyingParty, Webauthn};
}

/// The drop-in routes' parts: errors, JSON bodies, OAuth clients, the admin reset handler.
#[cfg(feature = "routes")]
#[cfg_attr(docsrs, doc(cfg(feature = "routes")))]
pub mod routes {
    pub use stepup_axum::*;
}
