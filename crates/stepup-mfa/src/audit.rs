//! The audit trail: every factor change, MFA success and failure, backup-code use, lockout,
//! remembered or revoked device and issued token is one [`AuditEvent`] passed to
//! [`Audit::record`], which writes a structured `tracing` event (target `stepup::audit`) and a
//! stored record the user can read back. Events hold no secret, code or token: only counts, ids
//! and method names.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use stepup_core::clock::SharedClock;
use stepup_store::{AuditRecord, AuditStore, StoreError};

use crate::Method;

/// Something that happened to a user's authentication. [`kind`](Self::kind) is the stable name
/// stored and logged; the fields are the detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AuditEvent {
    /// A TOTP enrollment was started (pending until confirmed).
    TotpEnrollmentStarted {},
    /// A TOTP enrollment was confirmed; `backup_codes` were issued with it (0 if the user
    /// already had some).
    TotpEnrolled {
        /// Backup codes issued.
        backup_codes: usize,
    },
    /// The TOTP factor was removed.
    TotpRemoved {},
    /// A WebAuthn credential (passkey or security key) was registered; `backup_codes` were
    /// issued with it (0 if the user already had a factor).
    WebauthnEnrolled {
        /// The credential id (base64url; public, not a secret).
        credential_id: String,
        /// Backup codes issued.
        backup_codes: usize,
    },
    /// A WebAuthn credential was removed.
    WebauthnRemoved {
        /// The credential id.
        credential_id: String,
    },
    /// An assertion's signature counter did not move forward: the authenticator may have been
    /// cloned. The assertion was refused.
    WebauthnCloneSuspected {
        /// The credential id.
        credential_id: String,
    },
    /// An SMS enrollment was started (pending until confirmed).
    SmsEnrollmentStarted {},
    /// A phone number was confirmed as an SMS factor; `backup_codes` were issued with it.
    SmsEnrolled {
        /// Backup codes issued.
        backup_codes: usize,
    },
    /// The SMS factor was removed.
    SmsRemoved {},
    /// An SMS code was sent (`purpose`: `enrollment` or `login`); never the number or code.
    SmsSent {
        /// What for.
        purpose: &'static str,
    },
    /// An SMS send was refused: `cooldown`, `number_limit`, `user_limit`, `address_limit`,
    /// `country_not_allowed` or `sms_needs_another_factor`.
    SmsRefused {
        /// Why.
        reason: &'static str,
    },
    /// A backup code was used.
    BackupCodeUsed {
        /// Codes left.
        remaining: usize,
    },
    /// The backup codes were replaced by a new set.
    BackupCodesRegenerated {
        /// Codes in the new set.
        count: usize,
    },
    /// A second factor completed an MFA step.
    MfaSucceeded {
        /// The factor used.
        method: Method,
    },
    /// A code or assertion was wrong (`method` is the factor, or `totp_setup` while enrolling).
    MfaFailed {
        /// The factor tried.
        method: &'static str,
    },
    /// The per-user attempt limit started a lockout.
    Lockout {
        /// How long it lasts.
        seconds: u64,
    },
    /// A factor failed so many times in a row that it is locked until recovery or reset.
    FactorLocked {
        /// The locked factor.
        method: Method,
        /// The consecutive failures.
        failures: u64,
    },
    /// A browser was remembered after a second factor.
    DeviceRemembered {
        /// The device.
        device_id: String,
    },
    /// A remembered browser skipped the MFA step.
    DeviceUsed {
        /// The device.
        device_id: String,
    },
    /// One remembered browser was revoked.
    DeviceRevoked {
        /// The device.
        device_id: String,
    },
    /// Every remembered browser of the user was revoked.
    DevicesRevoked {
        /// How many.
        count: usize,
    },
    /// An access token was issued.
    TokenIssued {
        /// Its `acr`.
        acr: String,
        /// Its `amr`.
        amr: Vec<String>,
        /// `direct` or `authorization_code`.
        via: &'static str,
    },
    /// An authorization code was issued to a client.
    AuthorizationCodeIssued {
        /// The client.
        client_id: String,
    },
    /// An authorization code was presented with the wrong client, redirect URI or verifier.
    AuthorizationCodeRefused {},
    /// Every factor of the user was removed (account deletion, recovery, admin reset).
    FactorsReset {},
    /// A recovery code was mailed to the user's address.
    RecoveryRequested {},
    /// A recovery was confirmed (code and password) and waits for its delay: it takes effect at
    /// the first password login after `due_at`, unless a login with a factor cancels it first.
    RecoveryPending {
        /// When it may take effect (Unix seconds).
        due_at: u64,
    },
    /// A pending recovery was cancelled by a login with an existing factor.
    RecoveryCancelled {},
    /// A recovery took effect: every factor, backup code and device is gone, earlier tokens void.
    RecoveryCompleted {},
    /// An administrator reset the user's factors and unlocked every locked factor.
    AdminReset {
        /// The acting administrator, as the application names them.
        admin: String,
    },
    /// A password check failed for this user.
    PasswordFailed {},
    /// The account was deleted: every factor, device and earlier token is gone.
    AccountDeleted {},
}

impl AuditEvent {
    /// The stable name of the event, as stored and logged.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TotpEnrollmentStarted {} => "totp_enrollment_started",
            Self::TotpEnrolled { .. } => "totp_enrolled",
            Self::TotpRemoved {} => "totp_removed",
            Self::WebauthnEnrolled { .. } => "webauthn_enrolled",
            Self::WebauthnRemoved { .. } => "webauthn_removed",
            Self::WebauthnCloneSuspected { .. } => "webauthn_clone_suspected",
            Self::SmsEnrollmentStarted {} => "sms_enrollment_started",
            Self::SmsEnrolled { .. } => "sms_enrolled",
            Self::SmsRemoved {} => "sms_removed",
            Self::SmsSent { .. } => "sms_sent",
            Self::SmsRefused { .. } => "sms_refused",
            Self::BackupCodeUsed { .. } => "backup_code_used",
            Self::BackupCodesRegenerated { .. } => "backup_codes_regenerated",
            Self::MfaSucceeded { .. } => "mfa_succeeded",
            Self::MfaFailed { .. } => "mfa_failed",
            Self::Lockout { .. } => "lockout",
            Self::FactorLocked { .. } => "factor_locked",
            Self::DeviceRemembered { .. } => "device_remembered",
            Self::DeviceUsed { .. } => "device_used",
            Self::DeviceRevoked { .. } => "device_revoked",
            Self::DevicesRevoked { .. } => "devices_revoked",
            Self::TokenIssued { .. } => "token_issued",
            Self::AuthorizationCodeIssued { .. } => "authorization_code_issued",
            Self::AuthorizationCodeRefused {} => "authorization_code_refused",
            Self::FactorsReset {} => "factors_reset",
            Self::RecoveryRequested {} => "recovery_requested",
            Self::RecoveryPending { .. } => "recovery_pending",
            Self::RecoveryCancelled {} => "recovery_cancelled",
            Self::RecoveryCompleted {} => "recovery_completed",
            Self::AdminReset { .. } => "admin_reset",
            Self::PasswordFailed {} => "password_failed",
            Self::AccountDeleted {} => "account_deleted",
        }
    }

    /// The detail as a JSON object (`{}` when there is none).
    pub fn detail(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Default::default()))
    }

    /// Whether the event changes what can log the user in: the [`Notifier`] hears about these.
    pub fn is_factor_change(&self) -> bool {
        matches!(
            self,
            Self::TotpEnrolled { .. }
                | Self::TotpRemoved {}
                | Self::WebauthnEnrolled { .. }
                | Self::WebauthnRemoved { .. }
                | Self::WebauthnCloneSuspected { .. }
                | Self::SmsEnrolled { .. }
                | Self::SmsRemoved {}
                | Self::BackupCodesRegenerated { .. }
                | Self::FactorLocked { .. }
                | Self::DeviceRemembered { .. }
                | Self::DeviceRevoked { .. }
                | Self::DevicesRevoked { .. }
                | Self::FactorsReset {}
                | Self::RecoveryRequested {}
                | Self::RecoveryPending { .. }
                | Self::RecoveryCancelled {}
                | Self::RecoveryCompleted {}
                | Self::AdminReset { .. }
                | Self::AccountDeleted {}
        )
    }
}

/// Told about factor changes, e.g. to email the user ("an authenticator was added").
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// `event` is one for which [`AuditEvent::is_factor_change`] holds; it holds no secret.
    async fn factor_changed(&self, user: &str, event: &AuditEvent);
}

/// Records audit events. Cheap to clone.
#[derive(Clone)]
pub struct Audit {
    store: Arc<dyn AuditStore>,
    notifier: Option<Arc<dyn Notifier>>,
    clock: SharedClock,
}

impl Audit {
    pub(crate) fn new(store: Arc<dyn AuditStore>, clock: SharedClock) -> Self {
        Self {
            store,
            notifier: None,
            clock,
        }
    }

    pub(crate) fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    pub(crate) fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Records `event` about `user`. A store failure is logged, not returned: the operation being
    /// audited has already happened (or been refused) and must not change its answer.
    pub async fn record(&self, user: &str, event: AuditEvent) {
        let kind = event.kind();
        let detail = event.detail();
        tracing::info!(target: "stepup::audit", event = kind, user, detail = %detail);
        let record = AuditRecord {
            id: stepup_core::tokens::random_id(),
            user: user.to_owned(),
            kind: kind.to_owned(),
            at: self.clock.unix_seconds(),
            detail: detail.to_string(),
        };
        if let Err(error) = self.store.append_audit(record).await {
            tracing::error!(target: "stepup::audit", %error, event = kind, "audit event not stored");
        }
        if event.is_factor_change()
            && let Some(notifier) = &self.notifier
        {
            notifier.factor_changed(user, &event).await;
        }
    }

    /// The user's most recent `limit` events, oldest first.
    pub async fn events(&self, user: &str, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.store.audit_events(user, limit).await
    }
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("notifier", &self.notifier.is_some())
            .finish_non_exhaustive()
    }
}
