//! The authenticated caller, as established by a verified access token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::acr::AcrLevels;
use crate::profile::IdpProfile;

/// Who is calling and how they authenticated; inserted into request extensions by the
/// `authenticate()` layer and read by handlers through extractors. Cheap to clone.
#[derive(Clone)]
pub struct AuthContext {
    /// What the token says: shared by every request that presents the same token.
    inner: Arc<Inner>,
    /// When this request's token was verified (Unix seconds).
    verified_at: u64,
    /// How this request presented it.
    presentation: Presentation,
}

#[derive(Clone)]
struct Inner {
    subject: String,
    acr: Option<String>,
    amr: Vec<String>,
    auth_time: Option<u64>,
    scope: Option<String>,
    token_id: Option<String>,
    issued_at: Option<u64>,
    generation: Option<u64>,
    expires_at: u64,
    leeway: u64,
    levels: AcrLevels,
    issuer: Option<String>,
    profile: Option<IdpProfile>,
    claims_challenge_capable: bool,
    exchanged_from: Option<String>,
    authorization_details: Option<serde_json::Value>,
    key_thumbprint: Option<String>,
}

/// How the access token reached the service: as a bearer token, or bound to a key the client
/// proved it holds (DPoP, RFC 9449).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Presentation {
    /// `Authorization: Bearer <token>` (RFC 6750).
    #[default]
    Bearer,
    /// `Authorization: DPoP <token>` with a verified `DPoP` proof of the token's key (RFC 9449):
    /// challenges to this caller are answered under the `DPoP` scheme.
    Dpop,
}

impl AuthContext {
    /// Starts a context for `subject`; the verifier builds these, and so can tests of handlers.
    pub fn builder(subject: impl Into<String>) -> AuthContextBuilder {
        AuthContextBuilder {
            inner: Inner {
                subject: subject.into(),
                acr: None,
                amr: Vec::new(),
                auth_time: None,
                scope: None,
                token_id: None,
                issued_at: None,
                generation: None,
                expires_at: 0,
                leeway: 0,
                levels: AcrLevels::default(),
                issuer: None,
                profile: None,
                claims_challenge_capable: false,
                exchanged_from: None,
                authorization_details: None,
                key_thumbprint: None,
            },
            verified_at: 0,
            presentation: Presentation::Bearer,
        }
    }

    /// The same token's context, verified again at `verified_at`: what a cached verification
    /// hands out, sharing everything the token says.
    pub(crate) fn verified_again_at(&self, verified_at: u64) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            verified_at,
            presentation: Presentation::Bearer,
        }
    }

    /// The token's confirmation key (`cnf.jkt`, RFC 9449 §6.1): the RFC 7638 SHA-256 thumbprint of
    /// the key the token is bound to, base64url. A token with one must be presented with a DPoP
    /// proof signed by that key.
    pub fn key_thumbprint(&self) -> Option<&str> {
        self.inner.key_thumbprint.as_deref()
    }

    /// How the token was presented (set by the `authenticate()` layer).
    pub fn presentation(&self) -> Presentation {
        self.presentation
    }

    /// This context, presented as `presentation` (the `authenticate()` layer marks a token whose
    /// DPoP proof it verified).
    pub fn with_presentation(mut self, presentation: Presentation) -> Self {
        self.presentation = presentation;
        self
    }

    /// The `iat` claim (Unix seconds), if the token has one.
    pub fn issued_at(&self) -> Option<u64> {
        self.inner.issued_at
    }

    /// The user's generation the token was issued under (claim `gen`, stepup's own tokens): a
    /// reset (account deletion, recovery, admin reset) moves the user's generation on and voids
    /// every token of an older one. A token without it (another issuer's) is judged by `iat`.
    pub fn generation(&self) -> Option<u64> {
        self.inner.generation
    }

    /// The `sub` claim: the user's identifier.
    pub fn subject(&self) -> &str {
        &self.inner.subject
    }

    /// The `acr` claim, if any.
    pub fn acr(&self) -> Option<&str> {
        self.inner.acr.as_deref()
    }

    /// The `amr` claim (empty when absent).
    pub fn amr(&self) -> &[String] {
        &self.inner.amr
    }

    /// Whether `method` is among the `amr` values.
    pub fn has_amr(&self, method: &str) -> bool {
        self.inner.amr.iter().any(|used| used == method)
    }

    /// The `auth_time` claim: when the user last actively authenticated (Unix seconds).
    pub fn auth_time(&self) -> Option<u64> {
        self.inner.auth_time
    }

    /// The `scope` claim, space-separated.
    pub fn scope(&self) -> Option<&str> {
        self.inner.scope.as_deref()
    }

    /// Whether the space-separated `scope` contains `wanted`.
    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scope()
            .is_some_and(|scope| scope.split(' ').any(|granted| granted == wanted))
    }

    /// The `jti` claim, if any.
    pub fn token_id(&self) -> Option<&str> {
        self.inner.token_id.as_deref()
    }

    /// The `exp` claim (Unix seconds).
    pub fn expires_at(&self) -> u64 {
        self.inner.expires_at
    }

    /// When the token was verified, by the verifier's clock (Unix seconds); freshness is measured here.
    pub fn verified_at(&self) -> u64 {
        self.verified_at
    }

    /// The clock skew tolerated between the token's issuer and [`verified_at`](Self::verified_at):
    /// an `auth_time` at most this far after `verified_at` counts as "just now", a later one makes
    /// the context meet no `max_age`. The verifier sets its own leeway; a context built by hand
    /// tolerates none unless told ([`AuthContextBuilder::leeway`]).
    pub fn leeway(&self) -> Duration {
        Duration::from_secs(self.inner.leeway)
    }

    /// The level order this context is judged by.
    pub fn levels(&self) -> &AcrLevels {
        &self.inner.levels
    }

    /// The `iss` of the token (set by the verifier): with several trusted issuers, a user is the
    /// pair of issuer and [`subject`](Self::subject).
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// The identity-provider profile the token was read with, which also phrases step-up
    /// challenges for this caller (`None`: stepup's own RFC 9470 vocabulary).
    pub fn profile(&self) -> Option<&IdpProfile> {
        self.inner.profile.as_ref()
    }

    /// Whether the token says its client can answer a claims challenge (Entra ID `xms_cc`
    /// containing `cp1`).
    pub fn claims_challenge_capable(&self) -> bool {
        self.inner.claims_challenge_capable
    }

    /// For a token issued by a token exchange (RFC 8693): the issuer of the token it was
    /// exchanged for (its `act` claim's `iss`), whose user the subject is.
    pub fn exchanged_from(&self) -> Option<&str> {
        self.inner.exchanged_from.as_deref()
    }

    /// The operations the token authorizes (RFC 9396 `authorization_details`), as sent.
    pub fn authorization_details(&self) -> Option<&serde_json::Value> {
        self.inner.authorization_details.as_ref()
    }

    /// Whether this caller meets level `required` under the configured order.
    pub fn satisfies_acr(&self, required: &str) -> bool {
        self.inner.levels.satisfies(self.acr(), required)
    }
}

impl fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token id is left out: it identifies a live credential.
        f.debug_struct("AuthContext")
            .field("subject", &self.inner.subject)
            .field("acr", &self.inner.acr)
            .field("amr", &self.inner.amr)
            .field("auth_time", &self.inner.auth_time)
            .field("scope", &self.inner.scope)
            .field("expires_at", &self.inner.expires_at)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AuthContext`].
#[derive(Debug)]
pub struct AuthContextBuilder {
    inner: Inner,
    verified_at: u64,
    presentation: Presentation,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl AuthContextBuilder {
    /// Sets `acr`.
    pub fn acr(mut self, acr: impl Into<String>) -> Self {
        self.inner.acr = Some(acr.into());
        self
    }

    /// Sets `amr`.
    pub fn amr<I, V>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.inner.amr = methods.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `auth_time` (Unix seconds).
    pub fn auth_time(mut self, auth_time: u64) -> Self {
        self.inner.auth_time = Some(auth_time);
        self
    }

    /// Sets `scope`.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.inner.scope = Some(scope.into());
        self
    }

    /// Sets `iat`.
    pub fn issued_at(mut self, issued_at: u64) -> Self {
        self.inner.issued_at = Some(issued_at);
        self
    }

    /// Sets the generation (claim `gen`).
    pub fn generation(mut self, generation: u64) -> Self {
        self.inner.generation = Some(generation);
        self
    }

    /// Sets the token id.
    pub fn token_id(mut self, token_id: impl Into<String>) -> Self {
        self.inner.token_id = Some(token_id.into());
        self
    }

    /// Sets `exp` (Unix seconds).
    pub fn expires_at(mut self, expires_at: u64) -> Self {
        self.inner.expires_at = expires_at;
        self
    }

    /// Sets the verification time (Unix seconds).
    pub fn verified_at(mut self, verified_at: u64) -> Self {
        self.verified_at = verified_at;
        self
    }

    /// Sets the clock skew tolerated on `auth_time` (default none), in whole seconds; see
    /// [`AuthContext::leeway`].
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.inner.leeway = leeway.as_secs();
        self
    }

    /// Sets the level order.
    pub fn levels(mut self, levels: AcrLevels) -> Self {
        self.inner.levels = levels;
        self
    }

    /// Sets the issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.inner.issuer = Some(issuer.into());
        self
    }

    /// Sets the identity-provider profile that phrases this caller's challenges.
    pub fn profile(mut self, profile: IdpProfile) -> Self {
        self.inner.profile = Some(profile);
        self
    }

    /// Marks the caller's client as able to answer a claims challenge.
    pub fn claims_challenge_capable(mut self, capable: bool) -> Self {
        self.inner.claims_challenge_capable = capable;
        self
    }

    /// Sets the issuer of the token this one was exchanged for (`act.iss`).
    pub fn exchanged_from(mut self, issuer: impl Into<String>) -> Self {
        self.inner.exchanged_from = Some(issuer.into());
        self
    }

    /// Sets the operations the token authorizes (`authorization_details`).
    pub fn authorization_details(mut self, details: serde_json::Value) -> Self {
        self.inner.authorization_details = Some(details);
        self
    }

    /// Sets the confirmation key thumbprint (`cnf.jkt`).
    pub fn key_thumbprint(mut self, thumbprint: impl Into<String>) -> Self {
        self.inner.key_thumbprint = Some(thumbprint.into());
        self
    }

    /// Sets how the token was presented.
    pub fn presentation(mut self, presentation: Presentation) -> Self {
        self.presentation = presentation;
        self
    }

    /// Finishes the context.
    pub fn build(self) -> AuthContext {
        AuthContext {
            inner: Arc::new(self.inner),
            verified_at: self.verified_at,
            presentation: self.presentation,
        }
    }
}
