use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Header, encode};
use rand::RngCore;
use serde::Serialize;

use super::{AccessTokenClaims, JwtVerifierBuilder, SigningKey};
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

    /// A verifier builder for exactly the tokens this issuer mints (same key, issuer, audience, clock).
    pub fn verifier(&self) -> JwtVerifierBuilder {
        JwtVerifierBuilder::default()
            .key(self.key.verifying_key().clone())
            .issuer(self.issuer.clone())
            .audience(self.audience.clone())
            .clock(self.clock.clone())
    }

    /// Signs a token for `grant`.
    pub fn issue(&self, grant: &Grant) -> Result<IssuedToken, Error> {
        super::crypto_provider();
        let now = self.clock.unix_seconds();
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
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
            },
        };
        let mut header = Header::new(self.key.algorithm());
        header.kid = self.key.verifying_key().kid.clone();
        let access_token = encode(&header, &claims, &self.key.key)
            .map_err(|error| Error::Signing(error.to_string()))?;
        Ok(IssuedToken {
            access_token,
            token_type: "Bearer",
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
        }
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
}

/// A signed access token, serialised as the OAuth token response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    /// The JWT.
    pub access_token: String,
    /// Always `"Bearer"`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The `acr` the token carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}
