use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use stepup_core::clock::{SharedClock, SystemClock};
use stepup_core::token::{JwtIssuer, JwtVerifier};
use stepup_mfa::{
    AddressPolicy, AttemptPolicy, KdfPool, Keyring, Mfa, MfaError, Notifier, RelyingParty, Stores,
    TotpConfig,
};
use stepup_store::Store;
use stepup_tower::{AuthenticateLayer, TrustedProxies};

use crate::oauth::OAuthClient;

/// The application's own password check: stepup never stores passwords.
#[async_trait]
pub trait PasswordCheck: Send + Sync + 'static {
    /// The user id these credentials belong to, or `None` when they are wrong. Implementations
    /// should take as long for an unknown user as for a wrong password.
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed>;

    /// Whether the account `user` still exists. stepup's routes refuse every token of a user
    /// for whom this is `false`: they never enroll a factor or mint a token for an account the
    /// application has deleted.
    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed>;

    /// The user id `username` belongs to, if the application will tell: used only to record a
    /// failed password in that user's audit trail (default: none).
    async fn user_of(&self, username: &str) -> Result<Option<String>, PasswordCheckFailed> {
        let _ = username;
        Ok(None)
    }

    /// The mail address of `user`, where recovery codes and notifications go (default: none, so
    /// stepup mails nothing).
    async fn email_of(&self, user: &str) -> Result<Option<String>, PasswordCheckFailed> {
        let _ = user;
        Ok(None)
    }

    /// The user whose mail address is `email`, for a recovery request (default: none, so
    /// recovery is never offered). Implementations should take as long for an unknown address.
    async fn user_by_email(&self, email: &str) -> Result<Option<String>, PasswordCheckFailed> {
        let _ = email;
        Ok(None)
    }

    /// The account name shown in the authenticator app (default: the user id).
    async fn account_label(&self, user: &str) -> Option<String> {
        let _ = user;
        None
    }
}

/// The password check could not run (its database is down): answered `503`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the password check is unavailable")]
pub struct PasswordCheckFailed;

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

/// stepup for an axum application: the token issuer, the MFA engine and the drop-in routes.
/// Cheap to clone.
#[derive(Clone)]
pub struct StepUp {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) issuer: JwtIssuer,
    pub(crate) verifier: JwtVerifier,
    pub(crate) mfa: Mfa,
    pub(crate) passwords: Arc<dyn PasswordCheck>,
    pub(crate) fresh_mfa: Duration,
    pub(crate) enrollment_max_age: Duration,
    pub(crate) clients: Vec<OAuthClient>,
    pub(crate) clock: SharedClock,
    pub(crate) remember_for: Duration,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) request_ceiling: (u64, Duration),
    pub(crate) ipv6_prefix: u8,
}

impl StepUp {
    /// Starts the configuration.
    pub fn builder() -> StepUpBuilder {
        StepUpBuilder::default()
    }

    /// The drop-in routes: `POST /oauth/authorize`, `/oauth/authorize/mfa`, `/oauth/token` and
    /// `/api/mfa/*`. Mount with `.merge(stepup.routes())` under `.layer(stepup.authenticate())`.
    pub fn routes(&self) -> Router {
        crate::router::router(self.clone())
    }

    /// The layer that verifies bearer tokens issued by this `StepUp`.
    pub fn authenticate(&self) -> AuthenticateLayer {
        AuthenticateLayer::new(self.inner.verifier.clone())
    }

    /// The MFA engine, for the application's own handlers (account deletion, admin resets).
    pub fn mfa(&self) -> &Mfa {
        &self.inner.mfa
    }

    /// The reverse proxies believed for client addresses.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted_proxies
    }

    /// The token issuer.
    pub fn issuer(&self) -> &JwtIssuer {
        &self.inner.issuer
    }

    /// How recent a second factor must be to regenerate backup codes or remove a factor.
    pub fn fresh_mfa_max_age(&self) -> Duration {
        self.inner.fresh_mfa
    }

    pub(crate) fn now(&self) -> u64 {
        self.inner.clock.unix_seconds()
    }
}

impl fmt::Debug for StepUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUp")
            .field("issuer", &self.inner.issuer)
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
    totp: TotpConfig,
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
    relying_party: Option<RelyingParty>,
    sms_provider: Option<stepup_mfa::SmsProvider>,
    sms_policy: Option<stepup_mfa::SmsPolicy>,
    sms_needs_another_factor: Option<bool>,
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

    /// Makes a confirmed recovery wait `delay` before it takes effect (default: none; e.g. 24
    /// hours for high-value accounts). It takes effect at the first password login after the
    /// delay; a login with an existing factor before then cancels it (see
    /// [`stepup_mfa::recovery`]).
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

    /// The prefix length IPv6 clients are grouped by for the per-address limits (default 64).
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

    /// The application's password check (required).
    pub fn passwords(mut self, passwords: impl PasswordCheck) -> Self {
        self.passwords = Some(Arc::new(passwords));
        self
    }

    /// TOTP parameters for new enrollments.
    pub fn totp(mut self, config: TotpConfig) -> Self {
        self.totp = config;
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

    /// Registers an OAuth client for the authorization-code flow.
    pub fn client(mut self, client: OAuthClient) -> Self {
        self.clients.push(client);
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

    /// The WebAuthn relying party: enables passkeys and security keys (registration, the
    /// assertion as a second factor, passwordless login). Without it the WebAuthn routes answer
    /// `404 passkeys_not_configured`.
    pub fn relying_party(mut self, relying_party: RelyingParty) -> Self {
        self.relying_party = Some(relying_party);
        self
    }

    /// Enables SMS codes (`/api/mfa/sms/*`, `/oauth/authorize/mfa/sms/send`): stepup makes the
    /// codes and an [`SmsSender`](stepup_mfa::SmsSender) delivers them, or a provider such as
    /// [`TwilioVerify`](stepup_mfa::TwilioVerify) makes and checks them. Without it those routes
    /// answer `404 sms_not_configured`.
    pub fn sms(mut self, provider: stepup_mfa::SmsProvider) -> Self {
        self.sms_provider = Some(provider);
        self
    }

    /// SMS limits, country allow-list and code lifetime (default [`stepup_mfa::SmsPolicy`]).
    pub fn sms_policy(mut self, policy: stepup_mfa::SmsPolicy) -> Self {
        self.sms_policy = Some(policy);
        self
    }

    /// Refuse SMS as a user's only factor (default `false`): SMS is a NIST SP 800-63B
    /// *restricted* authenticator. Overrides the policy's `needs_another_factor`.
    pub fn sms_needs_another_factor(mut self, needed: bool) -> Self {
        self.sms_needs_another_factor = Some(needed);
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<StepUp, BuildError> {
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let issuer = self
            .issuer
            .ok_or(BuildError::Missing("an issuer"))?
            .with_clock(clock.clone());
        let verifier = issuer.verifier().build()?;
        let mut mfa = Mfa::new(
            self.stores.ok_or(BuildError::Missing("a store"))?,
            self.keyring.ok_or(BuildError::Missing("a keyring"))?,
            &self.lookup_key.ok_or(BuildError::Missing("a lookup key"))?,
        )?
        .with_totp_config(self.totp)
        .with_attempt_policy(self.attempts.unwrap_or_default())
        .with_address_policy(self.addresses.unwrap_or_default())
        .with_clock(clock.clone());
        if let Some(pool) = self.kdf {
            mfa = mfa.with_kdf_pool(pool);
        }
        if let Some(relying_party) = self.relying_party {
            mfa = mfa.with_relying_party(relying_party);
        }
        if let Some(mailer) = self.mailer {
            mfa = mfa.with_mailer(mailer);
        }
        if let Some(delay) = self.recovery_delay {
            mfa = mfa.with_recovery_delay(delay);
        }
        if let Some(notifier) =
            crate::recovery::notifier(self.notifier, mfa.mailer().cloned(), self.passwords.clone())
        {
            mfa = mfa.with_notifier(notifier);
        }
        if let Some(provider) = self.sms_provider {
            mfa = mfa.with_sms_provider(provider);
        }
        let mut sms_policy = self.sms_policy.unwrap_or_default();
        if let Some(needed) = self.sms_needs_another_factor {
            sms_policy.needs_another_factor = needed;
        }
        mfa = mfa.with_sms_policy(sms_policy);
        Ok(StepUp {
            inner: Arc::new(Inner {
                issuer,
                verifier,
                mfa,
                passwords: self
                    .passwords
                    .ok_or(BuildError::Missing("a password check"))?,
                fresh_mfa: self.fresh_mfa.unwrap_or(Duration::from_secs(5 * 60)),
                enrollment_max_age: self
                    .enrollment_max_age
                    .unwrap_or(crate::caller::DEFAULT_ENROLLMENT_MAX_AGE),
                clients: self.clients,
                clock,
                remember_for: self
                    .remember_for
                    .unwrap_or(stepup_tower::DEFAULT_REMEMBER_FOR),
                trusted_proxies: self.trusted_proxies.unwrap_or_else(TrustedProxies::none),
                request_ceiling: self.request_ceiling.unwrap_or((
                    stepup_tower::rate_limit::DEFAULT_MAX,
                    stepup_tower::rate_limit::DEFAULT_WINDOW,
                )),
                ipv6_prefix: self.ipv6_prefix.unwrap_or(64),
            }),
        })
    }
}

impl fmt::Debug for StepUpBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepUpBuilder").finish_non_exhaustive()
    }
}
