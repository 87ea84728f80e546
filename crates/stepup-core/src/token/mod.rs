//! Access tokens: signing keys, the verifier used by the `authenticate()` layer and the issuer.
//!
//! Built on `jsonwebtoken` 12 with its pure-Rust RustCrypto backend, or aws-lc-rs with the `aws-lc`
//! feature ([`crypto_backend`]; see `docs/security.md`).
//! Every key is bound to exactly one algorithm from the allow-list HS256, RS256, ES256 and EdDSA;
//! `none` cannot be expressed, and a token whose `alg` differs from its key's is refused, which
//! closes the HS/RS confusion attack.

mod backend;
mod cache;
mod claims;
mod issuer;
mod keys;
mod keyset;
#[cfg(feature = "jwks")]
mod remote;
mod rust_crypto;
mod verifier;

pub use backend::{CryptoBackend, crypto_backend, crypto_provider};
pub use claims::{AccessTokenClaims, Actor, Confirmation};
pub use issuer::{Grant, IssuedToken, JwtIssuer};
pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use keys::{GeneratedKey, SigningKey, VerifyingKey};
#[cfg(feature = "jwks")]
pub use remote::{KeySourceError, RefreshPolicy};
pub use verifier::{
    AwaitingKeys, DEFAULT_CACHE_CAPACITY, JwtVerifier, JwtVerifierBuilder, MAX_TOKEN_LEN,
    TrustedIssuer, Verification,
};
