//! How a verifier is configured: the issuers it trusts, their keys, audiences and profiles, and
//! the checks made once, when it is built (each key has one algorithm, `kid`s are distinct,
//! `iss` values belong to one issuer).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};

use super::{DEFAULT_CACHE_CAPACITY, Inner, JwtVerifier, Keys, Trust};
use crate::Error;
use crate::acr::AcrLevels;
use crate::clock::{SharedClock, SystemClock};
use crate::profile::{AudienceRule, IdpProfile};
use crate::token::cache::VerifiedCache;
use crate::token::keyset::{KeyEntry, KeySet};
#[cfg(feature = "jwks")]
use crate::token::remote::{Location, RefreshPolicy, RemoteKeys, RemoteSpec};
use crate::token::{JwkSet, VerifyingKey};

/// One issuer a verifier trusts, with its own keys (static, a JWKS URL or OIDC discovery), its
/// audience and its [profile](crate::profile); added with [`JwtVerifierBuilder::trust`].
///
/// ```
/// use stepup_core::profile::IdpProfile;
/// use stepup_core::token::{JwtVerifier, TrustedIssuer, VerifyingKey};
///
/// let verifier = JwtVerifier::builder()
///     .trust(
///         TrustedIssuer::new("https://stepup.example.com")
///             .key(VerifyingKey::hs256(b"an example secret of at least 32 bytes")?)
///             .audience("https://api.example.com"),
///     )
///     .trust(
///         TrustedIssuer::new("https://example.okta.com/oauth2/default")
///             .key(VerifyingKey::hs256(b"another secret, also 32 bytes long!")?)
///             .audience("api://default")
///             .profile(IdpProfile::okta()),
///     )
///     .build()?;
/// # let _ = verifier;
/// # Ok::<(), stepup_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    issuers: Vec<String>,
    audiences: Vec<String>,
    keys: Vec<VerifyingKey>,
    #[cfg(feature = "jwks")]
    remote: Option<RemoteSpec>,
    profile: Option<IdpProfile>,
}

impl TrustedIssuer {
    /// Trusts tokens whose `iss` is exactly `issuer`.
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuers: vec![issuer.into()],
            ..Self::empty()
        }
    }

    /// The `iss` values trusted.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    fn empty() -> Self {
        Self {
            issuers: Vec::new(),
            audiences: Vec::new(),
            keys: Vec::new(),
            #[cfg(feature = "jwks")]
            remote: None,
            profile: None,
        }
    }

    /// Accepts tokens whose audience is `audience` (may be called several times): their `aud`,
    /// or for the Cognito profile their `client_id`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accepts tokens signed by `key`.
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

    /// Takes the keys from the JWKS document at `url`, kept fresh in the background (see
    /// [`RefreshPolicy`]).
    #[cfg(feature = "jwks")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.remote = Some(RemoteSpec {
            location: Location::Jwks(url.into()),
        });
        self
    }

    /// Finds the keys by OIDC discovery of the issuer: `{issuer}/.well-known/openid-configuration`,
    /// whose `issuer` must equal this one exactly, then its `jwks_uri`.
    #[cfg(feature = "jwks")]
    pub fn discover(mut self) -> Self {
        let issuer = self.issuers.first().cloned().unwrap_or_default();
        self.remote = Some(RemoteSpec {
            location: Location::Discovery(issuer),
        });
        self
    }

    /// Reads this issuer's tokens with `profile` (default: [`IdpProfile::generic`] semantics
    /// without translation).
    pub fn profile(mut self, profile: IdpProfile) -> Self {
        self.profile = Some(profile);
        self
    }

    fn is_empty(&self) -> bool {
        #[cfg(feature = "jwks")]
        let remote = self.remote.is_some();
        #[cfg(not(feature = "jwks"))]
        let remote = false;
        self.keys.is_empty() && !remote && self.issuers.is_empty() && self.audiences.is_empty()
    }
}

/// Builds a [`JwtVerifier`]. At least one trusted issuer with an audience and keys is required:
/// the builder's own [`issuer`](Self::issuer), [`audience`](Self::audience) and keys make one,
/// and [`trust`](Self::trust) adds others.
#[derive(Debug)]
pub struct JwtVerifierBuilder {
    primary: TrustedIssuer,
    others: Vec<TrustedIssuer>,
    leeway: Duration,
    clock: SharedClock,
    levels: AcrLevels,
    cache_capacity: usize,
    #[cfg(feature = "jwks")]
    client: Option<reqwest::Client>,
    #[cfg(feature = "jwks")]
    policy: RefreshPolicy,
}

impl Default for JwtVerifierBuilder {
    fn default() -> Self {
        Self {
            primary: TrustedIssuer::empty(),
            others: Vec::new(),
            leeway: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            levels: AcrLevels::default(),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            #[cfg(feature = "jwks")]
            client: None,
            #[cfg(feature = "jwks")]
            policy: RefreshPolicy::default(),
        }
    }
}

impl JwtVerifierBuilder {
    /// Accepts tokens signed by `key`. Keys with `kid`s must have distinct ones.
    pub fn key(mut self, key: VerifyingKey) -> Self {
        self.primary.keys.push(key);
        self
    }

    /// Accepts tokens signed by any key of a static JWK set.
    pub fn jwk_set(mut self, set: &JwkSet) -> Result<Self, Error> {
        self.primary = self.primary.jwk_set(set)?;
        Ok(self)
    }

    /// Takes the keys from the JWKS document at `url`, kept fresh in the background (the `jwks`
    /// feature; see [`RefreshPolicy`]). Set the [`issuer`](Self::issuer) too.
    #[cfg(feature = "jwks")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.primary = self.primary.jwks_url(url);
        self
    }

    /// Trusts `issuer` and finds its keys by OIDC discovery (the `jwks` feature): the discovery
    /// document's `issuer` must equal `issuer` exactly, then its `jwks_uri` is fetched and kept
    /// fresh in the background.
    #[cfg(feature = "jwks")]
    pub fn discover(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        if !self.primary.issuers.contains(&issuer) {
            self.primary.issuers.insert(0, issuer.clone());
        }
        self.primary.remote = Some(RemoteSpec {
            location: Location::Discovery(issuer),
        });
        self
    }

    /// The HTTP client remote key sources use, instead of the built-in bounded one (the `jwks`
    /// feature). Requests are still bounded by [`RefreshPolicy::timeout`].
    #[cfg(feature = "jwks")]
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// How remote key sources are refreshed (the `jwks` feature).
    #[cfg(feature = "jwks")]
    pub fn refresh_policy(mut self, policy: RefreshPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Accepts tokens whose `iss` is `issuer` (may be called several times).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.primary.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` contains `audience` (may be called several times).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.primary.audiences.push(audience.into());
        self
    }

    /// Reads the tokens of the builder's own issuer with `profile`.
    pub fn profile(mut self, profile: IdpProfile) -> Self {
        self.primary.profile = Some(profile);
        self
    }

    /// Also trusts another issuer, with its own keys, audience and profile.
    pub fn trust(mut self, issuer: TrustedIssuer) -> Self {
        self.others.push(issuer);
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `auth_time` (default 30 s, at most 5 minutes).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The clock `exp`, `nbf`, freshness and key-refresh ages are judged by.
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
    /// A token verified a second time is kept (a flood of distinct tokens, each presented once,
    /// stores nothing); presented again, it is found by its signature and, once compared whole
    /// with the token stored, skips the signature check and the claims parse (a token not in the
    /// cache, a forged one included, costs no digest of the token); `exp`, `nbf` and `auth_time` are still
    /// judged on every request. A cached entry ends when the clock reaches the token's `exp`
    /// (within the leeway after it, the token is verified in full each time), or when its key
    /// leaves its issuer's key set; only successful verifications are kept, and the cache belongs
    /// to this verifier and its keys alone. Memory: at most `capacity` entries, each the token,
    /// its claims and about 100 bytes.
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Checks the settings and prepares the keys. With remote key sources, the first fetch
    /// starts at once when a tokio runtime is running (else at the first verification); until
    /// it succeeds, tokens of that issuer are answered `503`.
    pub fn build(self) -> Result<JwtVerifier, Error> {
        crate::token::crypto_provider();
        if self.leeway > Duration::from_secs(300) {
            return Err(Error::Config("a leeway above 5 minutes is refused"));
        }
        let mut configured = Vec::new();
        if !self.primary.is_empty() {
            configured.push(self.primary.clone());
        }
        configured.extend(self.others.iter().cloned());
        if configured.is_empty() {
            return Err(Error::Config("the verifier needs at least one key"));
        }
        let mut trusts = Vec::with_capacity(configured.len());
        for trusted in configured {
            trusts.push(self.prepare(trusted)?);
        }
        let by_issuer = if trusts.len() > 1 {
            let mut map = HashMap::new();
            for (index, trust) in trusts.iter().enumerate() {
                for issuer in &trust.issuers {
                    if map.insert(issuer.clone(), index).is_some() {
                        return Err(Error::Config("two trusted issuers share one iss"));
                    }
                }
            }
            Some(map)
        } else {
            None
        };
        Ok(JwtVerifier {
            inner: Arc::new(Inner {
                trusts,
                by_issuer,
                leeway: self.leeway.as_secs(),
                clock: self.clock,
                cache: VerifiedCache::new(self.cache_capacity),
            }),
        })
    }

    fn prepare(&self, trusted: TrustedIssuer) -> Result<Trust, Error> {
        #[cfg(feature = "jwks")]
        let has_remote = trusted.remote.is_some();
        #[cfg(not(feature = "jwks"))]
        let has_remote = false;
        if trusted.keys.is_empty() && !has_remote {
            return Err(Error::Config("the verifier needs at least one key"));
        }
        if !trusted.keys.is_empty() && has_remote {
            return Err(Error::Config(
                "a trusted issuer takes static keys or a key source, not both",
            ));
        }
        if trusted.issuers.is_empty() {
            return Err(Error::Config("the verifier needs the expected issuer"));
        }
        if trusted.audiences.is_empty() {
            return Err(Error::Config("the verifier needs the expected audience"));
        }
        for (index, key) in trusted.keys.iter().enumerate() {
            let duplicate = key.kid.is_some()
                && trusted.keys[..index]
                    .iter()
                    .any(|earlier| earlier.kid == key.kid);
            if duplicate {
                return Err(Error::Config("two keys share one kid"));
            }
        }
        let audience_rule = trusted
            .profile
            .as_ref()
            .map_or(AudienceRule::Aud, IdpProfile::audience_rule);
        let validations = [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(|algorithm| {
            let mut validation = Validation::new(algorithm);
            validation.set_issuer(&trusted.issuers);
            if audience_rule == AudienceRule::Aud {
                validation.set_audience(&trusted.audiences);
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            } else {
                // Cognito access tokens have no `aud`: `client_id` is checked after decoding.
                validation.validate_aud = false;
                validation.set_required_spec_claims(&["exp", "iss", "sub"]);
            }
            // Time claims are checked in `verify` against the injected clock.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            (algorithm, validation)
        })
        .collect();
        let static_keys = KeySet {
            keys: trusted
                .keys
                .into_iter()
                .map(|key| Arc::new(KeyEntry::new(key, String::new(), None)))
                .collect(),
        };
        #[cfg(feature = "jwks")]
        let keys = match &trusted.remote {
            None => Keys::Static(static_keys),
            Some(spec) => Keys::Remote(RemoteKeys::new(
                spec,
                self.client.clone(),
                self.policy.clone(),
                self.clock.clone(),
            )?),
        };
        #[cfg(not(feature = "jwks"))]
        let keys = Keys::Static(static_keys);
        Ok(Trust {
            issuers: trusted.issuers,
            audiences: trusted.audiences,
            audience_rule,
            profile: trusted.profile,
            levels: self.levels.clone(),
            validations,
            keys,
        })
    }
}
