//! [`Mfa`]: the engine, the one gateway to stepup's state. Every read or write of factors,
//! ceremonies, remembered devices, authorization codes and the audit trail goes through it; the
//! factor modules ([`totp`](crate::totp), [`backup`](crate::backup), [`webauthn`](crate::webauthn)) and the concerns
//! ([`challenge`](crate::challenge), [`devices`](crate::devices),
//! [`authorization`](crate::authorization), [`account`](crate::account)) add its methods.

use std::fmt;
use std::sync::Arc;

use stepup_core::clock::{SharedClock, SystemClock};
use stepup_store::{AuditStore, DeviceStore, EphemeralStore, FactorStore, Store};

use crate::audit::Audit;
use crate::backup::BackupCodes;
use crate::kdf::KdfPool;
use crate::limits::{AddressPolicy, AttemptPolicy};
use crate::seal::Keyring;
use crate::totp::TotpConfig;
use crate::webauthn::RelyingParty;
use crate::{MfaError, Notifier};

/// The stores the engine works on. One backend can serve all four ([`Stores::shared`]); a
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
}

impl Stores {
    /// One store for every kind of state.
    pub fn shared<S: Store>(store: S) -> Self {
        let store = Arc::new(store);
        Self {
            factors: store.clone(),
            ephemeral: store.clone(),
            devices: store.clone(),
            audit: store,
        }
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
    pub(crate) totp: TotpConfig,
    pub(crate) clock: SharedClock,
    pub(crate) attempts: AttemptPolicy,
    pub(crate) passwords: AttemptPolicy,
    pub(crate) addresses: AddressPolicy,
    pub(crate) audit: Audit,
    pub(crate) kdf: KdfPool,
    pub(crate) relying_party: Option<RelyingParty>,
    pub(crate) recovery: crate::recovery::RecoverySettings,
    pub(crate) sms: crate::sms::SmsSettings,
}

impl Mfa {
    /// An engine over `stores`, sealing with `keyring` and keying code lookups with
    /// `lookup_key` (≥ 32 bytes; keep it as secret and as stable as the sealing keys).
    pub fn new(stores: Stores, keyring: Keyring, lookup_key: &[u8]) -> Result<Self, MfaError> {
        let backup = BackupCodes::new(lookup_key).map_err(MfaError::Internal)?;
        let clock: SharedClock = Arc::new(SystemClock);
        let audit = Audit::new(stores.audit.clone(), clock.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                stores,
                keyring,
                backup,
                totp: TotpConfig::default(),
                clock,
                attempts: AttemptPolicy::default(),
                passwords: AttemptPolicy::passwords(),
                addresses: AddressPolicy::default(),
                audit,
                kdf: KdfPool::default(),
                relying_party: None,
                recovery: Default::default(),
                sms: Default::default(),
            }),
        })
    }

    /// Sets the TOTP parameters of new enrollments.
    pub fn with_totp_config(self, config: TotpConfig) -> Self {
        self.map(|inner| inner.totp = config)
    }

    /// Sets the clock of codes, challenges, limits and audit events.
    pub fn with_clock(self, clock: SharedClock) -> Self {
        self.map(|inner| {
            inner.audit = inner.audit.clone().with_clock(clock.clone());
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

    /// Sets the pool every slow hash runs in (default: as many slots as cores).
    pub fn with_kdf_pool(self, pool: KdfPool) -> Self {
        self.map(|inner| inner.kdf = pool)
    }

    /// Enables passkeys and security keys (WebAuthn) for `relying_party`; without it every
    /// WebAuthn operation fails with [`MfaError::WebauthnNotConfigured`].
    pub fn with_relying_party(self, relying_party: RelyingParty) -> Self {
        self.map(|inner| inner.relying_party = Some(relying_party))
    }

    /// The WebAuthn relying party, if passkeys are configured.
    pub fn relying_party(&self) -> Option<&RelyingParty> {
        self.inner.relying_party.as_ref()
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

    /// The stores, for layers that only read (the remembered-device cookie, rate limits).
    pub fn stores(&self) -> &Stores {
        &self.inner.stores
    }

    /// The clock.
    pub fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    /// Re-seals every stored secret not sealed under the keyring's current key — TOTP secrets
    /// and SMS phone numbers — and returns how many moved. After a rotation (the new key
    /// current, the old one kept with [`Keyring::with_old_key`](crate::Keyring::with_old_key)),
    /// run this, then drop the old key. Each secret moves by compare-and-set on its payload, so
    /// a concurrent change is never overwritten (it is left for the next run).
    pub async fn reseal_secrets(&self) -> Result<usize, MfaError> {
        let totp = self.reseal_totp_secrets().await?;
        let phones = self.reseal_phone_numbers().await?;
        Ok(totp + phones)
    }

    /// Whether the durable store answers and accepts writes (readiness).
    pub async fn ping(&self) -> Result<(), MfaError> {
        Ok(self.inner.stores.factors.ping().await?)
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
            .field("totp", &self.inner.totp)
            .finish_non_exhaustive()
    }
}
