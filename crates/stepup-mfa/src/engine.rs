//! [`Mfa`]: the engine, the one gateway to stepup's state. Every read or write of factors,
//! ceremonies, remembered devices, authorization codes and the audit trail goes through it: the
//! factors reach the state through their [`FactorContext`](crate::factor::FactorContext), the
//! adapters (the axum routes, the tower layers' policies) through its methods.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use stepup_core::client::AddressGrouping;
use stepup_core::clock::{SharedClock, SystemClock};
use stepup_store::{
    AuditStore, DeviceStore, EphemeralStore, FactorStore, Generation, GrantStore, Store,
};

use crate::accounts::{NoAccounts, PasswordCheck};
use crate::audit::Audit;
use crate::backup::{BackupCodes, BackupCodesFactor};
use crate::factor::{Factor, Registry};
use crate::kdf::KdfPool;
use crate::limits::{AddressPolicy, AttemptPolicy};
use crate::seal::Keyring;
use crate::{MfaError, Notifier};

/// The stores the engine works on. One backend can serve all five ([`Stores::shared`]); a
/// deployment of several instances may keep ephemeral state elsewhere (Redis).
#[derive(Clone)]
pub struct Stores {
    /// Durable factor state.
    pub factors: Arc<dyn FactorStore>,
    /// Ceremonies and counters.
    pub ephemeral: Arc<dyn EphemeralStore>,
    /// Remembered devices.
    pub devices: Arc<dyn DeviceStore>,
    /// The audit trail.
    pub audit: Arc<dyn AuditStore>,
    /// The authorization server's registered clients and refresh-token families.
    pub grants: Arc<dyn GrantStore>,
}

impl Stores {
    /// One store for every kind of state.
    pub fn shared<S: Store>(store: S) -> Self {
        let store = Arc::new(store);
        Self {
            factors: store.clone(),
            ephemeral: store.clone(),
            devices: store.clone(),
            audit: store.clone(),
            grants: store,
        }
    }

    /// These stores with the ephemeral state in `ephemeral` (e.g. Redis).
    pub fn with_ephemeral(mut self, ephemeral: impl EphemeralStore) -> Self {
        self.ephemeral = Arc::new(ephemeral);
        self
    }
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// The engine. Cheap to clone.
///
/// ```
/// use stepup_mfa::{Keyring, Mfa, Stores};
/// use stepup_store::MemoryStore;
///
/// let mfa = Mfa::new(
///     Stores::shared(MemoryStore::new()),
///     Keyring::new("k1", &Keyring::generate_key())?,
///     &Keyring::generate_key(),
/// )?;
/// assert!(mfa.kinds().any(|kind| kind == "backup_code"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Mfa {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) stores: Stores,
    pub(crate) keyring: Keyring,
    pub(crate) backup: BackupCodes,
    pub(crate) clock: SharedClock,
    pub(crate) attempts: AttemptPolicy,
    pub(crate) passwords: AttemptPolicy,
    pub(crate) addresses: AddressPolicy,
    pub(crate) grouping: AddressGrouping,
    pub(crate) audit: Audit,
    pub(crate) kdf: KdfPool,
    pub(crate) factors: Registry,
    pub(crate) accounts: Arc<dyn PasswordCheck>,
    pub(crate) restricted_alone: bool,
    pub(crate) login: crate::login::LoginSettings,
    pub(crate) replica: Arc<crate::replica::Replica>,
    pub(crate) recovery: crate::recovery::RecoverySettings,
    pub(crate) clients: crate::clients::ClientSettings,
    pub(crate) authorization: crate::refresh::AuthorizationSettings,
    pub(crate) external: crate::external::ExternalIssuers,
}

impl Mfa {
    /// An engine over `stores`, sealing with `keyring` and keying code lookups with
    /// `lookup_key` (≥ 32 bytes; keep it as secret and as stable as the sealing keys). It knows
    /// backup codes; register the factors users enroll with [`with_factor`](Self::with_factor).
    pub fn new(stores: Stores, keyring: Keyring, lookup_key: &[u8]) -> Result<Self, MfaError> {
        let backup = BackupCodes::new(lookup_key).map_err(MfaError::internal)?;
        let clock: SharedClock = Arc::new(SystemClock);
        let audit = Audit::new(stores.audit.clone(), clock.clone());
        let mut factors = Registry::default();
        factors.register(Arc::new(BackupCodesFactor));
        Ok(Self {
            inner: Arc::new(Inner {
                stores,
                keyring,
                backup,
                clock,
                attempts: AttemptPolicy::default(),
                passwords: AttemptPolicy::passwords(),
                addresses: AddressPolicy::default(),
                grouping: AddressGrouping::default(),
                audit,
                kdf: KdfPool::default(),
                factors,
                accounts: Arc::new(NoAccounts),
                restricted_alone: true,
                login: Default::default(),
                recovery: Default::default(),
                clients: Default::default(),
                authorization: Default::default(),
                external: Default::default(),
                replica: Arc::new(crate::replica::Replica::new(
                    crate::replica::FRESHNESS_BOUND,
                )),
            }),
        })
    }

    /// Registers `factor` (replacing a registered one of the same kind).
    pub fn with_factor(self, factor: impl Factor) -> Self {
        self.with_shared_factor(Arc::new(factor))
    }

    /// [`with_factor`](Self::with_factor), shared.
    pub fn with_shared_factor(self, factor: Arc<dyn Factor>) -> Self {
        self.map(|inner| inner.factors.register(factor))
    }

    /// The application's accounts: the password check of the login, whether an account still
    /// exists, its mail address and name.
    pub fn with_accounts(self, accounts: impl PasswordCheck) -> Self {
        self.with_shared_accounts(Arc::new(accounts))
    }

    /// [`with_accounts`](Self::with_accounts), shared.
    pub fn with_shared_accounts(self, accounts: Arc<dyn PasswordCheck>) -> Self {
        self.map(|inner| inner.accounts = accounts)
    }

    /// Whether a restricted factor (SMS, email) may be a user's only factor (default `true`;
    /// NIST SP 800-63B advises offering it beside an unrestricted one).
    pub fn with_restricted_factor_alone(self, allowed: bool) -> Self {
        self.map(|inner| inner.restricted_alone = allowed)
    }

    /// Sets the clock of codes, challenges, limits and audit events.
    pub fn with_clock(self, clock: SharedClock) -> Self {
        self.map(|inner| {
            inner.audit = inner.audit.clone().with_clock(clock.clone());
            if let Some(issuer) = inner.login.issuer.take() {
                inner.login.issuer = Some(issuer.with_clock(clock.clone()));
            }
            inner.clock = clock;
        })
    }

    /// Calls `notifier` on factor changes (besides the log and the audit store).
    pub fn with_notifier(self, notifier: Arc<dyn Notifier>) -> Self {
        self.map(|inner| inner.audit = inner.audit.clone().with_notifier(notifier))
    }

    /// Sets the per-user limits on failed verifications and the factor lock.
    pub fn with_attempt_policy(self, policy: AttemptPolicy) -> Self {
        self.map(|inner| inner.attempts = policy)
    }

    /// Sets the per-account limit on failed passwords (default [`AttemptPolicy::passwords`]).
    pub fn with_password_policy(self, policy: AttemptPolicy) -> Self {
        self.map(|inner| inner.passwords = policy)
    }

    /// Sets the per-address limit on failed logins.
    pub fn with_address_policy(self, policy: AddressPolicy) -> Self {
        self.map(|inner| inner.addresses = policy)
    }

    /// How every per-address limit groups clients (default: IPv6 by /64).
    pub fn with_address_grouping(self, grouping: AddressGrouping) -> Self {
        self.map(|inner| inner.grouping = grouping)
    }

    /// Sets the pool every slow hash runs in (default: as many slots as cores).
    pub fn with_kdf_pool(self, pool: KdfPool) -> Self {
        self.map(|inner| inner.kdf = pool)
    }

    /// The kinds of the registered factors, in registration order.
    pub fn kinds(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.inner.factors.iter().map(|factor| factor.kind())
    }

    /// The registered factor of `kind`.
    pub fn factor(&self, kind: &str) -> Option<&Arc<dyn Factor>> {
        self.inner.factors.find(kind)
    }

    /// The slow-hash pool: run the application's password hashing in it too, so a flood of
    /// logins or registrations cannot exhaust memory.
    pub fn kdf(&self) -> &KdfPool {
        &self.inner.kdf
    }

    /// The audit trail, for events the application records itself.
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// How per-address limits group clients.
    pub fn address_grouping(&self) -> AddressGrouping {
        self.inner.grouping
    }

    /// Whether the durable store answers and accepts writes, and the ephemeral one answers
    /// (readiness).
    pub async fn ping(&self) -> Result<(), MfaError> {
        self.factors().ping().await?;
        self.ephemeral().get("ping").await?;
        Ok(())
    }

    /// Re-seals every stored secret not sealed under the keyring's current key (each factor
    /// says what its payload seals) and returns how many moved. After a rotation (the new key
    /// current, the old one kept with [`Keyring::with_old_key`](crate::Keyring::with_old_key)),
    /// run this, then drop the old key. Each secret moves by compare-and-set on its payload, so
    /// a concurrent change is never overwritten (it is left for the next run).
    pub async fn reseal_secrets(&self) -> Result<usize, MfaError> {
        let mut moved = 0;
        let client = crate::factor::ClientInfo::default();
        for factor in self.inner.factors.iter() {
            for credential in self.factors().credentials_of_kind(factor.kind()).await? {
                let cx = crate::factor::FactorContext::new(
                    self,
                    factor.kind(),
                    &credential.user,
                    credential.generation,
                    &client,
                );
                let Some(resealed) = factor.reseal(&cx, &credential)? else {
                    continue;
                };
                if self
                    .factors()
                    .replace_payload(credential.key(), &credential.payload, &resealed, None)
                    .await?
                {
                    moved += 1;
                }
            }
        }
        Ok(moved)
    }

    pub(crate) fn now(&self) -> u64 {
        self.inner.clock.unix_seconds()
    }

    pub(crate) fn factors(&self) -> &dyn FactorStore {
        self.inner.stores.factors.as_ref()
    }

    pub(crate) fn ephemeral(&self) -> &dyn EphemeralStore {
        self.inner.stores.ephemeral.as_ref()
    }

    pub(crate) fn devices_store(&self) -> &dyn DeviceStore {
        self.inner.stores.devices.as_ref()
    }

    pub(crate) fn grants(&self) -> &dyn GrantStore {
        self.inner.stores.grants.as_ref()
    }

    pub(crate) fn accounts(&self) -> &dyn PasswordCheck {
        self.inner.accounts.as_ref()
    }

    /// The key `client` is limited under, by the one grouping rule.
    pub(crate) fn address_key(&self, client: Option<IpAddr>) -> String {
        self.inner.grouping.key(client)
    }

    /// The user's generation now.
    pub(crate) async fn current_generation(&self, user: &str) -> Result<Generation, MfaError> {
        Ok(self.factors().generation(user).await?)
    }

    pub(crate) async fn account_label(&self, user: &str) -> String {
        self.accounts()
            .account_label(user)
            .await
            .unwrap_or_else(|| user.to_owned())
    }

    pub(crate) async fn account_email(&self, user: &str) -> Result<Option<String>, MfaError> {
        Ok(self.accounts().email_of(user).await?)
    }

    pub(crate) fn map(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl fmt::Debug for Mfa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mfa")
            .field("keyring", &self.inner.keyring)
            .field("factors", &self.kinds().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
