//! The framework-free core of stepup: who the caller is ([`AuthContext`]), how strongly they must
//! have authenticated ([`AcrLevels`], [`AcrRequirement`]), the injected [`clock`], access
//! [`token`]s, the RFC 6750 / RFC 9470 [`AuthRejection`] (also as a [`grpc`] status), and the
//! RFC 9728 [`resource`] metadata its challenges point to.
//!
//! ```
//! use std::time::Duration;
//! use stepup_core::{AcrRequirement, AuthContext};
//!
//! let caller = AuthContext::builder("user-1")
//!     .acr("mfa")
//!     .auth_time(1_000)
//!     .verified_at(1_200)
//!     .build();
//! assert!(AcrRequirement::mfa().max_age(Duration::from_secs(300)).check(&caller).is_ok());
//! assert!(AcrRequirement::level("phr").check(&caller).is_err());
//! ```

pub mod acr;
pub mod client;
pub mod clock;
mod context;
pub mod dpop;
mod error;
pub mod error_body;
#[cfg(feature = "axum")]
pub mod extract;
pub mod grpc;
pub mod policy;
pub mod profile;
mod rejection;
pub mod resource;
pub mod token;
pub mod tokens;
mod www_authenticate;

pub use acr::{
    AcrLevels, AcrRequirement, ChallengeDialect, ClaimsChallenge, StepUpChallenge, StepUpReason,
    TransactionChallenge,
};
pub use context::{AuthContext, AuthContextBuilder, Presentation};
pub use error::{Error, TokenError};
pub use rejection::{AuthRejection, DetailsChallenge, ScopeChallenge};
pub use www_authenticate::ResourceMetadataUrl;
