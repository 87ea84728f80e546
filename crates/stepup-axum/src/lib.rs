//! Drop-in axum routes for stepup: the login with its MFA step, an OAuth 2.1 authorization
//! server (the browser's sign-in page at `GET /oauth/authorize`, RFC 8414 metadata, a JWKS,
//! RFC 7591 registration, rotated refresh tokens, RFC 7009 revocation), passwordless passkeys, and factor, device, recovery and audit-trail management for the
//! signed-in user. The routes parse, call the engine ([`stepup_mfa::Mfa`]) and answer; every
//! security rule is the engine's.
//!
//! ```no_run
//! # async fn example(store: stepup_store::MemoryStore, passwords: impl stepup_mfa::PasswordCheck)
//! # -> Result<(), Box<dyn std::error::Error>> {
//! use axum::Router;
//! use stepup_axum::StepUp;
//! use stepup_core::token::JwtIssuer;
//! use stepup_mfa::Keyring;
//!
//! let stepup = StepUp::builder()
//!     .issuer(JwtIssuer::hs256(b"an example secret of at least 32 bytes")?)
//!     .store(store)
//!     .keyring(Keyring::new("k1", &Keyring::generate_key())?)
//!     .lookup_key(&Keyring::generate_key())
//!     .passwords(passwords)
//!     .build()?;
//! let app: Router = Router::new()
//!     .merge(stepup.routes())
//!     .layer(stepup.authenticate());
//! # Ok(()) }
//! ```

mod authorize;
mod caller;
mod devices;
mod dpop;
pub mod error;
mod events;
mod factors;
pub mod json;
mod login;
mod metadata;
pub mod oauth;
pub mod openapi;
pub mod path;
mod recovery;
mod registered_client;
mod respond;
mod router;
pub mod serve;
pub mod session;
mod stepup;

pub use error::ApiError;
pub use json::JsonBody;
pub use oauth::OAuthClient;
pub use recovery::admin_reset;
pub use router::peer_from_connect_info;
pub use serve::{ServeLimits, serve};
pub use stepup::{BuildError, StepUp, StepUpBuilder};
pub use stepup_mfa::{PasswordCheck, PasswordCheckFailed};
