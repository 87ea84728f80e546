use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, encode};
use rand::RngCore;
use serde::Serialize;

use jsonwebtoken::jwk::JwkSet;

use super::{AccessTokenClaims, Actor, Confirmation, JwtVerifierBuilder, SigningKey, VerifyingKey};
use crate::Error;
use crate::clock::{SharedClock, SystemClock};

/// Mints access tokens carrying `sub`, `acr`, `amr`, `auth_time`, `iat`, `exp`, `jti` and `scope`.
///
/// ```
/// use stepup_core::token::{Grant, JwtIssuer, SigningKey};
///
/// let issuer = JwtIssuer::new(SigningKey::hs256(b"an example secret of at least 32 bytes")?)
///     .with_issuer("https://api.example.com")
///     .with_audience("https://api.example.com");
/// let token = issuer.issue(&Grant::new("user-1").acr("pwd").amr(["pwd"]))?;
/// let context = issuer.verifier().build()?.verify(&token.access_token).unwrap();
/// assert_eq!(context.subject(), "user-1");
/// # Ok::<(), stepup_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    key: SigningKey,
    /// Keys no longer signing but still published (and verified): rotation by `kid`.
    previous: Vec<VerifyingKey>,
    issuer: String,
    audience: String,
    ttl: Duration,
    clock: SharedClock,
}

impl JwtIssuer {
    /// An issuer signing with `key`; issuer and audience default to `"stepup"`, lifetime to 15 minutes.
    pub fn new(key: SigningKey) -> Self {
        Self {
            key,
            previous: Vec::new(),
            issuer: "stepup".into(),
            audience: "stepup".into(),
            ttl: Duration::from_secs(15 * 60),
            clock: Arc::new(SystemClock),
        }
    }

    /// Shorthand for an HS256 issuer (secret of at least 32 bytes).
    pub fn hs256(secret: &[u8]) -> Result<Self, Error> {
        Ok(Self::new(SigningKey::hs256(secret)?))
    }

    /// Sets the `iss` claim.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// Sets the `aud` claim.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// Sets the token lifetime.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Sets the clock for `iat`, `exp` and a default `auth_time`.
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps publishing (and verifying) `key`, a key this issuer signed with before: after a
    /// rotation to a new signing key (a new `kid`), tokens signed with the old one stay valid
    /// until they expire, and resource servers reading the JWKS still find it.
    pub fn with_previous_key(mut self, key: VerifyingKey) -> Self {
        self.previous.push(key);
        self
    }

    /// The `iss` claim of the tokens: the issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The default `aud` claim (a [`Grant`] may name another audience).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public keys of this issuer as a JWK set (RFC 7517): the signing key's public half and
    /// every [previous key](Self::with_previous_key), each with its `kid`, `alg` and `use: sig`.
    /// A shared HS256 secret is never published: an HS256 issuer's set is empty.
    pub fn jwks(&self) -> Result<JwkSet, Error> {
        let mut keys = Vec::new();
        if let Some(jwk) = self.key.public_jwk()? {
            keys.push(jwk);
        }
        for key in &self.previous {
            if let Some(jwk) = key.public_jwk()? {
                keys.push(jwk);
            }
        }
        Ok(JwkSet { keys })
    }

    /// A verifier builder for exactly the tokens this issuer mints (same keys, issuer, audience,
    /// clock).
    pub fn verifier(&self) -> JwtVerifierBuilder {
        let builder = JwtVerifierBuilder::default()
            .key(self.key.verifying_key().clone())
            .issuer(self.issuer.clone())
            .audience(self.audience.clone())
            .clock(self.clock.clone());
        self.previous
            .iter()
            .fold(builder, |builder, key| builder.key(key.clone()))
    }

    /// Signs a token for `grant`.
    pub fn issue(&self, grant: &Grant) -> Result<IssuedToken, Error> {
        super::crypto_provider();
        let now = self.clock.unix_seconds();
        let claims = Claims {
            iss: &self.issuer,
            aud: grant.audience.as_deref().unwrap_or(&self.audience),
            standard: AccessTokenClaims {
                sub: grant.subject.clone(),
                exp: now.saturating_add(self.ttl.as_secs()),
                nbf: None,
                iat: Some(now),
                jti: Some(random_token_id()),
                acr: grant.acr.clone(),
                amr: grant.amr.clone(),
                auth_time: match grant.auth_time {
                    AuthTime::Now => Some(now),
                    AuthTime::At(time) => Some(time),
                    AuthTime::Omitted => None,
                },
                scope: grant.scope.clone(),
                generation: grant.generation,
                act: grant.exchanged_from.as_ref().map(|issuer| Actor {
                    iss: Some(issuer.clone()),
                    sub: Some(grant.subject.clone()),
                }),
                authorization_details: grant.authorization_details.clone(),
                cnf: grant.key_thumbprint.clone().map(Confirmation::jkt),
            },
        };
        let mut header = Header::new(self.key.algorithm());
        header.kid = self.key.verifying_key().kid.clone();
        let access_token = encode(&header, &claims, &self.key.key)
            .map_err(|error| Error::Signing(error.to_string()))?;
        Ok(IssuedToken {
            access_token,
            token_type: if grant.key_thumbprint.is_some() {
                "DPoP"
            } else {
                "Bearer"
            },
            expires_in: self.ttl.as_secs(),
            acr: grant.acr.clone(),
        })
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    #[serde(flatten)]
    standard: AccessTokenClaims,
}

/// 128 random bits, base64url.
fn random_token_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What a token says about its holder's authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    subject: String,
    acr: Option<String>,
    amr: Vec<String>,
    auth_time: AuthTime,
    scope: Option<String>,
    generation: Option<u64>,
    audience: Option<String>,
    exchanged_from: Option<String>,
    authorization_details: Option<serde_json::Value>,
    key_thumbprint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthTime {
    Now,
    At(u64),
    Omitted,
}

impl Grant {
    /// A grant for `subject`.
    pub fn new(subject: impl Into<String>) -> Self {
        Self {
            subject: subject.into(),
            acr: None,
            amr: Vec::new(),
            auth_time: AuthTime::Now,
            scope: None,
            generation: None,
            audience: None,
            exchanged_from: None,
            authorization_details: None,
            key_thumbprint: None,
        }
    }

    /// Sets `aud` to `audience` instead of the issuer's default: the resource the token is for
    /// (RFC 8707).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets `acr`.
    pub fn acr(mut self, acr: impl Into<String>) -> Self {
        self.acr = Some(acr.into());
        self
    }

    /// Sets `amr`: the methods really used, each once (RFC 8176).
    pub fn amr<I, V>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.amr = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `auth_time` (Unix seconds); defaults to the time of issue.
    pub fn auth_time(mut self, auth_time: u64) -> Self {
        self.auth_time = AuthTime::At(auth_time);
        self
    }

    /// Leaves `auth_time` out: the token vouches for no authentication event at a known time, so
    /// it never meets a `max_age` (used for remembered-device logins).
    pub fn without_auth_time(mut self) -> Self {
        self.auth_time = AuthTime::Omitted;
        self
    }

    /// Sets the user's generation (claim `gen`): the token is void once a reset moves it on.
    pub fn generation(mut self, generation: u64) -> Self {
        self.generation = Some(generation);
        self
    }

    /// Sets `scope`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets `authorization_details` (RFC 9396): the operations the token authorizes, an array
    /// of objects with a `type` each (see `RequireTransaction` in stepup-tower).
    pub fn authorization_details(mut self, details: serde_json::Value) -> Self {
        self.authorization_details = Some(details);
        self
    }

    /// Marks the token as exchanged for one of `issuer` (RFC 8693): the subject is that
    /// identity provider's user, named with `issuer` in the `act` claim, and a verifier reads
    /// the issuer back with [`AuthContext::exchanged_from`](crate::AuthContext::exchanged_from).
    pub fn exchanged_from(mut self, issuer: impl Into<String>) -> Self {
        self.exchanged_from = Some(issuer.into());
        self
    }

    /// Binds the token to the client's DPoP key (RFC 9449 §6.1): the token carries
    /// `cnf: {"jkt": thumbprint}` and is issued with `token_type: "DPoP"`, so a resource server
    /// accepts it only with a proof signed by that key. `thumbprint` is the key's RFC 7638
    /// SHA-256 thumbprint, base64url, as [`VerifiedProof::thumbprint`](crate::dpop::VerifiedProof::thumbprint)
    /// reports it.
    pub fn dpop_bound(mut self, thumbprint: impl Into<String>) -> Self {
        self.key_thumbprint = Some(thumbprint.into());
        self
    }
}

/// A signed access token, serialised as the OAuth token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    /// The JWT.
    pub access_token: String,
    /// `"Bearer"`, or `"DPoP"` for a token bound to a DPoP key ([`Grant::dpop_bound`]).
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The `acr` the token carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Algorithm, JwtVerifier};

    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/keys");

    fn pem(name: &str) -> Vec<u8> {
        std::fs::read(format!("{KEYS}/{name}")).unwrap()
    }

    /// A verifier that knows only what the issuer publishes: its JWKS, issuer and audience.
    fn from_published(issuer: &JwtIssuer) -> JwtVerifier {
        let jwks: JwkSet =
            serde_json::from_str(&serde_json::to_string(&issuer.jwks().unwrap()).unwrap()).unwrap();
        JwtVerifierBuilder::default()
            .jwk_set(&jwks)
            .unwrap()
            .issuer(issuer.issuer().to_owned())
            .audience("https://mcp.example.com/")
            .build()
            .unwrap()
    }

    #[test]
    fn a_verifier_built_from_the_published_jwks_accepts_the_issuers_tokens() {
        let keys = [
            SigningKey::generate_es256("es-1").unwrap().key,
            SigningKey::es256_pem(&pem("ec_private.pem"), &pem("ec_public.pem"))
                .unwrap()
                .with_kid("es-file"),
            SigningKey::eddsa_pem(&pem("ed_private.pem"), &pem("ed_public.pem"))
                .unwrap()
                .with_kid("ed-1"),
            SigningKey::rs256_pem(&pem("rsa_private.pem"), &pem("rsa_public.pem"))
                .unwrap()
                .with_kid("rs-1"),
        ];
        for key in keys {
            let algorithm = key.algorithm();
            let issuer = JwtIssuer::new(key).with_issuer("https://as.example.com");
            let published = serde_json::to_value(issuer.jwks().unwrap()).unwrap();
            let jwk = &published["keys"][0];
            assert_eq!(jwk["use"], "sig", "{algorithm:?}");
            assert!(jwk["kid"].is_string(), "{algorithm:?}");
            assert!(jwk["alg"].is_string(), "{algorithm:?}");
            assert!(jwk.get("d").is_none(), "no private part: {jwk}");
            match algorithm {
                Algorithm::ES256 => {
                    assert_eq!(
                        (jwk["kty"].as_str(), jwk["crv"].as_str()),
                        (Some("EC"), Some("P-256"))
                    );
                    assert!(jwk["x"].is_string() && jwk["y"].is_string());
                }
                Algorithm::EdDSA => {
                    assert_eq!(
                        (jwk["kty"].as_str(), jwk["crv"].as_str()),
                        (Some("OKP"), Some("Ed25519"))
                    );
                    assert!(jwk["x"].is_string());
                }
                _ => {
                    assert_eq!(jwk["kty"], "RSA");
                    assert!(jwk["n"].is_string() && jwk["e"].is_string());
                }
            }
            let token = issuer
                .issue(
                    &Grant::new("user-1")
                        .acr("mfa")
                        .audience("https://mcp.example.com/"),
                )
                .unwrap();
            let context = from_published(&issuer)
                .verify(&token.access_token)
                .unwrap_or_else(|error| panic!("{algorithm:?}: {error:?}"));
            assert_eq!(context.subject(), "user-1");
        }
    }

    #[test]
    fn a_previous_key_stays_published_and_verified() {
        let old = SigningKey::generate_es256("old").unwrap().key;
        let new = SigningKey::generate_es256("new").unwrap().key;
        let before = JwtIssuer::new(old.clone()).with_audience("https://mcp.example.com/");
        let token = before.issue(&Grant::new("u")).unwrap();
        let after = JwtIssuer::new(new)
            .with_previous_key(old.verifying_key().clone())
            .with_audience("https://mcp.example.com/");
        let kids: Vec<_> = after
            .jwks()
            .unwrap()
            .keys
            .into_iter()
            .map(|jwk| jwk.common.key_id)
            .collect();
        assert_eq!(kids, [Some("new".to_owned()), Some("old".to_owned())]);
        assert!(
            after
                .verifier()
                .build()
                .unwrap()
                .verify(&token.access_token)
                .is_ok()
        );
        assert!(from_published(&after).verify(&token.access_token).is_ok());
    }

    #[test]
    fn an_hs256_secret_is_never_published() {
        let issuer = JwtIssuer::hs256(b"a secret of thirty-two bytes or more!").unwrap();
        assert!(issuer.jwks().unwrap().keys.is_empty());
    }
}
