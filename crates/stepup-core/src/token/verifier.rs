use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation, decode};
use serde::Deserialize;

use super::cache::{Expiring, VerifiedCache};
use super::{AccessTokenClaims, JwkSet, VerifyingKey};
use crate::acr::AcrLevels;
use crate::clock::{SharedClock, SystemClock};
use crate::context::AuthContext;
use crate::{Error, TokenError};

/// Tokens longer than this are refused before any parsing (8 KiB, a common header-size limit).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The default number of verified tokens a verifier keeps
/// ([`JwtVerifierBuilder::with_cache_capacity`]).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

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
    /// Verified tokens, tied to `keys`: built with them and never shared with another verifier.
    cache: Option<VerifiedCache<AccessTokenClaims>>,
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
    ///
    /// A token verified before (by this verifier, and still in its cache) skips the signature
    /// check and the claims parse; its `exp`, `nbf` and `auth_time` are judged against the clock
    /// all the same, by the same rules. See [`JwtVerifierBuilder::with_cache_capacity`].
    pub fn verify(&self, token: &str) -> Result<AuthContext, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let Some(cache) = &self.inner.cache else {
            let claims = self.decode(token)?;
            let now = self.inner.clock.unix_seconds();
            self.check_times(&claims, now)?;
            return Ok(self.context(claims, now));
        };
        let now = self.inner.clock.unix_seconds();
        let key = cache.key_of(token);
        if let Some(claims) = key.and_then(|key| cache.get(key, token, now)) {
            self.check_times(&claims, now)?;
            return Ok(self.context(AccessTokenClaims::clone(&claims), now));
        }
        // Only a token that passes every check is kept: a failure is judged afresh next time.
        let claims = self.decode(token)?;
        self.check_times(&claims, now)?;
        if let Some(key) = key {
            cache.insert(key, token, Arc::new(claims.clone()), now);
        }
        Ok(self.context(claims, now))
    }

    /// The signature under the selected key, the `kid`, `iss`, `aud` and the required claims:
    /// everything but the time claims, which depend on when the token is presented.
    fn decode(&self, token: &str) -> Result<AccessTokenClaims, TokenError> {
        let prepared = self.select_key(token)?;
        let data = decode::<AccessTokenClaims>(token, &prepared.key.key, &prepared.validation)?;
        // A named token must name the key that verified it, also when that key is the only one,
        // and when it has no name at all. (With several keys `select_key` has already made sure.)
        if let Some(named) = &data.header.kid
            && prepared.key.kid.as_deref() != Some(named.as_str())
        {
            return Err(TokenError::UnknownKey);
        }
        Ok(data.claims)
    }

    /// `exp`, `nbf` and `auth_time` at `now`, with the leeway: the one judgement of time, made on
    /// every request, for a freshly decoded token and a cached one alike.
    fn check_times(&self, claims: &AccessTokenClaims, now: u64) -> Result<(), TokenError> {
        let leeway = self.inner.leeway;
        if claims.exp.saturating_add(leeway) < now {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(leeway))
        {
            return Err(TokenError::NotYetValid);
        }
        // An authentication that has not happened yet would pass any `max_age`.
        if claims
            .auth_time
            .is_some_and(|auth_time| auth_time > now.saturating_add(leeway))
        {
            return Err(TokenError::AuthTimeInFuture);
        }
        Ok(())
    }

    /// The caller's context from verified claims, verified at `now`.
    fn context(&self, claims: AccessTokenClaims, now: u64) -> AuthContext {
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
        context.build()
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

impl Expiring for AccessTokenClaims {
    fn exp(&self) -> u64 {
        self.exp
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
            .field(
                "cache_capacity",
                &self
                    .inner
                    .cache
                    .as_ref()
                    .map_or(0, |cache| cache.capacity()),
            )
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
    cache_capacity: usize,
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
            cache_capacity: DEFAULT_CACHE_CAPACITY,
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

    /// How many verified tokens to keep (default [`DEFAULT_CACHE_CAPACITY`]; 0 keeps none).
    ///
    /// A token presented again is then found by its signature and, once compared whole with the
    /// token stored, skips the signature check and the claims parse (a token not in the cache, a
    /// forged one included, costs no digest of the token); `exp`, `nbf` and `auth_time` are still judged on
    /// every request. A cached entry ends when the clock reaches the token's `exp` (within the
    /// leeway after it, the token is verified in full each time), only successful verifications
    /// are kept, and the cache belongs to this verifier and its keys alone. Memory: at most
    /// `capacity` entries, each the token's claims plus about 100 bytes.
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Checks the settings and prepares the keys.
    pub fn build(self) -> Result<JwtVerifier, Error> {
        super::crypto_provider();
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
                cache: VerifiedCache::new(self.cache_capacity),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::{Value, json};

    use super::*;
    use crate::clock::ManualClock;
    use crate::token::{Grant, JwtIssuer, SigningKey};

    const T0: u64 = 1_800_000_000;
    const SECRET: &[u8] = b"unit-test secret of thirty-two bytes+";
    const OTHER_SECRET: &[u8] = b"another secret, thirty-two bytes long";

    fn issuer(clock: &ManualClock) -> JwtIssuer {
        JwtIssuer::new(SigningKey::hs256(SECRET).unwrap())
            .with_issuer("https://auth.unit")
            .with_audience("https://api.unit")
            .with_clock(Arc::new(clock.clone()))
    }

    fn verifier(clock: &ManualClock, capacity: usize) -> JwtVerifier {
        issuer(clock)
            .verifier()
            .with_cache_capacity(capacity)
            .build()
            .unwrap()
    }

    fn cached(verifier: &JwtVerifier) -> usize {
        verifier.inner.cache.as_ref().map_or(0, |cache| cache.len())
    }

    fn mfa_token(issuer: &JwtIssuer, subject: &str) -> String {
        let grant = Grant::new(subject).acr("mfa").amr(["pwd", "otp"]);
        issuer.issue(&grant).unwrap().access_token
    }

    /// HS256 over arbitrary claims (with `nbf`, which the issuer never writes).
    fn sign(claims: &Value, secret: &[u8]) -> String {
        crate::token::crypto_provider();
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    fn timed_claims() -> Value {
        json!({
            "iss": "https://auth.unit",
            "aud": "https://api.unit",
            "sub": "user-1",
            "iat": T0,
            "nbf": T0 + 100,
            "auth_time": T0 + 120,
            "exp": T0 + 600,
        })
    }

    #[test]
    fn a_cached_token_past_its_exp_is_refused() {
        let clock = ManualClock::at_unix(T0);
        let issuer = issuer(&clock).with_ttl(Duration::from_secs(600));
        let verifier = verifier(&clock, 100);
        let token = mfa_token(&issuer, "user-1");

        assert!(verifier.verify(&token).is_ok());
        assert_eq!(cached(&verifier), 1);
        clock.set_unix(T0 + 599);
        let hit = verifier.verify(&token).unwrap();
        assert_eq!((hit.subject(), hit.verified_at()), ("user-1", T0 + 599));
        assert_eq!(cached(&verifier), 1);

        // From `exp` on the entry is gone; within the leeway the token is verified in full (and
        // accepted, as without a cache), beyond it refused.
        clock.set_unix(T0 + 600);
        assert!(verifier.verify(&token).is_ok());
        assert_eq!(cached(&verifier), 0);
        clock.set_unix(T0 + 630);
        assert!(verifier.verify(&token).is_ok());
        assert_eq!(cached(&verifier), 0);
        clock.set_unix(T0 + 631);
        assert_eq!(verifier.verify(&token).unwrap_err(), TokenError::Expired);
        clock.set_unix(T0 + 10_000);
        assert_eq!(verifier.verify(&token).unwrap_err(), TokenError::Expired);
        assert_eq!(cached(&verifier), 0);
    }

    #[test]
    fn a_forged_signature_over_the_same_claims_is_no_hit_and_is_refused() {
        let clock = ManualClock::at_unix(T0);
        let verifier = verifier(&clock, 100);
        let token = mfa_token(&issuer(&clock), "user-1");
        assert!(verifier.verify(&token).is_ok());
        assert_eq!(cached(&verifier), 1);

        let (signed, signature) = token.rsplit_once('.').unwrap();
        // The same header and claims under another secret, and with one signature byte changed.
        let other_key = EncodingKey::from_secret(OTHER_SECRET).unwrap();
        let forged_signature =
            jsonwebtoken::crypto::sign(signed.as_bytes(), &other_key, Algorithm::HS256).unwrap();
        let mut flipped = signature.as_bytes().to_vec();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        for forged in [
            format!("{signed}.{forged_signature}"),
            format!("{signed}.{flipped}"),
            format!("{signed}."),
            signed.to_owned(),
        ] {
            assert_ne!(forged, token);
            assert!(verifier.verify(&forged).is_err(), "{forged}");
            // Again, in case a failure had been cached: still refused, still not cached.
            assert!(verifier.verify(&forged).is_err(), "{forged}");
            assert_eq!(cached(&verifier), 1);
        }
        assert_eq!(
            verifier
                .verify(&format!("{signed}.{forged_signature}"))
                .unwrap_err(),
            TokenError::InvalidSignature
        );
        assert!(verifier.verify(&token).is_ok());
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let clock = ManualClock::at_unix(T0);
        let issuer = issuer(&clock);
        for capacity in [1, 10, 1_000] {
            let verifier = verifier(&clock, capacity);
            let tokens: Vec<String> = (0..capacity * 3 + 7)
                .map(|n| mfa_token(&issuer, &format!("user-{n}")))
                .collect();
            for (n, token) in tokens.iter().enumerate() {
                assert_eq!(
                    verifier.verify(token).unwrap().subject(),
                    format!("user-{n}")
                );
                assert!(cached(&verifier) <= capacity);
            }
            // Evicted or not, every token still verifies, and the cache still holds at most its
            // capacity.
            for (n, token) in tokens.iter().enumerate().rev() {
                assert_eq!(
                    verifier.verify(token).unwrap().subject(),
                    format!("user-{n}")
                );
            }
            assert!(cached(&verifier) <= capacity);
            assert!(cached(&verifier) > 0);
        }
    }

    #[test]
    fn a_zero_capacity_disables_the_cache() {
        let clock = ManualClock::at_unix(T0);
        let verifier = verifier(&clock, 0);
        assert!(verifier.inner.cache.is_none());
        let token = mfa_token(&issuer(&clock), "user-1");
        assert!(verifier.verify(&token).is_ok());
        assert!(verifier.verify(&token).is_ok());
        assert_eq!(cached(&verifier), 0);
        assert_eq!(
            JwtVerifier::builder()
                .key(VerifyingKey::hs256(SECRET).unwrap())
                .issuer("i")
                .audience("a")
                .build()
                .unwrap()
                .inner
                .cache
                .as_ref()
                .map(|cache| cache.capacity()),
            Some(DEFAULT_CACHE_CAPACITY)
        );
    }

    /// The same token, judged at each second around its `nbf`, `auth_time` and `exp` (forward, and
    /// then backwards, as a corrected clock may move), by a cached and an uncached verifier: the
    /// same answer every time.
    #[test]
    fn hits_judge_exp_nbf_and_auth_time_exactly_as_misses() {
        let clock = ManualClock::at_unix(T0 + 200);
        let with_cache = verifier(&clock, 100);
        let without = verifier(&clock, 0);
        let token = sign(&timed_claims(), SECRET);
        // Cached once, while valid.
        assert!(with_cache.verify(&token).is_ok());
        assert_eq!(cached(&with_cache), 1);

        let forward = T0..T0 + 700;
        let mut seen = Vec::new();
        for now in forward.clone().chain(forward.rev()) {
            clock.set_unix(now);
            let expected = without.verify(&token).map(|context| context.verified_at());
            let got = with_cache
                .verify(&token)
                .map(|context| context.verified_at());
            assert_eq!(got, expected, "at T0 + {}", now - T0);
            if let Err(error) = got {
                seen.push(error);
            }
        }
        for error in [
            TokenError::NotYetValid,
            TokenError::AuthTimeInFuture,
            TokenError::Expired,
        ] {
            assert!(seen.contains(&error), "{error:?} never seen");
        }
    }

    #[test]
    fn a_failure_is_never_cached() {
        let clock = ManualClock::at_unix(T0);
        let verifier = verifier(&clock, 100);
        // Not valid yet, then valid: judged afresh, and cached only once it passes.
        let token = sign(&timed_claims(), SECRET);
        assert_eq!(
            verifier.verify(&token).unwrap_err(),
            TokenError::NotYetValid
        );
        assert_eq!(cached(&verifier), 0);
        clock.set_unix(T0 + 200);
        assert!(verifier.verify(&token).is_ok());
        assert_eq!(cached(&verifier), 1);

        // Refused by this verifier's key; a verifier with the signer's key accepts it.
        let stranger = sign(&timed_claims(), OTHER_SECRET);
        assert_eq!(
            verifier.verify(&stranger).unwrap_err(),
            TokenError::InvalidSignature
        );
        assert_eq!(cached(&verifier), 1);
        let rotated = JwtVerifier::builder()
            .key(VerifyingKey::hs256(OTHER_SECRET).unwrap())
            .issuer("https://auth.unit")
            .audience("https://api.unit")
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        assert!(rotated.verify(&stranger).is_ok());
    }

    #[test]
    fn the_cache_belongs_to_its_verifier_and_its_keys() {
        let clock = ManualClock::at_unix(T0);
        let verifier = verifier(&clock, 100);
        let token = mfa_token(&issuer(&clock), "user-1");
        assert!(verifier.verify(&token).is_ok());
        // Clones share the cache (same keys).
        assert!(verifier.clone().verify(&token).is_ok());
        assert_eq!(cached(&verifier), 1);
        // A verifier with other keys has its own, empty cache and refuses the token.
        let rotated = JwtVerifier::builder()
            .key(VerifyingKey::hs256(OTHER_SECRET).unwrap())
            .issuer("https://auth.unit")
            .audience("https://api.unit")
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        assert_eq!(
            rotated.verify(&token).unwrap_err(),
            TokenError::InvalidSignature
        );
        assert_eq!(cached(&rotated), 0);
    }
}
