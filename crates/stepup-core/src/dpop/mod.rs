//! Sender-constrained tokens (DPoP, RFC 9449) at the resource server: the checks of a `DPoP`
//! proof, the server nonces, the replay memory, and the `DPoP` challenges.
//!
//! A DPoP-bound access token carries `cnf.jkt`, the thumbprint of a key the client holds; it is
//! presented as `Authorization: DPoP <token>` with a `DPoP` header holding a proof: a JWT signed
//! by that key, naming the request's method and URL, the hash of the token, a fresh `iat` and a
//! unique `jti`. A stolen token is useless without the key. [`DpopPolicy::verify_proof`] makes
//! every check of RFC 9449 §4.3 but the replay check, which is asynchronous (a [`ProofReplay`]
//! policy, keyed by [`VerifiedProof::replay_key`]); the `authenticate()` layer of `stepup-tower`
//! runs both (`AuthenticateLayer::with_dpop`).
//!
//! | rule | check |
//! |---|---|
//! | one proof, a compact JWS of at most [`MAX_PROOF_LEN`] bytes | [`DpopError::MissingProof`], [`DpopError::MultipleProofs`], [`DpopError::Malformed`] |
//! | `typ` is `dpop+jwt` | [`DpopError::WrongType`] |
//! | `alg` is ES256, EdDSA or PS256 ([`ALGORITHMS`]); never `none`, HS\* or RS\* | [`DpopError::AlgorithmNotAllowed`] |
//! | `jwk` is a public key of that algorithm's type (no `d`, no symmetric key, RSA ≥ 2048 bits) | [`DpopError::PrivateKey`], [`DpopError::InvalidKey`] |
//! | the signature verifies with that `jwk` (jsonwebtoken) | [`DpopError::InvalidSignature`] |
//! | `htm` is the request's method, `htu` its URL under the configured public origin | [`DpopError::MethodMismatch`], [`DpopError::UrlMismatch`] |
//! | `iat` within the window (default 60 s past, 5 s future) by the injected clock | [`DpopError::IssuedAtOutOfWindow`] |
//! | `ath` is base64url(SHA-256(access token)) | [`DpopError::AccessTokenHashMismatch`] |
//! | the token's `cnf.jkt` is the key's thumbprint | [`DpopError::TokenNotBound`], [`DpopError::KeyMismatch`] |
//! | a server nonce, when [enabled](DpopPolicy::with_nonces) | [`DpopError::NonceRequired`] (`use_dpop_nonce`) |
//! | `jti` used once per key, across instances | [`DpopError::Replayed`] ([`ProofReplay`]) |
//!
//! ```
//! use stepup_core::dpop::DpopPolicy;
//!
//! // Tokens may be DPoP-bound; a bound one must come with its proof.
//! let optional = DpopPolicy::optional("https://api.example.com")?;
//! // Every token must be DPoP-bound.
//! let required = DpopPolicy::required("https://api.example.com")?;
//! assert!(required.is_required() && !optional.is_required());
//! # Ok::<(), stepup_core::Error>(())
//! ```

mod challenge;
mod nonce;
mod replay;
mod url;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use self::challenge::{
    DPOP_NONCE, DpopRejection, offer_dpop, to_dpop_challenge, to_dpop_challenges,
};
pub use self::nonce::DpopNonces;
pub use self::replay::{DEFAULT_REPLAY_CAPACITY, InProcessReplay};
use crate::clock::{SharedClock, SystemClock};
use crate::policy::ProofReplay;
use crate::{Error, TokenError};

/// Proofs longer than this are refused before any parsing (8 KiB).
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// The proof algorithms accepted, in the order the `algs` challenge parameter names them.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::EdDSA, Algorithm::PS256];

/// The `algs` parameter of every DPoP challenge: [`ALGORITHMS`], space-separated.
pub const ALGS: &str = "ES256 EdDSA PS256";

/// The longest `jti` accepted (its digest is what the replay memory keeps).
const MAX_JTI_LEN: usize = 256;

/// The smallest RSA modulus accepted for PS256 proofs, in bytes (2048 bits).
const MIN_RSA_MODULUS_LEN: usize = 256;

/// Members of a private or symmetric JWK: a proof's `jwk` carrying any of them is refused.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Why a DPoP presentation was refused. Descriptions are fixed strings: they never echo the proof
/// or the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DpopError {
    /// `Authorization: DPoP` without a `DPoP` proof header.
    #[error("a DPoP proof is required")]
    MissingProof,
    /// More than one `DPoP` header.
    #[error("more than one DPoP proof was presented")]
    MultipleProofs,
    /// The proof is not a compact JWS with a JSON header and claims, or is too large.
    #[error("the DPoP proof is malformed")]
    Malformed,
    /// The proof's `typ` is not `dpop+jwt`.
    #[error("the DPoP proof's type is not dpop+jwt")]
    WrongType,
    /// The proof's `alg` is not ES256, EdDSA or PS256.
    #[error("the DPoP proof's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    /// The proof's `jwk` is missing, not a key of its `alg`, or too weak.
    #[error("the DPoP proof's key is missing or not accepted")]
    InvalidKey,
    /// The proof's `jwk` carries private key material.
    #[error("the DPoP proof's key must be a public key")]
    PrivateKey,
    /// The proof's signature does not verify with its `jwk`.
    #[error("the DPoP proof's signature is invalid")]
    InvalidSignature,
    /// A required claim (`jti`, `htm`, `htu`, `iat`, `ath`) is missing or of the wrong type.
    #[error("the DPoP proof lacks a required claim")]
    InvalidClaims,
    /// `htm` is not the request's method.
    #[error("the DPoP proof was made for another HTTP method")]
    MethodMismatch,
    /// `htu` is not the request's URL.
    #[error("the DPoP proof was made for another URL")]
    UrlMismatch,
    /// `iat` is too old or too far in the future.
    #[error("the DPoP proof's issue time is outside the accepted window")]
    IssuedAtOutOfWindow,
    /// `ath` is not the hash of the access token presented.
    #[error("the DPoP proof was made for another access token")]
    AccessTokenHashMismatch,
    /// The proof was presented before.
    #[error("the DPoP proof has already been used")]
    Replayed,
    /// The server requires a nonce, and the proof has none or a stale one: `use_dpop_nonce`,
    /// with a fresh nonce in `DPoP-Nonce`.
    #[error("the resource server requires a fresh nonce in the DPoP proof")]
    NonceRequired,
    /// The access token presented under the `DPoP` scheme is not bound to a key (no `cnf.jkt`).
    #[error("the access token is not bound to a DPoP key")]
    TokenNotBound,
    /// The token's `cnf.jkt` is not the proof key's thumbprint.
    #[error("the access token is bound to another key")]
    KeyMismatch,
    /// A DPoP-bound token was presented as a bearer token.
    #[error("a DPoP-bound access token must be presented with a DPoP proof")]
    BoundTokenAsBearer,
    /// The resource server accepts only DPoP-bound tokens, with their proof.
    #[error("a DPoP-bound access token and its proof are required")]
    DpopRequired,
    /// The access token itself was refused.
    #[error("{}", .0.description())]
    Token(TokenError),
    /// The replay memory could not answer: `503` (fail closed).
    #[error("the service cannot verify this now")]
    Unavailable,
}

impl DpopError {
    /// The OAuth error code: `invalid_dpop_proof` for a bad proof, `use_dpop_nonce`,
    /// `invalid_token` for the token and its binding, `temporarily_unavailable` for a `503`.
    pub fn error_code(self) -> &'static str {
        match self {
            Self::NonceRequired => "use_dpop_nonce",
            Self::TokenNotBound
            | Self::KeyMismatch
            | Self::BoundTokenAsBearer
            | Self::DpopRequired => "invalid_token",
            Self::Token(TokenError::KeysUnavailable) | Self::Unavailable => {
                crate::error_body::UNAVAILABLE_CODE
            }
            Self::Token(_) => "invalid_token",
            _ => "invalid_dpop_proof",
        }
    }

    /// The client-safe description (the `Display` text, as a static string).
    pub fn description(self) -> &'static str {
        match self {
            Self::MissingProof => "a DPoP proof is required",
            Self::MultipleProofs => "more than one DPoP proof was presented",
            Self::Malformed => "the DPoP proof is malformed",
            Self::WrongType => "the DPoP proof's type is not dpop+jwt",
            Self::AlgorithmNotAllowed => "the DPoP proof's signing algorithm is not accepted",
            Self::InvalidKey => "the DPoP proof's key is missing or not accepted",
            Self::PrivateKey => "the DPoP proof's key must be a public key",
            Self::InvalidSignature => "the DPoP proof's signature is invalid",
            Self::InvalidClaims => "the DPoP proof lacks a required claim",
            Self::MethodMismatch => "the DPoP proof was made for another HTTP method",
            Self::UrlMismatch => "the DPoP proof was made for another URL",
            Self::IssuedAtOutOfWindow => {
                "the DPoP proof's issue time is outside the accepted window"
            }
            Self::AccessTokenHashMismatch => "the DPoP proof was made for another access token",
            Self::Replayed => "the DPoP proof has already been used",
            Self::NonceRequired => "the resource server requires a fresh nonce in the DPoP proof",
            Self::TokenNotBound => "the access token is not bound to a DPoP key",
            Self::KeyMismatch => "the access token is bound to another key",
            Self::BoundTokenAsBearer => {
                "a DPoP-bound access token must be presented with a DPoP proof"
            }
            Self::DpopRequired => "a DPoP-bound access token and its proof are required",
            Self::Token(error) => error.description(),
            Self::Unavailable => "the service cannot verify this now",
        }
    }

    /// `401`, or `503` when the token's keys or the replay memory cannot be reached.
    pub fn status(self) -> http::StatusCode {
        match self {
            Self::Token(TokenError::KeysUnavailable) | Self::Unavailable => {
                http::StatusCode::SERVICE_UNAVAILABLE
            }
            _ => http::StatusCode::UNAUTHORIZED,
        }
    }
}

/// What a proof that passed [`DpopPolicy::verify_proof`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    thumbprint: String,
    jti: String,
    iat: u64,
    nonce_is_current: bool,
}

impl VerifiedProof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key, base64url: what a bound token's
    /// `cnf.jkt` names.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The proof's `iat` (Unix seconds).
    pub fn issued_at(&self) -> u64 {
        self.iat
    }

    /// The key the replay memory records this proof under: its key's thumbprint and the SHA-256
    /// of its `jti` (a `jti` is unique per key, not globally; two clients may pick the same).
    pub fn replay_key(&self) -> String {
        let digest = Sha256::digest(self.jti.as_bytes());
        format!(
            "dpop:{}:{}",
            self.thumbprint,
            URL_SAFE_NO_PAD.encode(digest)
        )
    }

    /// Whether the proof carried the current server nonce (`false` also when nonces are off):
    /// with nonces on, a proof under the previous one is accepted, and the answer hands the
    /// client the current one.
    pub fn nonce_is_current(&self) -> bool {
        self.nonce_is_current
    }
}

/// The request a proof must match.
#[derive(Debug, Clone, Copy)]
pub struct ProofTarget<'a> {
    /// The request's method (`GET`, `POST`, …), compared exactly with `htm`.
    pub method: &'a str,
    /// The request's path, without its query (`/api/accounts/7`); the proof's `htu` must be the
    /// configured public origin followed by it.
    pub path: &'a str,
    /// The access token presented with the proof; its hash must be the proof's `ath`.
    pub access_token: &'a str,
}

/// Whether DPoP is accepted or required, and how proofs are judged. Cheap to clone.
///
/// The public origin (`https://api.example.com`, optionally with the path prefix under which a
/// proxy publishes the service, `https://example.com/api`) is configuration, never read from the
/// request's `Host` or forwarded headers: the `htu` a client signs is the URL it called, and only
/// the operator knows what that is behind proxies.
#[derive(Clone)]
pub struct DpopPolicy {
    required: bool,
    origin: Arc<str>,
    max_age: Duration,
    max_future: Duration,
    clock: SharedClock,
    replay: Arc<dyn ProofReplay>,
    replay_is_default: bool,
    nonces: Option<DpopNonces>,
}

impl DpopPolicy {
    /// DPoP accepted: a `DPoP` presentation is checked in full, a bearer token passes unless it
    /// is DPoP-bound. `origin` is the service's public origin (see the [type docs](Self)).
    pub fn optional(origin: &str) -> Result<Self, Error> {
        Self::new(origin, false)
    }

    /// DPoP required: only DPoP-bound tokens with their proof are accepted; challenges use the
    /// `DPoP` scheme alone.
    pub fn required(origin: &str) -> Result<Self, Error> {
        Self::new(origin, true)
    }

    fn new(origin: &str, required: bool) -> Result<Self, Error> {
        crate::www_authenticate::check_url(origin)?;
        let origin = url::normalize_origin(origin)
            .ok_or(Error::Config("the DPoP origin has a query or is not a URL"))?;
        let clock: SharedClock = Arc::new(SystemClock);
        Ok(Self {
            required,
            origin: origin.into(),
            max_age: Duration::from_secs(60),
            max_future: Duration::from_secs(5),
            replay: Arc::new(InProcessReplay::new().with_clock(clock.clone())),
            clock,
            replay_is_default: true,
            nonces: None,
        })
    }

    /// Whether every token must be DPoP-bound.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The normalized public origin proofs' `htu` is judged against.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// How old (default 60 s) and how far in the future (default 5 s) a proof's `iat` may be;
    /// at most 5 minutes and 1 minute.
    pub fn with_window(mut self, past: Duration, future: Duration) -> Result<Self, Error> {
        if past > Duration::from_secs(300) || future > Duration::from_secs(60) {
            return Err(Error::Config(
                "a DPoP window above 5 minutes past or 1 minute ahead is refused",
            ));
        }
        self.max_age = past;
        self.max_future = future;
        Ok(self)
    }

    /// The clock `iat` and nonces are judged by (also that of the default in-process replay
    /// memory).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        if self.replay_is_default {
            self.replay = Arc::new(InProcessReplay::new().with_clock(clock.clone()));
        }
        self.clock = clock;
        self
    }

    /// Where proofs are remembered, so that each is accepted once: stepup's engine (`Mfa`, its
    /// ephemeral store shared by every instance) or your own. The default,
    /// [`InProcessReplay`], remembers within this process only: right for a single instance.
    pub fn with_replay(self, replay: impl ProofReplay) -> Self {
        self.with_shared_replay(Arc::new(replay))
    }

    /// [`with_replay`](Self::with_replay) with a policy shared with other layers.
    pub fn with_shared_replay(mut self, replay: Arc<dyn ProofReplay>) -> Self {
        self.replay = replay;
        self.replay_is_default = false;
        self
    }

    /// Requires a server nonce in every proof (RFC 9449 §9): a proof without the current (or
    /// the previous) one is answered `401 use_dpop_nonce` with a fresh `DPoP-Nonce`.
    pub fn with_nonces(mut self, nonces: DpopNonces) -> Self {
        self.nonces = Some(nonces);
        self
    }

    /// The replay memory.
    pub fn replay(&self) -> &Arc<dyn ProofReplay> {
        &self.replay
    }

    /// How long a proof is remembered: the whole `iat` window and a second, so that a proof
    /// forgotten by the replay memory is refused as too old.
    pub fn replay_ttl(&self) -> Duration {
        self.max_age + self.max_future + Duration::from_secs(1)
    }

    /// The nonce to hand clients now (`DPoP-Nonce`), when nonces are on.
    pub fn current_nonce(&self) -> Option<String> {
        self.nonces
            .as_ref()
            .map(|nonces| nonces.issue(self.clock.unix_seconds()))
    }

    /// Every check of `proof` against `target` and the token's `cnf.jkt` (`bound_to`, `None`
    /// when the token has none), except the replay check: see the [module docs](self).
    pub fn verify_proof(
        &self,
        proof: &str,
        target: ProofTarget<'_>,
        bound_to: Option<&str>,
    ) -> Result<VerifiedProof, DpopError> {
        let verified = self.check(proof, target.method, target.path, Some(target.access_token))?;
        match bound_to {
            None => Err(DpopError::TokenNotBound),
            Some(jkt) if jkt != verified.thumbprint => Err(DpopError::KeyMismatch),
            Some(_) => Ok(verified),
        }
    }

    /// The checks of a proof sent to an authorization server's token endpoint, or with any
    /// request that asks for a token to be bound (RFC 9449 §5): every check of
    /// [`verify_proof`](Self::verify_proof) but `ath` and the binding, as no access token is
    /// presented. The replay check is the caller's ([`VerifiedProof::replay_key`]), and the
    /// issued token names [`VerifiedProof::thumbprint`].
    pub fn verify_token_request_proof(
        &self,
        proof: &str,
        method: &str,
        path: &str,
    ) -> Result<VerifiedProof, DpopError> {
        self.check(proof, method, path, None)
    }

    fn check(
        &self,
        proof: &str,
        method: &str,
        path: &str,
        access_token: Option<&str>,
    ) -> Result<VerifiedProof, DpopError> {
        if proof.len() > MAX_PROOF_LEN {
            return Err(DpopError::Malformed);
        }
        let (algorithm, jwk) = read_header(proof)?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| DpopError::InvalidKey)?;
        crate::token::crypto_provider();
        let mut validation = Validation::new(algorithm);
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
            .map_err(|error| {
                use jsonwebtoken::errors::ErrorKind;
                match error.kind() {
                    ErrorKind::InvalidSignature => DpopError::InvalidSignature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        DpopError::AlgorithmNotAllowed
                    }
                    ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidEddsaKey
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidKeyFormat => DpopError::InvalidKey,
                    ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) => {
                        DpopError::InvalidClaims
                    }
                    _ => DpopError::Malformed,
                }
            })?
            .claims;
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(DpopError::InvalidClaims);
        }
        if claims.htm != method {
            return Err(DpopError::MethodMismatch);
        }
        let expected = format!("{}{}", self.origin, path);
        match url::normalize_htu(&claims.htu) {
            Some(htu) if htu == url::normalize_path_encoding(&expected) => {}
            _ => return Err(DpopError::UrlMismatch),
        }
        let now = self.clock.unix_seconds();
        let oldest = now.saturating_sub(self.max_age.as_secs());
        let latest = now.saturating_add(self.max_future.as_secs());
        if claims.iat < oldest || claims.iat > latest {
            return Err(DpopError::IssuedAtOutOfWindow);
        }
        if let Some(access_token) = access_token {
            let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()));
            if claims.ath.as_deref() != Some(ath.as_str()) {
                return Err(if claims.ath.is_none() {
                    DpopError::InvalidClaims
                } else {
                    DpopError::AccessTokenHashMismatch
                });
            }
        }
        let thumbprint = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|_| DpopError::InvalidKey)?;
        let nonce_is_current = match &self.nonces {
            None => false,
            Some(nonces) => match claims
                .nonce
                .as_deref()
                .map(|nonce| nonces.check(nonce, now))
            {
                Some(Some(current)) => current,
                _ => return Err(DpopError::NonceRequired),
            },
        };
        Ok(VerifiedProof {
            thumbprint,
            jti: claims.jti,
            iat: claims.iat,
            nonce_is_current,
        })
    }

    /// Whether nonces are on.
    pub fn uses_nonces(&self) -> bool {
        self.nonces.is_some()
    }
}

impl fmt::Debug for DpopPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopPolicy")
            .field("required", &self.required)
            .field("origin", &self.origin)
            .field("max_age", &self.max_age)
            .field("max_future", &self.max_future)
            .field("nonces", &self.nonces.is_some())
            .finish_non_exhaustive()
    }
}

/// The claims of a proof.
#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: u64,
    #[serde(default)]
    ath: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
}

/// The proof's algorithm and public key, from its header: `typ`, `alg` and `jwk` checked before
/// any signature is.
fn read_header(proof: &str) -> Result<(Algorithm, Jwk), DpopError> {
    let mut parts = proof.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(DpopError::Malformed);
    };
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| DpopError::Malformed)?;
    let header: Value = serde_json::from_slice(&header).map_err(|_| DpopError::Malformed)?;
    let Value::Object(header) = header else {
        return Err(DpopError::Malformed);
    };
    match header.get("typ").and_then(Value::as_str) {
        Some(typ) if typ.eq_ignore_ascii_case("dpop+jwt") => {}
        _ => return Err(DpopError::WrongType),
    }
    let algorithm = match header.get("alg").and_then(Value::as_str) {
        Some("ES256") => Algorithm::ES256,
        Some("EdDSA") => Algorithm::EdDSA,
        Some("PS256") => Algorithm::PS256,
        _ => return Err(DpopError::AlgorithmNotAllowed),
    };
    // Extensions that must be understood are not: none is defined for DPoP proofs.
    if header.contains_key("crit") {
        return Err(DpopError::Malformed);
    }
    let Some(Value::Object(jwk)) = header.get("jwk") else {
        return Err(DpopError::InvalidKey);
    };
    if PRIVATE_MEMBERS
        .iter()
        .any(|member| jwk.contains_key(*member))
    {
        return Err(DpopError::PrivateKey);
    }
    let text = |name: &str| jwk.get(name).and_then(Value::as_str);
    let fits = match algorithm {
        Algorithm::ES256 => text("kty") == Some("EC") && text("crv") == Some("P-256"),
        Algorithm::EdDSA => text("kty") == Some("OKP") && text("crv") == Some("Ed25519"),
        Algorithm::PS256 => {
            text("kty") == Some("RSA")
                && text("n").is_some_and(|n| {
                    URL_SAFE_NO_PAD
                        .decode(n)
                        .is_ok_and(|n| n.len() >= MIN_RSA_MODULUS_LEN)
                })
        }
        _ => false,
    };
    if !fits {
        return Err(DpopError::InvalidKey);
    }
    if let Some(alg) = text("alg")
        && alg
            != header
                .get("alg")
                .and_then(Value::as_str)
                .unwrap_or_default()
    {
        return Err(DpopError::InvalidKey);
    }
    let jwk: Jwk =
        serde_json::from_value(Value::Object(jwk.clone())).map_err(|_| DpopError::InvalidKey)?;
    Ok((algorithm, jwk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_the_display_text_and_codes_follow_the_rfc() {
        let all = [
            DpopError::MissingProof,
            DpopError::MultipleProofs,
            DpopError::Malformed,
            DpopError::WrongType,
            DpopError::AlgorithmNotAllowed,
            DpopError::InvalidKey,
            DpopError::PrivateKey,
            DpopError::InvalidSignature,
            DpopError::InvalidClaims,
            DpopError::MethodMismatch,
            DpopError::UrlMismatch,
            DpopError::IssuedAtOutOfWindow,
            DpopError::AccessTokenHashMismatch,
            DpopError::Replayed,
            DpopError::NonceRequired,
            DpopError::TokenNotBound,
            DpopError::KeyMismatch,
            DpopError::BoundTokenAsBearer,
            DpopError::DpopRequired,
            DpopError::Token(TokenError::Expired),
            DpopError::Token(TokenError::KeysUnavailable),
            DpopError::Unavailable,
        ];
        for error in all {
            assert_eq!(error.description(), error.to_string(), "{error:?}");
        }
        assert_eq!(DpopError::Replayed.error_code(), "invalid_dpop_proof");
        assert_eq!(DpopError::NonceRequired.error_code(), "use_dpop_nonce");
        assert_eq!(DpopError::KeyMismatch.error_code(), "invalid_token");
        assert_eq!(
            DpopError::Unavailable.status(),
            http::StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn the_policy_refuses_unsafe_settings() {
        assert!(DpopPolicy::optional("http://api.example.com").is_err());
        assert!(DpopPolicy::optional("https://api.example.com/?q").is_err());
        assert!(DpopPolicy::optional("https://api.example.com#f").is_err());
        assert!(DpopPolicy::optional("http://localhost:8080").is_ok());
        let policy = DpopPolicy::required("https://API.example.com/base/").unwrap();
        assert_eq!(policy.origin(), "https://api.example.com/base");
        assert_eq!(policy.replay_ttl(), Duration::from_secs(66));
        assert!(
            policy
                .clone()
                .with_window(Duration::from_secs(301), Duration::ZERO)
                .is_err()
        );
        assert!(
            policy
                .with_window(Duration::from_secs(30), Duration::from_secs(61))
                .is_err()
        );
    }
}
