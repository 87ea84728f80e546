//! Account recovery, for a user who lost every second factor, and the administrator's reset.
//!
//! **Self-service** (NIST SP 800-63B rev 4 §4.2: one recovery code plus the password):
//!
//! 1. [`Mfa::request_recovery`] mails a single-use recovery code (256 random bits) to the user's
//!    address. The store keeps only its SHA-256, in the ephemeral store, for at most
//!    [`RECOVERY_CODE_TTL`]. Requests are limited per address ([`REQUESTS_PER_HOUR`]); one over the
//!    limit is silently not mailed. For an address that belongs to no account, the caller runs
//!    [`Mfa::recovery_decoy`] instead: the same store work, no mail.
//! 2. [`Mfa::confirm_recovery`] takes the code (single use: it is gone after the first
//!    presentation, right or wrong), then checks the password through the caller's closure, under
//!    the per-user attempt limit. Then every second factor, backup code and failure streak is
//!    removed, every remembered device revoked, and every token and `mfa_token` issued until now
//!    voided ([`Mfa::revoke_tokens`]): the user signs in with the password alone and enrolls again.
//!
//! **Optional delay** ([`Mfa::with_recovery_delay`], default none; e.g. 24 hours for high-value
//! accounts): a confirmed recovery is only recorded as pending, with its due time. The rule: *it
//! takes effect at the first password login after the due time* ([`Mfa::apply_due_recovery`],
//! which the login route calls after a right password), and *any successful login with an
//! existing factor before that cancels it* (an MFA step, a passwordless passkey, a remembered
//! device). A pending recovery nobody logs in for lapses [`RECOVERY_PENDING_GRACE`] after its due
//! time. The owner, told by mail, cancels an attacker's recovery just by signing in as usual.
//!
//! **Admin reset** ([`Mfa::admin_reset`]): the same reset, plus every factor unlocked and the
//! per-user lockout lifted, with the acting administrator in the audit event.
//!
//! Every step is audited (`recovery_requested`, `recovery_pending`, `recovery_cancelled`,
//! `recovery_completed`, `admin_reset`) and goes to the [`Notifier`](crate::Notifier). The recovery
//! code itself appears only in the mail: never in the store, the log or an audit event.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stepup_core::tokens;
use stepup_mail::{Mail, Mailer, send_in_background};

use crate::audit::AuditEvent;
use crate::{Method, Mfa, MfaError};

/// How long a recovery code lives.
pub const RECOVERY_CODE_TTL: Duration = Duration::from_secs(60 * 60);
/// How long a pending recovery waits after its due time for the password login that applies it.
pub const RECOVERY_PENDING_GRACE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Recovery mails per address per hour; further requests are answered alike and not mailed.
pub const REQUESTS_PER_HOUR: u64 = 5;

/// The recovery configuration of an engine.
#[derive(Clone, Default)]
pub(crate) struct RecoverySettings {
    mailer: Option<Arc<dyn Mailer>>,
    delay: Option<Duration>,
}

/// What a recovery code stands for, under the code's SHA-256.
#[derive(Serialize, Deserialize)]
struct RecoveryTicket {
    sub: String,
}

/// A confirmed recovery waiting for its delay, under the user.
#[derive(Serialize, Deserialize)]
struct PendingRecovery {
    due_at: u64,
}

/// How a confirmed recovery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecoveryOutcome {
    /// The factors are gone: the user signs in with the password and enrolls again.
    Completed {
        /// The user.
        user: String,
    },
    /// The recovery waits for its delay (see the [module](self) for the rule).
    Pending {
        /// The user.
        user: String,
        /// When it may take effect (Unix seconds).
        due_at: u64,
    },
}

impl Mfa {
    /// Sends recovery codes and notifications through `mailer`.
    pub fn with_mailer(self, mailer: Arc<dyn Mailer>) -> Self {
        self.map(|inner| inner.recovery.mailer = Some(mailer))
    }

    /// Makes a confirmed recovery wait `delay` before it takes effect (zero: no delay).
    pub fn with_recovery_delay(self, delay: Duration) -> Self {
        self.map(|inner| inner.recovery.delay = Some(delay).filter(|delay| !delay.is_zero()))
    }

    /// The mailer, if one is configured.
    pub fn mailer(&self) -> Option<&Arc<dyn Mailer>> {
        self.inner.recovery.mailer.as_ref()
    }

    /// The recovery delay, if one is configured.
    pub fn recovery_delay(&self) -> Option<Duration> {
        self.inner.recovery.delay
    }

    /// Mails `user` a recovery code at `email` (audited). The mail is sent in the background, so
    /// a slow mail server neither delays the answer nor tells known addresses from unknown ones.
    pub async fn request_recovery(&self, user: &str, email: &str) -> Result<(), MfaError> {
        let mailer = self.mailer().cloned().ok_or(MfaError::MailNotConfigured)?;
        if !self.admit_recovery_request(email).await? {
            tracing::info!(target: "stepup::audit", "recovery request over the per-address limit: not mailed");
            return Ok(());
        }
        let code = tokens::random_token();
        let ticket = serde_json::to_vec(&RecoveryTicket {
            sub: user.to_owned(),
        })
        .map_err(|_| MfaError::Internal("could not encode a recovery code"))?;
        if !self
            .ephemeral()
            .insert_if_absent(&recovery_key(&code), &ticket, RECOVERY_CODE_TTL)
            .await?
        {
            return Err(MfaError::Internal("recovery code collision"));
        }
        self.audit()
            .record(user, AuditEvent::RecoveryRequested {})
            .await;
        let minutes = RECOVERY_CODE_TTL.as_secs() / 60;
        let mail = Mail::new(
            email,
            "Your account recovery code",
            format!(
                "Someone, hopefully you, asked to recover the account {email} because its second \
                 factors are lost.\n\nRecovery code: {code}\n\nIt works once, within {minutes} \
                 minutes, together with your password. Recovering removes every authenticator, \
                 passkey, backup code and remembered device of the account; you then enroll \
                 again.\n\nIf this was not you, ignore this mail and change your password."
            ),
        );
        send_in_background(mailer, mail);
        Ok(())
    }

    /// What [`request_recovery`](Self::request_recovery) does for an address that belongs to no
    /// account: the same store work, no mail, so both answers look and take alike.
    pub async fn recovery_decoy(&self, email: &str) -> Result<(), MfaError> {
        self.mailer().ok_or(MfaError::MailNotConfigured)?;
        self.admit_recovery_request(email).await?;
        let key = recovery_key(&tokens::random_token());
        self.ephemeral()
            .insert_if_absent(&key, b"{}", Duration::from_secs(1))
            .await?;
        // In place of the audit record of a real request.
        self.ephemeral().remove(&key).await?;
        Ok(())
    }

    /// Confirms a recovery with its code; `password_ok` checks the password of the user the code
    /// names (the caller's password check). The code is used up by this call whatever follows. A
    /// wrong, used or expired code, or a wrong password, is [`MfaError::InvalidRecoveryCode`]; a
    /// wrong password counts against the user's attempt limit.
    pub async fn confirm_recovery<E: From<MfaError>>(
        &self,
        code: &str,
        password_ok: impl AsyncFnOnce(&str) -> Result<bool, E>,
    ) -> Result<RecoveryOutcome, E> {
        if code.is_empty() || code.len() > 128 {
            return Err(MfaError::InvalidRecoveryCode.into());
        }
        let ticket = self
            .ephemeral()
            .take(&recovery_key(code))
            .await
            .map_err(MfaError::from)?
            .ok_or(MfaError::InvalidRecoveryCode)?;
        let RecoveryTicket { sub: user } = serde_json::from_slice(&ticket)
            .map_err(|_| MfaError::Internal("a stored recovery code is corrupt"))?;
        let checked = self
            .limited(&user, None, "recovery", async {
                match password_ok(&user).await {
                    Ok(true) => Ok(Ok(())),
                    Ok(false) => Err(MfaError::InvalidCode),
                    Err(error) => Ok(Err(error)),
                }
            })
            .await;
        match checked {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(MfaError::InvalidCode) => return Err(MfaError::InvalidRecoveryCode.into()),
            Err(other) => return Err(other.into()),
        }
        let Some(delay) = self.recovery_delay() else {
            self.complete_recovery(&user).await?;
            return Ok(RecoveryOutcome::Completed { user });
        };
        let due_at = self.now().saturating_add(delay.as_secs());
        let pending = serde_json::to_vec(&PendingRecovery { due_at })
            .map_err(|_| MfaError::Internal("could not encode a pending recovery"))?;
        let key = pending_key(&user);
        let inserted = self
            .ephemeral()
            .insert_if_absent(&key, &pending, delay.saturating_add(RECOVERY_PENDING_GRACE))
            .await
            .map_err(MfaError::from)?;
        if !inserted {
            // One is already pending: it keeps its (earlier) due time.
            if let Some(existing) = self.pending_recovery(&user).await? {
                return Ok(RecoveryOutcome::Pending {
                    user,
                    due_at: existing,
                });
            }
        }
        self.audit()
            .record(&user, AuditEvent::RecoveryPending { due_at })
            .await;
        Ok(RecoveryOutcome::Pending { user, due_at })
    }

    /// The due time of the user's pending recovery, if one is pending.
    pub async fn pending_recovery(&self, user: &str) -> Result<Option<u64>, MfaError> {
        let Some(raw) = self.ephemeral().get(&pending_key(user)).await? else {
            return Ok(None);
        };
        let pending: PendingRecovery = serde_json::from_slice(&raw)
            .map_err(|_| MfaError::Internal("a pending recovery is corrupt"))?;
        Ok(Some(pending.due_at))
    }

    /// Applies the user's pending recovery if its due time has come; `true` if it did. The login
    /// route calls this after a right password, before it looks at the user's factors.
    pub async fn apply_due_recovery(&self, user: &str) -> Result<bool, MfaError> {
        if self.recovery_delay().is_none() {
            return Ok(false);
        }
        let Some(due_at) = self.pending_recovery(user).await? else {
            return Ok(false);
        };
        if self.now() < due_at || self.ephemeral().take(&pending_key(user)).await?.is_none() {
            return Ok(false);
        }
        self.complete_recovery(user).await?;
        Ok(true)
    }

    /// A login with an existing factor succeeded: it cancels the user's pending recovery (audited).
    pub(crate) async fn factor_login_succeeded(&self, user: &str) -> Result<(), MfaError> {
        if self.recovery_delay().is_none() {
            return Ok(());
        }
        if self.ephemeral().take(&pending_key(user)).await?.is_some() {
            self.audit()
                .record(user, AuditEvent::RecoveryCancelled {})
                .await;
        }
        Ok(())
    }

    /// An administrator's reset: every factor, backup code and device of `user` removed, every
    /// factor unlocked and the per-user lockout lifted, earlier tokens voided; `admin` is
    /// recorded in the audit event.
    pub async fn admin_reset(&self, user: &str, admin: &str) -> Result<(), MfaError> {
        self.reset_factors(user).await?;
        self.clear_user_lockout(user).await?;
        let event = AuditEvent::AdminReset {
            admin: admin.chars().take(256).collect(),
        };
        self.audit().record(user, event).await;
        Ok(())
    }

    async fn complete_recovery(&self, user: &str) -> Result<(), MfaError> {
        self.reset_factors(user).await?;
        self.audit()
            .record(user, AuditEvent::RecoveryCompleted {})
            .await;
        Ok(())
    }

    /// Voids earlier tokens (and `mfa_token`s), removes every credential, code and failure
    /// streak, and revokes every device.
    async fn reset_factors(&self, user: &str) -> Result<(), MfaError> {
        self.revoke_tokens(user).await?;
        let mut kinds: Vec<String> = [Method::Totp, Method::BackupCode, Method::Webauthn]
            .iter()
            .map(|method| method.store_kind().to_owned())
            .collect();
        for credential in self.factors().credentials(user).await? {
            if !kinds.contains(&credential.kind) {
                kinds.push(credential.kind);
            }
        }
        self.factors().delete_user_factors(user).await?;
        for kind in &kinds {
            self.factors().clear_failures(user, kind).await?;
        }
        self.revoke_devices(user).await?;
        self.ephemeral().remove(&pending_key(user)).await?;
        self.audit().record(user, AuditEvent::FactorsReset {}).await;
        Ok(())
    }

    /// Counts a recovery request for `email`; `false` once the address had its hourly share.
    async fn admit_recovery_request(&self, email: &str) -> Result<bool, MfaError> {
        let address = email.trim().to_lowercase();
        let key = format!("recovery_requests:{}", tokens::digest(&address));
        let count = self
            .ephemeral()
            .increment(&key, Duration::from_secs(60 * 60))
            .await?;
        Ok(count <= REQUESTS_PER_HOUR)
    }
}

/// Where a recovery code lives: only its SHA-256.
fn recovery_key(code: &str) -> String {
    format!("recovery:{}", tokens::digest(code))
}

fn pending_key(user: &str) -> String {
    format!("recovery_pending:{user}")
}
