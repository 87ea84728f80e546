//! [`StepUp`]: stepup for an axum application — the engine with its factors, the token verifier,
//! the registered OAuth clients — and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use stepup_core::client::AddressGrouping;
use stepup_core::clock::{SharedClock, SystemClock};
use stepup_core::dpop::DpopPolicy;
use stepup_core::policy::RequestCeiling;
use stepup_core::token::{JwtIssuer, JwtVerifier, TrustedIssuer};
use stepup_mfa::{
    AddressPolicy, AttemptPolicy, Factor, KdfPool, Keyring, Mfa, MfaError, Notifier, PasswordCheck,
    RegistrationPolicy, Stores,
};
use stepup_store::Store;
use stepup_tower::{
    AuthenticateLayer, RateLimitLayer, RejectRevokedLayer, RememberedDevicesLayer,
    ResolveClientAddrLayer, TrustedProxies,
};

use crate::registered_client::OAuthClient;

/// Why [`StepUpBuilder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A required part is missing.
    #[error("StepUp needs {0}")]
    Missing(&'static str),
    /// The token verifier could not be built.
    #[error(transparent)]
    Verifier(#[from] stepup_core::Error),
    /// The MFA engine could not be built.
    #[error(transparent)]
    Mfa(#[from] MfaError),
}

/// stepup for an axum application: the engine (factors, login, limits, tokens), the verifier
/// of its tokens, and the drop-in routes. Cheap to clone.
#[derive(Clone)]
pub struct StepUp {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) mfa: Mfa,
    pub(crate) verifier: JwtVerifier,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) request_ceiling: (u64, Duration),
}

impl StepUp {
    /// Starts the configuration.
    pub fn builder() -> StepUpBuilder {
        StepUpBuilder::default()
    }

    /// The layer that verifies bearer tokens issued by this `StepUp`.
    pub fn authenticate(&self) -> AuthenticateLayer {
        AuthenticateLayer::new(self.inner.verifier.clone())
    }

    /// The DPoP policy of an API served beside these routes, at the issuer's origin: DPoP-bound
    /// tokens accepted (bearer ones too), each proof accepted once across every instance (the
    /// engine's ephemeral store), judged by the engine's clock. For
    /// `stepup.authenticate().with_dpop(stepup.dpop_policy()?)`; an API elsewhere builds its own
    /// [`DpopPolicy`] with its own origin. Fails when the issuer identifier is not an `https`
    /// URL (plain `http` only to a loopback host).
    pub fn dpop_policy(&self) -> Result<DpopPolicy, stepup_core::Error> {
        let mfa = &self.inner.mfa;
        Ok(DpopPolicy::optional(&self.issuer_id())?
            .with_clock(mfa.clock().clone())
            .with_replay(mfa.clone()))
    }

    /// The layer refusing tokens whose user was deleted, recovered or reset since (the engine's
    /// rule): put it on the application's own routes, inside [`authenticate`](Self::authenticate).
    pub fn reject_revoked(&self) -> RejectRevokedLayer {
        RejectRevokedLayer::new(self.inner.mfa.clone())
    }

    /// The layer reading the remembered-device cookie (the engine vouches).
    pub fn remembered_devices(&self) -> RememberedDevicesLayer {
        RememberedDevicesLayer::new(self.inner.mfa.clone())
    }

    /// The layer resolving the client's address (believing the configured proxies only).
    pub fn client_addresses(&self) -> ResolveClientAddrLayer {
        ResolveClientAddrLayer::new(self.inner.trusted_proxies.clone())
    }

    /// A ceiling of `max` requests per `window` per client address on a group of routes named
    /// `name`, counted by the engine (shared by instances, IPv6 grouped by prefix). Put it inside
    /// [`client_addresses`](Self::client_addresses).
    pub fn ceiling(&self, name: &'static str, max: u64, window: Duration) -> RateLimitLayer {
        let counters: Arc<dyn RequestCeiling> = Arc::new(self.inner.mfa.clone());
        RateLimitLayer::shared(counters, name).with_limit(max, window)
    }

    /// The engine, for the application's own handlers (account deletion, admin resets, …).
    pub fn mfa(&self) -> &Mfa {
        &self.inner.mfa
    }

    /// The reverse proxies believed for client addresses.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted_proxies
    }

    /// The engine as `RequireTransaction`'s approvals (stepup's own transaction step-up:
    /// `RequireTransaction::new(…).with_approvals(stepup.transaction_approvals())`).
    pub fn transaction_approvals(&self) -> Arc<dyn stepup_core::policy::TransactionApprovals> {
        Arc::new(self.inner.mfa.clone())
    }

    /// The verifier of this `StepUp`'s tokens.
    pub fn verifier(&self) -> &JwtVerifier {
        &self.inner.verifier
    }

    /// How recent the second factor must be to regenerate backup codes or remove a factor.
    pub fn fresh_mfa_max_age(&self) -> Duration {
        self.inner.mfa.fresh_mfa_max_age()
    }

    /// The authorization server's issuer identifier (RFC 8414): the tokens' `iss`, the `iss` of
    /// every authorization response (RFC 9207), the base of the endpoints in the metadata.
    pub fn issuer_id(&self) -> String {
        self.inner
            .mfa
            .issuer()
            .map(|issuer| issuer.issuer().to_owned())
            .unwrap_or_default()
    }
}

impl fmt::Debug for StepUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUp")
            .field("mfa", &self.inner.mfa)
            .finish_non_exhaustive()
    }
}

/// Configures a [`StepUp`].
#[derive(Default)]
pub struct StepUpBuilder {
    issuer: Option<JwtIssuer>,
    stores: Option<Stores>,
    keyring: Option<Keyring>,
    lookup_key: Option<Vec<u8>>,
    passwords: Option<Arc<dyn PasswordCheck>>,
    factors: Vec<Arc<dyn Factor>>,
    clock: Option<SharedClock>,
    fresh_mfa: Option<Duration>,
    enrollment_max_age: Option<Duration>,
    clients: Vec<OAuthClient>,
    attempts: Option<AttemptPolicy>,
    addresses: Option<AddressPolicy>,
    kdf: Option<KdfPool>,
    notifier: Option<Arc<dyn Notifier>>,
    mailer: Option<Arc<dyn stepup_mail::Mailer>>,
    recovery_delay: Option<Duration>,
    remember_for: Option<Duration>,
    trusted_proxies: Option<TrustedProxies>,
    request_ceiling: Option<(u64, Duration)>,
    ipv6_prefix: Option<u8>,
    restricted_alone: Option<bool>,
    registration: Option<RegistrationPolicy>,
    #[cfg(feature = "client-metadata")]
    documents: Option<stepup_mfa::MetadataDocumentPolicy>,
    resources: Vec<String>,
    scopes: Vec<String>,
    refresh_lifetime: Option<Duration>,
    session_lifetime: Option<Duration>,
    external_issuers: Vec<TrustedIssuer>,
}

impl StepUpBuilder {
    /// The token issuer (required); its clock is replaced by [`clock`](Self::clock) when set.
    pub fn issuer(mut self, issuer: JwtIssuer) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// One store for every kind of state (required, or [`stores`](Self::stores)).
    pub fn store<S: Store>(mut self, store: S) -> Self {
        self.stores = Some(Stores::shared(store));
        self
    }

    /// Separate stores (e.g. PostgreSQL for the durable parts, Redis for ephemeral state).
    pub fn stores(mut self, stores: Stores) -> Self {
        self.stores = Some(stores);
        self
    }

    /// Registers a factor: [`Totp`](stepup_mfa::totp::Totp),
    /// [`Webauthn`](stepup_mfa::webauthn::Webauthn), [`Sms`](stepup_mfa::sms::Sms),
    /// [`Email`](stepup_mfa::email::Email), or the application's own. Without any, TOTP with its
    /// defaults is registered (feature `totp`). Backup codes come with every engine.
    pub fn factor(mut self, factor: impl Factor) -> Self {
        self.factors.push(Arc::new(factor));
        self
    }

    /// Told about factor changes (e.g. to email the user).
    pub fn notifier(mut self, notifier: impl Notifier) -> Self {
        self.notifier = Some(Arc::new(notifier));
        self
    }

    /// Sends mail: recovery codes (`/api/mfa/recovery/*`), and notices of every recovery, admin
    /// reset, factor added or removed and factor lock, to [`PasswordCheck::email_of`]. Notices
    /// never hold a code or secret. Without a mailer, recovery requests are answered alike but
    /// mail nothing.
    pub fn mailer(mut self, mailer: impl stepup_mail::Mailer) -> Self {
        self.mailer = Some(Arc::new(mailer));
        self
    }

    /// [`mailer`](Self::mailer), shared (e.g. with the email factor).
    pub fn shared_mailer(mut self, mailer: Arc<dyn stepup_mail::Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Makes a confirmed recovery wait `delay` before it takes effect (default: none; e.g. 24
    /// hours for high-value accounts). See [`stepup_mfa::recovery`].
    pub fn recovery_delay(mut self, delay: Duration) -> Self {
        self.recovery_delay = Some(delay);
        self
    }

    /// How long a remembered device stays trusted (default 30 days).
    pub fn remember_device_for(mut self, duration: Duration) -> Self {
        self.remember_for = Some(duration);
        self
    }

    /// The reverse proxies whose `X-Forwarded-For` / `Forwarded` are believed (default: none, so
    /// the TCP peer is the client). The peer address comes from axum's `ConnectInfo<SocketAddr>`:
    /// serve with `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.trusted_proxies = Some(proxies);
        self
    }

    /// The ceiling on all requests per client address to the login endpoints, whatever their
    /// outcome (default 300 per 5 minutes): it bounds the password hashing one client causes.
    pub fn request_ceiling(mut self, max: u64, window: Duration) -> Self {
        self.request_ceiling = Some((max, window));
        self
    }

    /// Failed logins allowed per client address (default 30 per 5 minutes). Successful logins
    /// never use this budget up.
    pub fn address_policy(mut self, policy: AddressPolicy) -> Self {
        self.addresses = Some(policy);
        self
    }

    /// The prefix length IPv6 clients are grouped by, for every per-address limit (default 64).
    pub fn ipv6_prefix(mut self, bits: u8) -> Self {
        self.ipv6_prefix = Some(bits.min(128));
        self
    }

    /// The keyring sealing factor secrets (required).
    pub fn keyring(mut self, keyring: Keyring) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The key of code lookups, ≥ 32 bytes (required). Keep it as secret, and as stable, as the
    /// sealing keys: changing it invalidates every stored backup code.
    pub fn lookup_key(mut self, key: &[u8]) -> Self {
        self.lookup_key = Some(key.to_vec());
        self
    }

    /// The application's accounts and password check (required).
    pub fn passwords(mut self, passwords: impl PasswordCheck) -> Self {
        self.passwords = Some(Arc::new(passwords));
        self
    }

    /// The clock of tokens, codes and challenges.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How recent the second factor must be for sensitive factor changes (default 5 minutes).
    pub fn fresh_mfa_max_age(mut self, max_age: Duration) -> Self {
        self.fresh_mfa = Some(max_age);
        self
    }

    /// How recent the password must be to enroll a first factor (default 10 minutes).
    pub fn enrollment_max_age(mut self, max_age: Duration) -> Self {
        self.enrollment_max_age = Some(max_age);
        self
    }

    /// Registers an OAuth client for the authorization-code flow (first-party: a live sign-in
    /// session answers it at once).
    pub fn client(mut self, client: OAuthClient) -> Self {
        self.clients.push(client);
        self
    }

    /// Enables RFC 7591 dynamic registration of public clients (`POST /oauth/register`) under
    /// `policy`.
    pub fn dynamic_registration(mut self, policy: RegistrationPolicy) -> Self {
        self.registration = Some(policy);
        self
    }

    /// Accepts Client ID Metadata Documents as client ids under `policy` (feature
    /// `client-metadata`).
    #[cfg(feature = "client-metadata")]
    pub fn client_metadata_documents(mut self, policy: stepup_mfa::MetadataDocumentPolicy) -> Self {
        self.documents = Some(policy);
        self
    }

    /// Accepts `resource` (RFC 8707) in authorization requests: the tokens' `aud`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// Accepts `scope` in authorization requests (`offline_access` always is).
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// How long a refresh-token family lives (default 30 days).
    pub fn refresh_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_lifetime = Some(lifetime);
        self
    }

    /// How long the browser's sign-in session lasts (default 12 hours).
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = Some(lifetime);
        self
    }

    /// Per-user limits on failed code verifications and the factor lock (default 5 per 5
    /// minutes, then a lockout doubling with each burst; a factor locked after 100 failures in a
    /// row).
    pub fn attempt_policy(mut self, policy: AttemptPolicy) -> Self {
        self.attempts = Some(policy);
        self
    }

    /// The pool every slow hash runs in (default: as many slots as cores, 5-second queue).
    pub fn kdf_pool(mut self, pool: KdfPool) -> Self {
        self.kdf = Some(pool);
        self
    }

    /// Whether a restricted factor (SMS, email) may be a user's only factor (default `true`;
    /// NIST SP 800-63B advises `false`: offer it beside an authenticator app or a passkey).
    pub fn restricted_factor_alone(mut self, allowed: bool) -> Self {
        self.restricted_alone = Some(allowed);
        self
    }

    /// Lets the users of an external identity provider use stepup's factors (may be called
    /// several times): the provider's access tokens are callers on stepup's routes (the user
    /// keyed by issuer and subject), and `POST /oauth/token` exchanges them (RFC 8693) for
    /// stepup's token at `mfa` or `phr` after stepup's MFA step. See
    /// [`stepup_mfa::external`].
    pub fn external_issuer(mut self, issuer: TrustedIssuer) -> Self {
        self.external_issuers.push(issuer);
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<StepUp, BuildError> {
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let issuer = self
            .issuer
            .ok_or(BuildError::Missing("an issuer"))?
            .with_clock(clock.clone());
        let verifier = self
            .external_issuers
            .iter()
            .fold(issuer.verifier(), |verifier, external| {
                verifier.trust(external.clone())
            })
            .build()?;
        let external_names: Vec<String> = self
            .external_issuers
            .iter()
            .flat_map(|external| external.issuers().iter().cloned())
            .collect();
        let passwords = self
            .passwords
            .ok_or(BuildError::Missing("a password check"))?;
        let mut mfa = Mfa::new(
            self.stores.ok_or(BuildError::Missing("a store"))?,
            self.keyring.ok_or(BuildError::Missing("a keyring"))?,
            &self.lookup_key.ok_or(BuildError::Missing("a lookup key"))?,
        )?
        .with_clock(clock)
        .with_issuer(issuer)
        .with_shared_accounts(passwords.clone())
        .with_attempt_policy(self.attempts.unwrap_or_default())
        .with_address_policy(self.addresses.unwrap_or_default())
        .with_address_grouping(AddressGrouping::ipv6_prefix(self.ipv6_prefix.unwrap_or(64)))
        .with_restricted_factor_alone(self.restricted_alone.unwrap_or(true));
        for name in external_names {
            mfa = mfa.with_external_issuer(name)?;
        }
        let no_factor = self.factors.iter().all(|factor| !factor.is_enrollable());
        for factor in self.factors {
            mfa = mfa.with_shared_factor(factor);
        }
        #[cfg(feature = "totp")]
        if no_factor {
            mfa = mfa.with_factor(stepup_mfa::totp::Totp::default());
        }
        #[cfg(not(feature = "totp"))]
        let _ = no_factor;
        if let Some(pool) = self.kdf {
            mfa = mfa.with_kdf_pool(pool);
        }
        for client in self.clients {
            mfa = mfa.with_client(client);
        }
        if let Some(policy) = self.registration {
            mfa = mfa.with_dynamic_registration(policy);
        }
        #[cfg(feature = "client-metadata")]
        if let Some(policy) = self.documents {
            mfa = mfa.with_client_metadata_documents(policy)?;
        }
        for resource in self.resources {
            mfa = mfa.with_resource(resource);
        }
        for scope in self.scopes {
            mfa = mfa.with_scope(scope);
        }
        if let Some(lifetime) = self.refresh_lifetime {
            mfa = mfa.with_refresh_lifetime(lifetime);
        }
        if let Some(lifetime) = self.session_lifetime {
            mfa = mfa.with_session_lifetime(lifetime);
        }
        if let Some(max_age) = self.fresh_mfa {
            mfa = mfa.with_fresh_mfa_max_age(max_age);
        }
        if let Some(max_age) = self.enrollment_max_age {
            mfa = mfa.with_enrollment_max_age(max_age);
        }
        if let Some(duration) = self.remember_for {
            mfa = mfa.with_remember_device_for(duration);
        }
        if let Some(mailer) = self.mailer.clone() {
            mfa = mfa.with_mailer(mailer);
        }
        if let Some(delay) = self.recovery_delay {
            mfa = mfa.with_recovery_delay(delay);
        }
        if let Some(notifier) =
            stepup_mfa::notices::combined(self.notifier, self.mailer, Some(passwords))
        {
            mfa = mfa.with_notifier(notifier);
        }
        Ok(StepUp {
            inner: Arc::new(Inner {
                mfa,
                verifier,
                trusted_proxies: self.trusted_proxies.unwrap_or_else(TrustedProxies::none),
                request_ceiling: self.request_ceiling.unwrap_or((
                    stepup_tower::rate_limit::DEFAULT_MAX,
                    stepup_tower::rate_limit::DEFAULT_WINDOW,
                )),
            }),
        })
    }
}

impl fmt::Debug for StepUpBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUpBuilder").finish_non_exhaustive()
    }
}
