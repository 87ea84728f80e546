use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation, decode};
use serde::Deserialize;

use super::{AccessTokenClaims, JwkSet, VerifyingKey};
use crate::acr::AcrLevels;
use crate::clock::{SharedClock, SystemClock};
use crate::context::AuthContext;
use crate::{Error, TokenError};

/// Tokens longer than this are refused before any parsing (8 KiB, a common header-size limit).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Checks access tokens: signature under an allowed key, `iss`, `aud`, `exp`, `nbf` and
/// `auth_time` (with leeway, by the injected clock). Verify-only: it works with tokens from any
/// issuer, stepup's or an external identity provider's. Cheap to clone.
///
/// A token naming a `kid` is checked only by the key of that `kid`: it is refused
/// ([`TokenError::UnknownKey`]) when no configured key has it, also when a single key is
/// configured, with another `kid` or none.
///
/// ```
/// use stepup_core::token::{JwtVerifier, VerifyingKey};
///
/// let verifier = JwtVerifier::builder()
///     .key(VerifyingKey::hs256(b"an example secret of at least 32 bytes")?.with_kid("k1"))
///     .issuer("https://auth.example.com")
///     .audience("https://api.example.com")
///     .build()?;
/// assert!(verifier.verify("not-a-token").is_err());
/// # Ok::<(), stepup_core::Error>(())
/// ```
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Vec<PreparedKey>,
    leeway: u64,
    clock: SharedClock,
    levels: AcrLevels,
}

/// A key with its `jsonwebtoken` validation rules, built once rather than per request.
struct PreparedKey {
    key: VerifyingKey,
    validation: Validation,
}

impl JwtVerifier {
    /// Starts a verifier.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::default()
    }

    /// Verifies `token` and returns the caller's context.
    pub fn verify(&self, token: &str) -> Result<AuthContext, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let prepared = self.select_key(token)?;
        let data = decode::<AccessTokenClaims>(token, &prepared.key.key, &prepared.validation)?;
        // A named token must name the key that verified it, also when that key is the only one,
        // and when it has no name at all. (With several keys `select_key` has already made sure.)
        if let Some(named) = &data.header.kid
            && prepared.key.kid.as_deref() != Some(named.as_str())
        {
            return Err(TokenError::UnknownKey);
        }
        let claims = data.claims;

        let now = self.inner.clock.unix_seconds();
        if claims.exp.saturating_add(self.inner.leeway) < now {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.inner.leeway))
        {
            return Err(TokenError::NotYetValid);
        }
        // An authentication that has not happened yet would pass any `max_age`.
        if claims
            .auth_time
            .is_some_and(|auth_time| auth_time > now.saturating_add(self.inner.leeway))
        {
            return Err(TokenError::AuthTimeInFuture);
        }

        let mut context = AuthContext::builder(claims.sub)
            .amr(claims.amr)
            .expires_at(claims.exp)
            .verified_at(now)
            .leeway(Duration::from_secs(self.inner.leeway))
            .levels(self.inner.levels.clone());
        if let Some(acr) = claims.acr {
            context = context.acr(acr);
        }
        if let Some(auth_time) = claims.auth_time {
            context = context.auth_time(auth_time);
        }
        if let Some(scope) = claims.scope {
            context = context.scope(scope);
        }
        if let Some(iat) = claims.iat {
            context = context.issued_at(iat);
        }
        if let Some(jti) = claims.jti {
            context = context.token_id(jti);
        }
        Ok(context.build())
    }

    /// The level order given to every context this verifier produces.
    pub fn levels(&self) -> &AcrLevels {
        &self.inner.levels
    }

    /// The key to check `token` with. With one key there is nothing to choose: `decode` refuses
    /// any other `alg`, and `verify` any other `kid`. With several, a `kid` names exactly one, and
    /// without a `kid` the token's `alg` must match exactly one key.
    fn select_key(&self, token: &str) -> Result<&PreparedKey, TokenError> {
        let keys = &self.inner.keys;
        if let [only] = keys.as_slice() {
            return Ok(only);
        }
        let (encoded_header, _) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let header_json = URL_SAFE_NO_PAD
            .decode(encoded_header)
            .map_err(|_| TokenError::Malformed)?;
        let hint: KeyHint<'_> =
            serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
        let prepared = match &hint.kid {
            Some(kid) => keys
                .iter()
                .find(|prepared| prepared.key.kid.as_deref() == Some(kid.as_ref()))
                .ok_or(TokenError::UnknownKey)?,
            None => {
                let mut candidates = keys
                    .iter()
                    .filter(|prepared| prepared.key.algorithm == hint.alg);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => only,
                    (None, _) => return Err(TokenError::AlgorithmNotAllowed),
                    (Some(_), Some(_)) => return Err(TokenError::UnknownKey),
                }
            }
        };
        if prepared.key.algorithm != hint.alg {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        Ok(prepared)
    }
}

/// The two header fields that select a key among several, read without
/// `jsonwebtoken::decode_header`, which parses every header field into a flattened map and would
/// add a third full header parse to each request. Only the choice of key rests on this: `decode`
/// then parses the header itself and refuses an `alg` other than the chosen key's.
#[derive(Deserialize)]
struct KeyHint<'a> {
    alg: Algorithm,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field(
                "keys",
                &self
                    .inner
                    .keys
                    .iter()
                    .map(|prepared| &prepared.key)
                    .collect::<Vec<_>>(),
            )
            .field("leeway", &self.inner.leeway)
            .finish_non_exhaustive()
    }
}

/// Builds a [`JwtVerifier`]. Issuer, audience and at least one key are required.
#[derive(Debug)]
pub struct JwtVerifierBuilder {
    keys: Vec<VerifyingKey>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Duration,
    clock: SharedClock,
    levels: AcrLevels,
}

impl Default for JwtVerifierBuilder {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            levels: AcrLevels::default(),
        }
    }
}

impl JwtVerifierBuilder {
    /// Accepts tokens signed by `key`. Keys with `kid`s must have distinct ones.
    pub fn key(mut self, key: VerifyingKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Accepts tokens signed by any key of a static JWK set.
    pub fn jwk_set(mut self, set: &JwkSet) -> Result<Self, Error> {
        for jwk in &set.keys {
            self.keys.push(VerifyingKey::from_jwk(jwk)?);
        }
        Ok(self)
    }

    /// Accepts tokens whose `iss` is `issuer` (may be called several times).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` contains `audience` (may be called several times).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `auth_time` (default 30 s, at most 5 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The clock `exp`, `nbf` and freshness are judged by.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The `acr` order (default `pwd` < `mfa` < `phr`).
    pub fn acr_levels(mut self, levels: AcrLevels) -> Self {
        self.levels = levels;
        self
    }

    /// Checks the settings and prepares the keys.
    pub fn build(self) -> Result<JwtVerifier, Error> {
        if self.keys.is_empty() {
            return Err(Error::Config("the verifier needs at least one key"));
        }
        if self.issuers.is_empty() {
            return Err(Error::Config("the verifier needs the expected issuer"));
        }
        if self.audiences.is_empty() {
            return Err(Error::Config("the verifier needs the expected audience"));
        }
        if self.leeway > Duration::from_secs(300) {
            return Err(Error::Config("a leeway above 5 minutes is refused"));
        }
        for (index, key) in self.keys.iter().enumerate() {
            let duplicate = key.kid.is_some()
                && self.keys[..index]
                    .iter()
                    .any(|earlier| earlier.kid == key.kid);
            if duplicate {
                return Err(Error::Config("two keys share one kid"));
            }
        }
        let keys = self
            .keys
            .into_iter()
            .map(|key| {
                let mut validation = Validation::new(key.algorithm);
                validation.set_issuer(&self.issuers);
                validation.set_audience(&self.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                // Time claims are checked in `verify` against the injected clock.
                validation.validate_exp = false;
                validation.validate_nbf = false;
                PreparedKey { key, validation }
            })
            .collect();
        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                keys,
                leeway: self.leeway.as_secs(),
                clock: self.clock,
                levels: self.levels,
            }),
        })
    }
}
