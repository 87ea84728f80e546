//! The second-factor engine: TOTP enrollment and verification, backup codes and the MFA login
//! challenge, over any [`FactorStore`] and [`EphemeralStore`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use stepup_core::acr::amr;
use stepup_core::clock::{SharedClock, SystemClock};
use stepup_store::{
    BackupCodeHash, DeviceStore, EphemeralStore, FactorStore, StoreError, TotpRecord,
};

use crate::audit::Audit;
use crate::backup::BackupCodes;
use crate::limits::{AttemptLimiter, AttemptPolicy};
use crate::seal::Keyring;
use crate::tokens;
use crate::totp::{TotpAlgorithm, TotpConfig, TotpKey};

/// How long an `mfa_token` lives.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(5 * 60);
/// Wrong codes an `mfa_token` survives; the next one kills it.
pub const MAX_CODE_ATTEMPTS: u64 = 5;

/// Why a second-factor operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MfaError {
    /// The code is wrong, malformed, outside the window or already used.
    #[error("the code is invalid")]
    InvalidCode,
    /// The `mfa_token` is unknown, expired, used or exhausted by wrong codes.
    #[error("the mfa_token is invalid or expired")]
    InvalidMfaToken,
    /// The user has no active TOTP enrollment.
    #[error("no second factor is enrolled")]
    NotEnrolled,
    /// The user already has an active TOTP enrollment.
    #[error("an authenticator app is already enrolled")]
    AlreadyEnrolled,
    /// There is no pending enrollment to confirm.
    #[error("no enrollment is pending")]
    NoPendingEnrollment,
    /// Too many failed attempts: wait `retry_after` (`429`).
    #[error("too many attempts; retry later")]
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The store failed: callers fail closed (`503`).
    #[error("the store is unavailable")]
    Unavailable(#[from] StoreError),
    /// A stored secret could not be opened or a secret could not be sealed.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

/// What a new TOTP enrollment shows the user, once.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrollment {
    /// The secret in base32, for manual entry.
    pub secret: String,
    /// `otpauth://totp/…`.
    pub otpauth_uri: String,
    /// The URI as a locally made QR code, `data:image/png;base64,…`.
    pub qr_code: String,
}

/// The user's factors, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FactorSummary {
    /// The TOTP enrollment, if any.
    pub totp: Option<TotpSummary>,
    /// Unused backup codes.
    pub backup_codes_remaining: usize,
}

/// A TOTP enrollment, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TotpSummary {
    /// Confirmed by a first valid code.
    pub active: bool,
    /// When it was made (Unix seconds).
    pub created_at: u64,
}

/// A started MFA login: the token the client sends back with the code.
#[derive(Debug, Clone, Serialize)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// Opaque, single-use, 5 minutes.
    pub mfa_token: String,
    /// The methods that can complete it.
    pub methods: Vec<&'static str>,
}

/// What the user proves the second factor with.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Proof<'a> {
    /// A TOTP code.
    Totp(&'a str),
    /// A backup code.
    BackupCode(&'a str),
}

/// A completed MFA login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedChallenge {
    /// The user.
    pub subject: String,
    /// The methods really used, each once (RFC 8176), e.g. `["pwd", "otp"]`.
    pub amr: Vec<String>,
    /// Unused backup codes left, when one was used.
    pub remaining_backup_codes: Option<usize>,
    /// What the caller attached when starting the challenge (e.g. a pending OAuth authorization).
    pub context: Option<serde_json::Value>,
}

/// What an `mfa_token` stands for, kept in the ephemeral store under the token's hash.
#[derive(Serialize, Deserialize)]
struct Ticket {
    sub: String,
    amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    context: Option<serde_json::Value>,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Mfa {
    inner: Arc<Inner>,
}

struct Inner {
    factors: Arc<dyn FactorStore>,
    ephemeral: Arc<dyn EphemeralStore>,
    keyring: Keyring,
    backup: BackupCodes,
    totp: TotpConfig,
    clock: SharedClock,
    attempts: AttemptPolicy,
    audit: Audit,
    devices: Option<Arc<dyn DeviceStore>>,
}

impl Mfa {
    /// An engine over `factors` and `ephemeral`, sealing with `keyring` and keying backup-code
    /// lookups with `lookup_key` (≥ 32 bytes).
    pub fn new(
        factors: Arc<dyn FactorStore>,
        ephemeral: Arc<dyn EphemeralStore>,
        keyring: Keyring,
        lookup_key: &[u8],
    ) -> Result<Self, MfaError> {
        let backup = BackupCodes::new(lookup_key).map_err(MfaError::Internal)?;
        Ok(Self {
            inner: Arc::new(Inner {
                factors,
                ephemeral,
                keyring,
                backup,
                totp: TotpConfig::default(),
                clock: Arc::new(SystemClock),
                attempts: AttemptPolicy::default(),
                audit: Audit::default().with_clock(Arc::new(SystemClock)),
                devices: None,
            }),
        })
    }

    /// Sets the TOTP parameters of new enrollments.
    pub fn with_totp_config(self, config: TotpConfig) -> Self {
        self.map(|inner| inner.totp = config)
    }

    /// Sets the clock.
    pub fn with_clock(self, clock: SharedClock) -> Self {
        self.map(|inner| {
            inner.audit = inner.audit.clone().with_clock(clock.clone());
            inner.clock = clock;
        })
    }

    /// Sets where audit events go besides the log (store, notifier).
    pub fn with_audit(self, audit: Audit) -> Self {
        self.map(|inner| inner.audit = audit.with_clock(inner.clock.clone()))
    }

    /// Where remembered devices live, so that removing a factor or a user revokes them.
    pub fn with_devices(self, devices: Arc<dyn DeviceStore>) -> Self {
        self.map(|inner| inner.devices = Some(devices))
    }

    /// The audit trail, for events the application records itself.
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// Sets the per-user limits on failed verifications.
    pub fn with_attempt_policy(self, policy: AttemptPolicy) -> Self {
        self.map(|inner| inner.attempts = policy)
    }

    /// The ephemeral store.
    pub fn ephemeral_store(&self) -> &Arc<dyn EphemeralStore> {
        &self.inner.ephemeral
    }

    /// Runs one code verification under the user's attempt limit: counted before, forgiven on
    /// success; a wrong code is audited as `mfa_failed` with its `method`.
    async fn limited<T>(
        &self,
        user: &str,
        method: &'static str,
        verification: impl Future<Output = Result<T, MfaError>>,
    ) -> Result<T, MfaError> {
        let limiter = AttemptLimiter {
            ephemeral: self.inner.ephemeral.clone(),
            clock: self.inner.clock.clone(),
            policy: self.inner.attempts,
        };
        if let Err(refused) = limiter.admit(user).await {
            if refused.lockout_started {
                let retry_after = match &refused.error {
                    MfaError::RateLimited { retry_after } => retry_after.as_secs(),
                    _ => 0,
                };
                self.inner
                    .audit
                    .record(user, "lockout", json!({ "seconds": retry_after }))
                    .await;
            }
            return Err(refused.error);
        }
        let outcome = verification.await;
        match &outcome {
            Ok(_) => limiter.forgive(user).await?,
            Err(MfaError::InvalidCode) => {
                self.inner
                    .audit
                    .record(user, "mfa_failed", json!({ "method": method }))
                    .await;
            }
            Err(_) => {}
        }
        outcome
    }

    fn map(self, change: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(inner) => inner,
            Err(shared) => Inner {
                factors: shared.factors.clone(),
                ephemeral: shared.ephemeral.clone(),
                keyring: shared.keyring.clone(),
                backup: shared.backup.clone(),
                totp: shared.totp.clone(),
                clock: shared.clock.clone(),
                attempts: shared.attempts,
                audit: shared.audit.clone(),
                devices: shared.devices.clone(),
            },
        };
        change(&mut inner);
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The durable store.
    pub fn factor_store(&self) -> &Arc<dyn FactorStore> {
        &self.inner.factors
    }

    /// Starts a TOTP enrollment (pending until confirmed), replacing an unconfirmed one.
    pub async fn begin_totp_enrollment(
        &self,
        user: &str,
        account_label: &str,
    ) -> Result<TotpEnrollment, MfaError> {
        let config = &self.inner.totp;
        let secret = TotpKey::generate_secret();
        let key = TotpKey::new(
            &secret,
            config.algorithm,
            config.digits,
            config.period,
            config.skew,
            &config.issuer,
            account_label,
        )
        .map_err(|_| MfaError::Internal("invalid TOTP configuration"))?;
        let enrollment = TotpEnrollment {
            secret: key.secret_base32(),
            otpauth_uri: key
                .otpauth_uri()
                .map_err(|_| MfaError::Internal("could not build the otpauth URI"))?,
            qr_code: key
                .qr_code_data_url()
                .map_err(|_| MfaError::Internal("could not draw the QR code"))?,
        };
        let record = TotpRecord {
            sealed_secret: self.seal_totp_secret(user, &secret)?,
            algorithm: config.algorithm.name().to_owned(),
            digits: config.digits,
            period: config.period,
            active: false,
            last_used_step: None,
            created_at: self.now(),
        };
        if !self.inner.factors.put_pending_totp(user, record).await? {
            return Err(MfaError::AlreadyEnrolled);
        }
        self.inner
            .audit
            .record(user, "totp_enrollment_started", json!({}))
            .await;
        Ok(enrollment)
    }

    /// Confirms the pending enrollment with a first valid code; returns the backup codes, shown
    /// this once.
    pub async fn confirm_totp_enrollment(
        &self,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, MfaError> {
        let record = match self.inner.factors.totp(user).await? {
            None => return Err(MfaError::NoPendingEnrollment),
            Some(record) if record.active => return Err(MfaError::AlreadyEnrolled),
            Some(record) => record,
        };
        let key = self.totp_key(user, &record)?;
        let step = self
            .limited(user, "totp_setup", async {
                key.matching_step(code, self.now())
                    .ok_or(MfaError::InvalidCode)
            })
            .await?;
        let (codes, hashes) = self.new_backup_codes().await?;
        // Activation and the backup codes land together or not at all.
        if !self.inner.factors.activate_totp(user, step, hashes).await? {
            return Err(MfaError::NoPendingEnrollment);
        }
        self.inner
            .audit
            .record(
                user,
                "totp_enrolled",
                json!({ "backup_codes": codes.len() }),
            )
            .await;
        Ok(codes)
    }

    /// Checks a TOTP code of an active enrollment; a time step is accepted at most once. Counts
    /// against the user's attempt limit ([`MfaError::RateLimited`]).
    pub async fn verify_totp(&self, user: &str, code: &str) -> Result<(), MfaError> {
        self.limited(user, "totp", self.check_totp(user, code))
            .await
    }

    async fn check_totp(&self, user: &str, code: &str) -> Result<(), MfaError> {
        let record = match self.inner.factors.totp(user).await? {
            Some(record) if record.active => record,
            _ => return Err(MfaError::NotEnrolled),
        };
        let step = self
            .totp_key(user, &record)?
            .matching_step(code, self.now())
            .ok_or(MfaError::InvalidCode)?;
        if !self.inner.factors.accept_totp_step(user, step).await? {
            // The step was already used (a replay, or a concurrent submission that won).
            return Err(MfaError::InvalidCode);
        }
        Ok(())
    }

    /// Redeems a backup code: one hash check, single-use. Returns the codes left. Counts against
    /// the user's attempt limit.
    pub async fn redeem_backup_code(&self, user: &str, code: &str) -> Result<usize, MfaError> {
        self.limited(user, "backup_code", self.check_backup_code(user, code))
            .await
    }

    async fn check_backup_code(&self, user: &str, code: &str) -> Result<usize, MfaError> {
        let normalised = BackupCodes::normalise(code).ok_or(MfaError::InvalidCode)?;
        let lookup = self.inner.backup.lookup(&normalised);
        let hash = self
            .inner
            .factors
            .backup_code_hash(user, &lookup)
            .await?
            .ok_or(MfaError::InvalidCode)?;
        let matches = tokio::task::spawn_blocking(move || BackupCodes::verify(&normalised, &hash))
            .await
            .map_err(|_| MfaError::Internal("the hash check did not finish"))?;
        if !matches
            || !self
                .inner
                .factors
                .consume_backup_code(user, &lookup)
                .await?
        {
            return Err(MfaError::InvalidCode);
        }
        let remaining = self.inner.factors.remaining_backup_codes(user).await?;
        self.inner
            .audit
            .record(user, "backup_code_used", json!({ "remaining": remaining }))
            .await;
        Ok(remaining)
    }

    /// Replaces the whole set of backup codes; returns the new codes, shown this once.
    pub async fn regenerate_backup_codes(&self, user: &str) -> Result<Vec<String>, MfaError> {
        if !self.is_enrolled(user).await? {
            return Err(MfaError::NotEnrolled);
        }
        let (codes, hashes) = self.new_backup_codes().await?;
        self.inner
            .factors
            .replace_backup_codes(user, hashes)
            .await?;
        self.inner
            .audit
            .record(
                user,
                "backup_codes_regenerated",
                json!({ "count": codes.len() }),
            )
            .await;
        Ok(codes)
    }

    /// Removes the TOTP enrollment and the backup codes that went with it.
    pub async fn remove_totp(&self, user: &str) -> Result<bool, MfaError> {
        let existed = self.inner.factors.totp(user).await?.is_some();
        self.inner.factors.delete_factors(user).await?;
        if existed {
            self.inner
                .audit
                .record(user, "totp_removed", json!({}))
                .await;
        }
        // Devices remembered on the strength of that factor go with it.
        self.revoke_devices(user).await?;
        Ok(existed)
    }

    /// Removes everything that logs the user in (factors, backup codes, remembered devices), for
    /// account deletion. The audit trail stays: it is the record of what happened.
    pub async fn delete_user(&self, user: &str) -> Result<(), MfaError> {
        self.inner.factors.delete_factors(user).await?;
        self.revoke_devices(user).await?;
        Ok(())
    }

    /// Revokes every remembered device of the user; returns how many (audited when any).
    pub async fn revoke_devices(&self, user: &str) -> Result<usize, MfaError> {
        let Some(devices) = &self.inner.devices else {
            return Ok(0);
        };
        let revoked = devices.delete_devices(user).await?;
        if revoked > 0 {
            self.inner
                .audit
                .record(user, "devices_revoked", json!({ "count": revoked }))
                .await;
        }
        Ok(revoked)
    }

    /// Whether the user has an active second factor.
    pub async fn is_enrolled(&self, user: &str) -> Result<bool, MfaError> {
        Ok(self
            .inner
            .factors
            .totp(user)
            .await?
            .is_some_and(|record| record.active))
    }

    /// The user's factors, without secrets.
    pub async fn factors(&self, user: &str) -> Result<FactorSummary, MfaError> {
        let totp = self
            .inner
            .factors
            .totp(user)
            .await?
            .map(|record| TotpSummary {
                active: record.active,
                created_at: record.created_at,
            });
        let backup_codes_remaining = self.inner.factors.remaining_backup_codes(user).await?;
        Ok(FactorSummary {
            totp,
            backup_codes_remaining,
        })
    }

    /// Starts an MFA login for `user`, who has proven `first_factors` (e.g. `["pwd"]`).
    ///
    /// `context` travels with the challenge and comes back in [`CompletedChallenge::context`].
    pub async fn start_challenge(
        &self,
        user: &str,
        first_factors: &[&str],
        context: Option<serde_json::Value>,
    ) -> Result<MfaChallenge, MfaError> {
        let token = tokens::random_token();
        let ticket = Ticket {
            sub: user.to_owned(),
            amr: first_factors.iter().map(|m| (*m).to_owned()).collect(),
            context,
        };
        let ticket = serde_json::to_vec(&ticket).map_err(|_| MfaError::Internal("ticket"))?;
        let stored = self
            .inner
            .ephemeral
            .insert_if_absent(&challenge_key(&token), &ticket, CHALLENGE_TTL)
            .await?;
        if !stored {
            return Err(MfaError::Internal("mfa_token collision"));
        }
        let mut methods = vec!["totp"];
        if self.inner.factors.remaining_backup_codes(user).await? > 0 {
            methods.push("backup_code");
        }
        Ok(MfaChallenge {
            mfa_required: true,
            mfa_token: token,
            methods,
        })
    }

    /// Completes an MFA login. The token is consumed on success and dies after
    /// [`MAX_CODE_ATTEMPTS`] wrong codes; until then a wrong code leaves it usable.
    pub async fn complete_challenge(
        &self,
        mfa_token: &str,
        proof: Proof<'_>,
    ) -> Result<CompletedChallenge, MfaError> {
        if mfa_token.is_empty() || mfa_token.len() > 128 {
            return Err(MfaError::InvalidMfaToken);
        }
        let key = challenge_key(mfa_token);
        let ephemeral = &self.inner.ephemeral;
        let ticket = ephemeral
            .get(&key)
            .await?
            .ok_or(MfaError::InvalidMfaToken)?;
        let ticket: Ticket =
            serde_json::from_slice(&ticket).map_err(|_| MfaError::InvalidMfaToken)?;

        let outcome = match proof {
            Proof::Totp(code) => self.verify_totp(&ticket.sub, code).await.map(|()| None),
            Proof::BackupCode(code) => self.redeem_backup_code(&ticket.sub, code).await.map(Some),
        };
        let remaining_backup_codes = match outcome {
            Ok(remaining) => remaining,
            Err(MfaError::InvalidCode) => {
                let attempts_key = format!("{key}:attempts");
                let attempts = ephemeral.increment(&attempts_key, CHALLENGE_TTL).await?;
                if attempts >= MAX_CODE_ATTEMPTS {
                    ephemeral.remove(&key).await?;
                }
                return Err(MfaError::InvalidCode);
            }
            Err(other) => return Err(other),
        };
        if ephemeral.take(&key).await?.is_none() {
            return Err(MfaError::InvalidMfaToken);
        }
        let mut amr = ticket.amr;
        if !amr.iter().any(|method| method == amr::OTP) {
            amr.push(amr::OTP.to_owned());
        }
        self.inner
            .audit
            .record(
                &ticket.sub,
                "mfa_succeeded",
                json!({ "method": proof_method(proof) }),
            )
            .await;
        Ok(CompletedChallenge {
            subject: ticket.sub,
            amr,
            remaining_backup_codes,
            context: ticket.context,
        })
    }

    /// Re-seals every TOTP secret not sealed under the current key; returns how many moved.
    pub async fn reseal_secrets(&self) -> Result<usize, MfaError> {
        let keyring = &self.inner.keyring;
        let mut moved = 0;
        for (user, sealed) in self.inner.factors.totp_secrets().await? {
            if Keyring::key_id_of(&sealed).ok() == Some(keyring.current_key_id()) {
                continue;
            }
            let secret = keyring
                .open(&sealed, &totp_context(&user))
                .map_err(|_| MfaError::Internal("a stored secret does not open"))?;
            let resealed = self.seal_totp_secret(&user, &secret)?;
            if self
                .inner
                .factors
                .replace_totp_secret(&user, &sealed, &resealed)
                .await?
            {
                moved += 1;
            }
        }
        Ok(moved)
    }

    fn seal_totp_secret(&self, user: &str, secret: &[u8]) -> Result<String, MfaError> {
        self.inner
            .keyring
            .seal(secret, &totp_context(user))
            .map_err(|_| MfaError::Internal("could not seal the secret"))
    }

    fn totp_key(&self, user: &str, record: &TotpRecord) -> Result<TotpKey, MfaError> {
        let secret = self
            .inner
            .keyring
            .open(&record.sealed_secret, &totp_context(user))
            .map_err(|_| MfaError::Internal("a stored secret does not open"))?;
        let algorithm = TotpAlgorithm::from_name(&record.algorithm)
            .ok_or(MfaError::Internal("unknown stored TOTP algorithm"))?;
        TotpKey::new(
            &secret,
            algorithm,
            record.digits,
            record.period,
            self.inner.totp.skew,
            &self.inner.totp.issuer,
            user,
        )
        .map_err(|_| MfaError::Internal("invalid stored TOTP parameters"))
    }

    async fn new_backup_codes(&self) -> Result<(Vec<String>, Vec<BackupCodeHash>), MfaError> {
        let codes = BackupCodes::generate();
        let backup = self.inner.backup.clone();
        let for_hashing = codes.clone();
        let hashes = tokio::task::spawn_blocking(move || {
            for_hashing
                .iter()
                .map(|code| {
                    let normalised = BackupCodes::normalise(code)?;
                    let hash = BackupCodes::hash(&normalised).ok()?;
                    Some(BackupCodeHash {
                        lookup: backup.lookup(&normalised),
                        hash,
                    })
                })
                .collect::<Option<Vec<_>>>()
        })
        .await
        .map_err(|_| MfaError::Internal("hashing did not finish"))?
        .ok_or(MfaError::Internal("could not hash the backup codes"))?;
        Ok((codes, hashes))
    }

    fn now(&self) -> u64 {
        self.inner.clock.unix_seconds()
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

/// The method a proof uses, for the audit trail (never the code itself).
fn proof_method(proof: Proof<'_>) -> &'static str {
    match proof {
        Proof::Totp(_) => "totp",
        Proof::BackupCode(_) => "backup_code",
    }
}

/// Associated data binding a sealed TOTP secret to its user.
fn totp_context(user: &str) -> String {
    format!("totp:{user}")
}

/// Where an `mfa_token` lives: only its SHA-256, so the store never holds the token itself.
fn challenge_key(token: &str) -> String {
    format!("mfa_token:{}", tokens::digest(token))
}
