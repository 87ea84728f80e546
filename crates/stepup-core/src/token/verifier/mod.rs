//! How a token is verified: its issuer chosen by `iss`, its key by `kid`, the signature, the
//! claims read by the issuer's profile and judged by the injected clock, and the verified-token
//! cache. The builder, which checks the configuration, is in [`builder`].

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation, decode};
use serde::Deserialize;

use super::AccessTokenClaims;
use super::cache::{Expiring, VerifiedCache};
use super::keyset::{KeyEntry, KeySet, NoKey, peek_issuer};
#[cfg(feature = "jwks")]
use super::remote::RemoteKeys;
use crate::TokenError;
use crate::acr::AcrLevels;
use crate::clock::SharedClock;
use crate::context::AuthContext;
use crate::profile::{AudienceRule, IdpProfile};

mod builder;

pub use builder::{JwtVerifierBuilder, TrustedIssuer};

/// Tokens longer than this are refused before any parsing (8 KiB, a common header-size limit).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The default number of verified tokens a verifier keeps
/// ([`JwtVerifierBuilder::with_cache_capacity`]).
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Checks access tokens: signature under an allowed key, `iss`, `aud`, `exp`, `nbf` and
/// `auth_time` (with leeway, by the injected clock). Verify-only: it works with tokens from any
/// issuer, stepup's or an external identity provider's. Cheap to clone.
///
/// Keys are static ([`JwtVerifierBuilder::key`], [`JwtVerifierBuilder::jwk_set`]) or, with the
/// `jwks` feature, fetched from a JWKS URL or by OIDC discovery and kept fresh in the background
/// ([`JwtVerifierBuilder::jwks_url`], [`JwtVerifierBuilder::discover`]). Several issuers may be
/// trusted at once ([`JwtVerifierBuilder::trust`]): a token's `iss` chooses the issuer before
/// any signature is checked, then its `kid` the key; each issuer has its own audience and
/// [profile](crate::profile), and each key accepts exactly one algorithm, never the token's
/// choice.
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
    trusts: Vec<Trust>,
    /// `iss` → trust, when there are several (with one, `iss` is checked by its validation).
    by_issuer: Option<HashMap<String, usize>>,
    leeway: u64,
    clock: SharedClock,
    /// Verified tokens, tied to this verifier's keys: built with them and never shared.
    cache: Option<VerifiedCache<Verified>>,
}

/// One trusted issuer, prepared.
struct Trust {
    issuers: Vec<String>,
    audiences: Vec<String>,
    audience_rule: AudienceRule,
    profile: Option<IdpProfile>,
    levels: AcrLevels,
    /// The `jsonwebtoken` validation for each allowed algorithm, built once.
    validations: Vec<(Algorithm, Validation)>,
    keys: Keys,
}

enum Keys {
    Static(KeySet),
    #[cfg(feature = "jwks")]
    Remote(RemoteKeys),
}

/// What a verification produced: what the cache keeps and the context is built from.
struct Verified {
    claims: Normalized,
    /// The trusted issuer, whose key-set refresh a cache hit may wake.
    #[cfg(feature = "jwks")]
    trust: usize,
    key: Arc<KeyEntry>,
    /// The caller's context, built once: each presentation shares it, with its own time.
    context: AuthContext,
}

impl Expiring for Verified {
    fn exp(&self) -> u64 {
        self.claims.exp
    }
}

/// The claims read from any provider's token.
#[derive(Deserialize)]
struct RawClaims {
    sub: String,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    acr: Option<String>,
    #[serde(default)]
    acrs: Vec<String>,
    #[serde(default)]
    amr: Vec<String>,
    #[serde(default)]
    auth_time: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Scopes>,
    /// stepup's own claim: the user's generation when the token was issued.
    #[serde(default, rename = "gen")]
    generation: Option<u64>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    xms_cc: Vec<String>,
    /// Read leniently: another provider's `act` of another shape is no reason to refuse.
    #[serde(default)]
    act: Option<serde_json::Value>,
    #[serde(default)]
    authorization_details: Option<serde_json::Value>,
    #[serde(default)]
    cnf: Option<RawConfirmation>,
}

/// `cnf`: only a DPoP key thumbprint is read.
#[derive(Deserialize)]
struct RawConfirmation {
    #[serde(default)]
    jkt: Option<String>,
}

/// `scp`: a space-separated string (Entra) or an array (Okta).
#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    Text(String),
    List(Vec<String>),
}

/// Claims in stepup's terms: the level read through the issuer's profile, scopes as one string.
struct Normalized {
    sub: String,
    exp: u64,
    nbf: Option<u64>,
    iat: Option<u64>,
    jti: Option<String>,
    iss: Option<String>,
    acr: Option<String>,
    amr: Vec<String>,
    auth_time: Option<u64>,
    scope: Option<String>,
    generation: Option<u64>,
    claims_challenge_capable: bool,
    exchanged_from: Option<String>,
    authorization_details: Option<serde_json::Value>,
    key_thumbprint: Option<String>,
}

/// A refusal, and whether a key refresh was started that might change the answer.
struct Refusal {
    error: TokenError,
    #[cfg(feature = "jwks")]
    pending: Option<usize>,
}

impl From<TokenError> for Refusal {
    fn from(error: TokenError) -> Self {
        Self {
            error,
            #[cfg(feature = "jwks")]
            pending: None,
        }
    }
}

/// What [`JwtVerifier::verify_now`] found.
#[derive(Debug)]
#[must_use]
pub enum Verification {
    /// Judged at once.
    Done(Result<AuthContext, TokenError>),
    /// The token's issuer's key set is being fetched (its `kid` was unknown, or the set is still
    /// loading): [`JwtVerifier::verify_awaited`] waits for it and judges again.
    AwaitingKeys(AwaitingKeys),
}

/// A verification waiting for a key-set refresh; see [`Verification::AwaitingKeys`].
#[derive(Debug)]
pub struct AwaitingKeys {
    /// The trusted issuer whose set is fetched.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    trust: usize,
    /// Its fetches finished before the attempt: the refresh it started finishes after them.
    #[cfg_attr(not(feature = "jwks"), allow(dead_code))]
    seen: u64,
}

impl JwtVerifier {
    /// Starts a verifier.
    pub fn builder() -> JwtVerifierBuilder {
        JwtVerifierBuilder::default()
    }

    /// Verifies `token` and returns the caller's context. Synchronous: it never waits for the
    /// network (a token naming a `kid` not yet known starts a background refresh and is refused;
    /// see [`verify_async`](Self::verify_async) to wait for it).
    ///
    /// A token verified before (by this verifier, and still in its cache) skips the signature
    /// check and the claims parse, as long as its key is still in its issuer's set; its `exp`,
    /// `nbf` and `auth_time` are judged against the clock all the same, by the same rules. See
    /// [`JwtVerifierBuilder::with_cache_capacity`].
    pub fn verify(&self, token: &str) -> Result<AuthContext, TokenError> {
        self.verify_inner(token).map_err(|refusal| refusal.error)
    }

    /// Like [`verify`](Self::verify), but a token refused because its `kid` is not in its
    /// issuer's key set yet, or because the set is still loading, waits for the refresh this
    /// started (single-flight; at most the request timeout) and is judged again.
    pub async fn verify_async(&self, token: &str) -> Result<AuthContext, TokenError> {
        match self.verify_now(token) {
            Verification::Done(verdict) => verdict,
            Verification::AwaitingKeys(awaiting) => self.verify_awaited(token, awaiting).await,
        }
    }

    /// [`verify_async`](Self::verify_async) in two steps, for a middleware that answers most
    /// requests without a future of its own: the verdict now, or, for a token that waits for its
    /// issuer's key set, what [`verify_awaited`](Self::verify_awaited) finishes.
    pub fn verify_now(&self, token: &str) -> Verification {
        // The fetches finished before this attempt: a refresh it starts finishes after them.
        // (Read only where a key set is fetched: static keys, the common case, allocate nothing.)
        #[cfg(feature = "jwks")]
        let seen: Vec<u64> = if self
            .inner
            .trusts
            .iter()
            .any(|trust| matches!(trust.keys, Keys::Remote(_)))
        {
            self.inner
                .trusts
                .iter()
                .map(|trust| match &trust.keys {
                    Keys::Remote(remote) => remote.shared.finished(),
                    Keys::Static(_) => 0,
                })
                .collect()
        } else {
            Vec::new()
        };
        match self.verify_inner(token) {
            Ok(context) => Verification::Done(Ok(context)),
            #[cfg(feature = "jwks")]
            Err(Refusal {
                pending: Some(trust),
                ..
            }) => Verification::AwaitingKeys(AwaitingKeys {
                trust,
                seen: seen.get(trust).copied().unwrap_or(0),
            }),
            Err(refusal) => Verification::Done(Err(refusal.error)),
        }
    }

    /// Waits for the key-set refresh that [`verify_now`](Self::verify_now) started for `token`
    /// (at most the request timeout), then judges it again.
    pub async fn verify_awaited(
        &self,
        token: &str,
        awaiting: AwaitingKeys,
    ) -> Result<AuthContext, TokenError> {
        #[cfg(feature = "jwks")]
        if let Some(Keys::Remote(remote)) = self.inner.trusts.get(awaiting.trust).map(|t| &t.keys) {
            remote.shared.wait_past(awaiting.seen).await;
        }
        #[cfg(not(feature = "jwks"))]
        let _ = awaiting;
        self.verify(token)
    }

    fn verify_inner(&self, token: &str) -> Result<AuthContext, Refusal> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge.into());
        }
        let now_ms = self.now_ms();
        let now = now_ms / 1000;
        let key = self
            .inner
            .cache
            .as_ref()
            .and_then(|cache| cache.key_of(token));
        if let (Some(cache), Some(key)) = (&self.inner.cache, key)
            && let Some(verified) = cache.get(key, token, now)
        {
            if verified.key.usable_at(now_ms) {
                #[cfg(feature = "jwks")]
                if let Keys::Remote(remote) = &self.inner.trusts[verified.trust].keys {
                    remote.shared.wake_if_due(now_ms);
                }
                self.check_times(&verified.claims, now)?;
                return Ok(verified.context.verified_again_at(now));
            }
            // Its key has been withdrawn since: judged afresh (and refused) below.
            cache.remove(key, token);
        }
        let verified = self.decode(token, now_ms)?;
        self.check_times(&verified.claims, now)?;
        let verified = Arc::new(verified);
        // Only a token that passes every check is kept: a failure is judged afresh next time.
        if let (Some(cache), Some(key)) = (&self.inner.cache, key) {
            cache.insert(key, token, Arc::clone(&verified), now);
        }
        Ok(verified.context.verified_again_at(now))
    }

    fn now_ms(&self) -> u64 {
        self.inner
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| {
                u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
            })
    }

    /// The issuer, the key, the signature, `iss`, `aud` and the required claims: everything but
    /// the time claims, which depend on when the token is presented.
    fn decode(&self, token: &str, now_ms: u64) -> Result<Verified, Refusal> {
        let trust_index = self.select_trust(token)?;
        let trust = &self.inner.trusts[trust_index];
        let entry = match &trust.keys {
            Keys::Static(set) => select(set, token, false)?,
            #[cfg(feature = "jwks")]
            Keys::Remote(remote) => {
                remote.ensure_running();
                let Some(set) = remote.shared.snapshot() else {
                    return Err(Refusal {
                        error: TokenError::KeysUnavailable,
                        pending: Some(trust_index),
                    });
                };
                match set.select(token, true) {
                    Ok(entry) => Arc::clone(entry),
                    Err(NoKey::Refused(error)) => return Err(error.into()),
                    Err(NoKey::UnknownKid(kid)) => {
                        let started = remote.shared.unknown_kid(&kid);
                        return Err(Refusal {
                            error: TokenError::UnknownKey,
                            pending: started.then_some(trust_index),
                        });
                    }
                }
            }
        };
        if !entry.usable_at(now_ms) {
            return Err(TokenError::KeysUnavailable.into());
        }
        let validation = trust
            .validations
            .iter()
            .find(|(algorithm, _)| *algorithm == entry.key.algorithm)
            .map(|(_, validation)| validation)
            .ok_or(TokenError::AlgorithmNotAllowed)?;
        let data =
            decode::<RawClaims>(token, &entry.key.key, validation).map_err(TokenError::from)?;
        // A named token must name the key that verified it, also when that key is the only one,
        // and when it has no name at all.
        if let Some(named) = &data.header.kid
            && entry.key.kid.as_deref() != Some(named.as_str())
        {
            return Err(TokenError::UnknownKey.into());
        }
        let raw = data.claims;
        if trust.audience_rule == AudienceRule::CognitoClientId {
            let audience_ok = raw.token_use.as_deref() == Some("access")
                && raw
                    .client_id
                    .as_ref()
                    .is_some_and(|client| trust.audiences.contains(client));
            if !audience_ok {
                return Err(TokenError::InvalidAudience.into());
            }
        }
        let claims = normalize(raw, trust);
        Ok(Verified {
            context: context_of(&claims, trust, self.inner.leeway),
            claims,
            #[cfg(feature = "jwks")]
            trust: trust_index,
            key: entry,
        })
    }

    /// The trusted issuer a token claims: with several, chosen by its `iss` before any signature
    /// check (an `iss` no issuer has is refused at once).
    fn select_trust(&self, token: &str) -> Result<usize, TokenError> {
        let Some(by_issuer) = &self.inner.by_issuer else {
            return Ok(0);
        };
        let issuer = peek_issuer(token)?;
        by_issuer
            .get(&issuer)
            .copied()
            .ok_or(TokenError::InvalidIssuer)
    }

    /// `exp`, `nbf` and `auth_time` at `now`, with the leeway: the one judgement of time, made on
    /// every request, for a freshly decoded token and a cached one alike.
    fn check_times(&self, claims: &Normalized, now: u64) -> Result<(), TokenError> {
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

    /// The level order given to the contexts of the first trusted issuer.
    pub fn levels(&self) -> &AcrLevels {
        &self.inner.trusts[0].levels
    }

    /// Fetches the key sets of every remote source now (joining a fetch in flight), and returns
    /// the first error. Use it to wait for the first key set before serving, or in tests. Static
    /// keys need nothing.
    #[cfg(feature = "jwks")]
    pub async fn refresh_keys(&self) -> Result<(), super::KeySourceError> {
        let mut outcome = Ok(());
        for trust in &self.inner.trusts {
            if let Keys::Remote(remote) = &trust.keys {
                remote.ensure_running();
                if let Err(error) = remote.shared.refresh().await
                    && outcome.is_ok()
                {
                    outcome = Err(error);
                }
            }
        }
        outcome
    }
}

/// The key of a static set: a key the set does not name is an unknown key.
fn select(set: &KeySet, token: &str, read_header: bool) -> Result<Arc<KeyEntry>, TokenError> {
    match set.select(token, read_header) {
        Ok(entry) => Ok(Arc::clone(entry)),
        Err(NoKey::Refused(error)) => Err(error),
        Err(NoKey::UnknownKid(_)) => Err(TokenError::UnknownKey),
    }
}

/// The provider's claims in stepup's terms, through the issuer's profile.
fn normalize(raw: RawClaims, trust: &Trust) -> Normalized {
    let acr = match &trust.profile {
        Some(profile) => profile.level_of(raw.acr.as_deref(), &raw.acrs, &raw.amr, &trust.levels),
        None => raw.acr,
    };
    let scope = raw.scope.or(match raw.scp {
        Some(Scopes::Text(text)) => Some(text),
        Some(Scopes::List(list)) => Some(list.join(" ")),
        None => None,
    });
    Normalized {
        sub: raw.sub,
        exp: raw.exp,
        nbf: raw.nbf,
        iat: raw.iat,
        jti: raw.jti,
        iss: raw.iss,
        acr,
        amr: raw.amr,
        auth_time: raw.auth_time,
        scope,
        generation: raw.generation,
        claims_challenge_capable: raw.xms_cc.iter().any(|capability| capability == "cp1"),
        exchanged_from: raw
            .act
            .as_ref()
            .and_then(|act| act.get("iss"))
            .and_then(|iss| iss.as_str())
            .map(str::to_owned),
        authorization_details: raw.authorization_details,
        key_thumbprint: raw.cnf.and_then(|cnf| cnf.jkt),
    }
}

impl Expiring for AccessTokenClaims {
    fn exp(&self) -> u64 {
        self.exp
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field(
                "issuers",
                &self
                    .inner
                    .trusts
                    .iter()
                    .map(|trust| &trust.issuers)
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

/// The caller's context from a trusted issuer's verified claims (its time is set per request).
fn context_of(claims: &Normalized, trust: &Trust, leeway: u64) -> AuthContext {
    let mut context = AuthContext::builder(claims.sub.clone())
        .amr(claims.amr.iter().cloned())
        .expires_at(claims.exp)
        .leeway(Duration::from_secs(leeway))
        .levels(trust.levels.clone())
        .claims_challenge_capable(claims.claims_challenge_capable);
    if let Some(acr) = &claims.acr {
        context = context.acr(acr.clone());
    }
    if let Some(auth_time) = claims.auth_time {
        context = context.auth_time(auth_time);
    }
    if let Some(scope) = &claims.scope {
        context = context.scope(scope.clone());
    }
    if let Some(generation) = claims.generation {
        context = context.generation(generation);
    }
    if let Some(iat) = claims.iat {
        context = context.issued_at(iat);
    }
    if let Some(jti) = &claims.jti {
        context = context.token_id(jti.clone());
    }
    if let Some(iss) = &claims.iss {
        context = context.issuer(iss.clone());
    }
    if let Some(profile) = &trust.profile {
        context = context.profile(profile.clone());
    }
    if let Some(issuer) = &claims.exchanged_from {
        context = context.exchanged_from(issuer.clone());
    }
    if let Some(details) = &claims.authorization_details {
        context = context.authorization_details(details.clone());
    }
    if let Some(thumbprint) = &claims.key_thumbprint {
        context = context.key_thumbprint(thumbprint.clone());
    }
    context.build()
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::{Value, json};

    use super::*;
    use crate::clock::ManualClock;
    use crate::token::{Grant, JwtIssuer, SigningKey, VerifyingKey};

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

    /// Verifies twice: a token enters the cache on its second verification.
    fn verify_twice(verifier: &JwtVerifier, token: &str) -> Result<AuthContext, TokenError> {
        let _ = verifier.verify(token);
        verifier.verify(token)
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

        assert!(verify_twice(&verifier, &token).is_ok());
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
        assert!(verify_twice(&verifier, &token).is_ok());
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
        assert!(verify_twice(&with_cache, &token).is_ok());
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
        assert!(verify_twice(&verifier, &token).is_ok());
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
        assert!(verify_twice(&verifier, &token).is_ok());
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
