//! The audit trail: every factor change, MFA success and failure, backup-code use, lockout,
//! remembered or revoked device and issued token is one [`AuditEvent`] passed to
//! [`Audit::record`], which writes a structured `tracing` event (target `stepup::audit`) and a
//! stored record the user can read back. Events hold no secret, code or token: only counts, ids
//! and method names.

use std::fmt;
use std::sync::Arc;

use std::borrow::Cow;

use async_trait::async_trait;
use serde_json::{Value, json};
use stepup_core::clock::SharedClock;
use stepup_store::{AuditRecord, AuditStore, StoreError};

/// Something that happened to a user's authentication. [`kind`](Self::kind) is the stable name
/// stored and logged (`totp_enrolled`, `mfa_failed`, …); [`detail`](Self::detail) the rest.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuditEvent {
    /// An enrollment was started (pending until finished): `{kind}_enrollment_started`.
    EnrollmentStarted {
        /// The factor's kind.
        kind: String,
    },
    /// A credential was enrolled; `backup_codes` were issued with it (0 if the user already had
    /// a factor): `{kind}_enrolled`.
    Enrolled {
        /// The factor's kind.
        kind: String,
        /// How a notice names it ("an authenticator app").
        noun: &'static str,
        /// The credential's id (public, not a secret).
        credential_id: String,
        /// Backup codes issued.
        backup_codes: usize,
    },
    /// A credential was removed: `{kind}_removed`.
    Removed {
        /// The factor's kind.
        kind: String,
        /// How a notice names it.
        noun: &'static str,
        /// The credential's id.
        credential_id: String,
    },
    /// Something a factor tells of itself: `{kind}_{name}` (`sms_sent`, `sms_refused`,
    /// `webauthn_clone_suspected`), with a detail holding no secret, code or destination.
    Factor {
        /// The factor's kind.
        kind: String,
        /// What happened.
        name: &'static str,
        /// The detail.
        detail: Value,
        /// Whether the user is told ([`Notifier`]).
        notify: bool,
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
    /// A second factor completed an MFA step (or a passwordless login).
    MfaSucceeded {
        /// The factor's kind.
        method: String,
    },
    /// A code or assertion was wrong (`method`: the factor's kind, or `{kind}_setup` while
    /// enrolling, `recovery` for a recovery's password).
    MfaFailed {
        /// The factor tried.
        method: String,
    },
    /// The per-user attempt limit started a lockout.
    Lockout {
        /// How long it lasts.
        seconds: u64,
    },
    /// A factor failed so many times in a row that it is locked until recovery or reset.
    FactorLocked {
        /// The locked factor's kind.
        method: String,
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
        /// `direct`, `authorization_code`, `refresh_token` or `recovery`.
        via: &'static str,
    },
    /// One operation was approved with a second factor (a transaction step-up): its digest.
    TransactionApproved {
        /// base64url SHA-256 of the operation's canonical JSON.
        operation_digest: String,
    },
    /// A transaction grant was redeemed: `approved` when it matched the request's operation.
    TransactionRedeemed {
        /// base64url SHA-256 of the request's operation.
        operation_digest: String,
        /// Whether the grant approved it.
        approved: bool,
    },
    /// An authorization code was issued to a client.
    AuthorizationCodeIssued {
        /// The client.
        client_id: String,
    },
    /// An authorization code was presented with the wrong client, redirect URI or verifier, or
    /// after a reset.
    AuthorizationCodeRefused {},
    /// An OAuth client registered itself (RFC 7591); recorded under `client:{client_id}`.
    ClientRegistered {
        /// The client.
        client_id: String,
    },
    /// A client's registration was revoked; recorded under `client:{client_id}`.
    ClientRevoked {
        /// The client.
        client_id: String,
    },
    /// A refresh-token family was started for a client.
    RefreshFamilyStarted {
        /// The client.
        client_id: String,
        /// The family.
        family_id: String,
    },
    /// An earlier refresh token of a family was presented again: the family is revoked.
    RefreshTokenReused {
        /// The client.
        client_id: String,
        /// The family.
        family_id: String,
    },
    /// A refresh-token family was revoked (`revocation`, `reset`, `client_revoked`, `user`).
    RefreshFamilyRevoked {
        /// The family.
        family_id: String,
        /// Why.
        reason: &'static str,
    },
    /// The authorization server's sign-in session was started in a browser.
    SessionStarted {
        /// Its level.
        acr: String,
    },
    /// Every factor of the user was removed (recovery, admin reset).
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
    /// A factor's own event `{kind}_{name}`, not notified.
    pub fn factor(kind: &str, name: &'static str, detail: Value) -> Self {
        Self::Factor {
            kind: kind.to_owned(),
            name,
            detail,
            notify: false,
        }
    }

    /// The stable name of the event, as stored and logged.
    pub fn kind(&self) -> Cow<'static, str> {
        let fixed = match self {
            Self::EnrollmentStarted { kind } => return format!("{kind}_enrollment_started").into(),
            Self::Enrolled { kind, .. } => return format!("{kind}_enrolled").into(),
            Self::Removed { kind, .. } => return format!("{kind}_removed").into(),
            Self::Factor { kind, name, .. } => return format!("{kind}_{name}").into(),
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
            Self::TransactionApproved { .. } => "transaction_approved",
            Self::TransactionRedeemed { .. } => "transaction_redeemed",
            Self::AuthorizationCodeIssued { .. } => "authorization_code_issued",
            Self::AuthorizationCodeRefused {} => "authorization_code_refused",
            Self::ClientRegistered { .. } => "client_registered",
            Self::ClientRevoked { .. } => "client_revoked",
            Self::RefreshFamilyStarted { .. } => "refresh_family_started",
            Self::RefreshTokenReused { .. } => "refresh_token_reused",
            Self::RefreshFamilyRevoked { .. } => "refresh_family_revoked",
            Self::SessionStarted { .. } => "session_started",
            Self::FactorsReset {} => "factors_reset",
            Self::RecoveryRequested {} => "recovery_requested",
            Self::RecoveryPending { .. } => "recovery_pending",
            Self::RecoveryCancelled {} => "recovery_cancelled",
            Self::RecoveryCompleted {} => "recovery_completed",
            Self::AdminReset { .. } => "admin_reset",
            Self::PasswordFailed {} => "password_failed",
            Self::AccountDeleted {} => "account_deleted",
        };
        Cow::Borrowed(fixed)
    }

    /// The detail as a JSON object (`{}` when there is none).
    pub fn detail(&self) -> Value {
        match self {
            Self::EnrollmentStarted { .. }
            | Self::AuthorizationCodeRefused {}
            | Self::FactorsReset {}
            | Self::RecoveryRequested {}
            | Self::RecoveryCancelled {}
            | Self::RecoveryCompleted {}
            | Self::PasswordFailed {}
            | Self::AccountDeleted {} => json!({}),
            Self::Enrolled {
                credential_id,
                backup_codes,
                ..
            } => json!({ "credential_id": credential_id, "backup_codes": backup_codes }),
            Self::Removed { credential_id, .. } => json!({ "credential_id": credential_id }),
            Self::Factor { detail, .. } => detail.clone(),
            Self::BackupCodeUsed { remaining } => json!({ "remaining": remaining }),
            Self::BackupCodesRegenerated { count } => json!({ "count": count }),
            Self::MfaSucceeded { method } | Self::MfaFailed { method } => {
                json!({ "method": method })
            }
            Self::Lockout { seconds } => json!({ "seconds": seconds }),
            Self::FactorLocked { method, failures } => {
                json!({ "method": method, "failures": failures })
            }
            Self::DeviceRemembered { device_id }
            | Self::DeviceUsed { device_id }
            | Self::DeviceRevoked { device_id } => json!({ "device_id": device_id }),
            Self::DevicesRevoked { count } => json!({ "count": count }),
            Self::TokenIssued { acr, amr, via } => json!({ "acr": acr, "amr": amr, "via": via }),
            Self::TransactionApproved { operation_digest } => {
                json!({ "operation": operation_digest })
            }
            Self::TransactionRedeemed {
                operation_digest,
                approved,
            } => json!({ "operation": operation_digest, "approved": approved }),
            Self::AuthorizationCodeIssued { client_id }
            | Self::ClientRegistered { client_id }
            | Self::ClientRevoked { client_id } => json!({ "client_id": client_id }),
            Self::RefreshFamilyStarted {
                client_id,
                family_id,
            }
            | Self::RefreshTokenReused {
                client_id,
                family_id,
            } => json!({ "client_id": client_id, "family_id": family_id }),
            Self::RefreshFamilyRevoked { family_id, reason } => {
                json!({ "family_id": family_id, "reason": reason })
            }
            Self::SessionStarted { acr } => json!({ "acr": acr }),
            Self::RecoveryPending { due_at } => json!({ "due_at": due_at }),
            Self::AdminReset { admin } => json!({ "admin": admin }),
        }
    }

    /// Whether the event changes what can log the user in: the [`Notifier`] hears about these.
    pub fn is_factor_change(&self) -> bool {
        match self {
            Self::Factor { notify, .. } => *notify,
            Self::Enrolled { .. }
            | Self::Removed { .. }
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
            | Self::AccountDeleted {} => true,
            _ => false,
        }
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
        tracing::info!(target: "stepup::audit", event = %kind, user, detail = %detail);
        let record = AuditRecord {
            id: stepup_core::tokens::random_id(),
            user: user.to_owned(),
            kind: kind.clone().into_owned(),
            at: self.clock.unix_seconds(),
            detail: detail.to_string(),
        };
        if let Err(error) = self.store.append_audit(record).await {
            tracing::error!(target: "stepup::audit", %error, event = %kind, "audit event not stored");
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
