//! Account recovery, for a user who lost every second factor, and the administrator's reset.
//!
//! **Self-service** (NIST SP 800-63B rev 4 §4.2: one recovery code plus the password):
//!
//! 1. [`Mfa::start_recovery`] mails a single-use recovery code (256 random bits) to the address
//!    the application keeps for the account. The store keeps only its SHA-256, in the ephemeral
//!    store, for at most [`RECOVERY_CODE_TTL`]. Requests are limited per mail address
//!    ([`REQUESTS_PER_HOUR`]) and per client address group ([`REQUESTS_PER_CLIENT_PER_HOUR`]); one
//!    over a limit is silently not mailed. Every request does the same store work, whether the
//!    address belongs to an account, is over a limit, or neither, so the answer and its timing
//!    say nothing; the audit record and the mail follow in the background.
//! 2. [`Mfa::finish_recovery`] takes the code (single use: it is gone after the first
//!    presentation, right or wrong), then checks the password of the user it names, under the
//!    per-user attempt limit. Then the user is reset ([`Mfa`]'s generation moves on, voiding
//!    every token, `mfa_token`, code and remembered device made until now; every second factor,
//!    backup code and failure streak is removed): the user signs in with the password alone and
//!    enrolls again.
//!
//! **Optional delay** ([`Mfa::with_recovery_delay`], default none; e.g. 24 hours for high-value
//! accounts): a confirmed recovery is only recorded as pending, with its due time. The rule: *it
//! takes effect at the first password login after the due time*, and *any successful login with
//! an existing factor before that cancels it* (an MFA step, a passwordless passkey, a remembered
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

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::error::{InvalidCode, InvalidRecoveryCode, MfaError};
use crate::factor::ClientInfo;
use crate::login::Login;

/// How long a recovery code lives.
pub const RECOVERY_CODE_TTL: Duration = Duration::from_secs(60 * 60);
/// How long a pending recovery waits after its due time for the password login that applies it.
pub const RECOVERY_PENDING_GRACE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Recovery mails per mail address per hour; further requests are answered alike and not mailed.
pub const REQUESTS_PER_HOUR: u64 = 5;
/// Recovery requests per client address group per hour (IPv6 grouped by the engine's prefix);
/// further requests are answered alike and not mailed.
pub const REQUESTS_PER_CLIENT_PER_HOUR: u64 = 20;

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
#[derive(Debug)]
#[non_exhaustive]
// Made once per recovery and matched at once: boxing the login would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum RecoveryOutcome {
    /// The factors are gone: the user is signed in at `pwd` (conclude the login with
    /// [`Mfa::conclude`]) and enrolls again.
    Completed {
        /// The user.
        user: String,
        /// The login at `pwd`, under the user's new generation.
        login: Login,
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

    /// A recovery request for `email` from `client`: mails a recovery code to the address on
    /// file when `email` belongs to an account, the mail address has requests left this hour
    /// ([`REQUESTS_PER_HOUR`]) and so has the client's address group
    /// ([`REQUESTS_PER_CLIENT_PER_HOUR`], grouped like every per-address limit). Answers alike in
    /// every case, after the same store work: the application's two look-ups, both counters, one
    /// code stored (a decoy's lives a second). The audit record and the mail leave in the
    /// background; only a store that cannot answer is an error.
    pub async fn start_recovery(&self, email: &str, client: &ClientInfo) -> Result<(), MfaError> {
        let email = email.trim();
        if email.is_empty() || email.len() > 320 {
            return Err(MfaError::invalid_input("an email address is required"));
        }
        let accounts = self.accounts();
        let user = accounts.user_by_email(email).await?;
        // The same look-up of an address for a known account as for an id nobody has.
        let lookup = user.clone().unwrap_or_else(tokens::random_id);
        let on_file = accounts.email_of(&lookup).await?;
        let within_limit = self.admit_recovery_request(email, client).await?;
        let code = tokens::random_token();
        let real = match (user, on_file, self.mailer(), within_limit) {
            (Some(user), Some(on_file), Some(mailer), true) => {
                Some((user, on_file, mailer.clone()))
            }
            (Some(_), _, _, false) => {
                tracing::info!(target: "stepup::audit", "recovery request over a limit: not mailed");
                None
            }
            _ => None,
        };
        let ticket = serde_json::to_vec(&RecoveryTicket {
            sub: real
                .as_ref()
                .map_or_else(String::new, |(user, ..)| user.clone()),
        })
        .map_err(MfaError::internal)?;
        // A decoy's code is never mailed and names nobody; it lives a second, so every path
        // makes the same one write and no removal.
        let ttl = if real.is_some() {
            RECOVERY_CODE_TTL
        } else {
            Duration::from_secs(1)
        };
        if !self
            .ephemeral()
            .insert_if_absent(&recovery_key(&code), &ticket, ttl)
            .await?
        {
            return Err(MfaError::internal("recovery code collision"));
        }
        let Some((user, on_file, mailer)) = real else {
            return Ok(());
        };
        let minutes = RECOVERY_CODE_TTL.as_secs() / 60;
        let mail = Mail::new(
            &on_file,
            "Your account recovery code",
            format!(
                "Someone, hopefully you, asked to recover the account {on_file} because its second \
                 factors are lost.\n\nRecovery code: {code}\n\nIt works once, within {minutes} \
                 minutes, together with your password. Recovering removes every authenticator, \
                 passkey, backup code and remembered device of the account; you then enroll \
                 again.\n\nIf this was not you, ignore this mail and change your password."
            ),
        );
        // Audited, then mailed, after the answer: the answer's work is the same on every path.
        let audit = self.audit().clone();
        let record = async move {
            audit.record(&user, AuditEvent::RecoveryRequested {}).await;
            send_in_background(mailer, mail);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(record)),
            Err(_) => {
                tracing::warn!(target: "stepup::mail", "no tokio runtime: a recovery mail was not sent")
            }
        }
        Ok(())
    }

    /// Confirms a recovery with its code and the password of the user it names. The code is
    /// used up by this call whatever follows. A wrong, used or expired code, or a wrong password,
    /// is [`InvalidRecoveryCode`]; a wrong password counts against the user's attempt limit, and
    /// every failure against the client address's budget.
    pub async fn finish_recovery(
        &self,
        code: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<RecoveryOutcome, MfaError> {
        if code.len() > 128 || password.len() > 1024 {
            return Err(MfaError::invalid_input("token or password too long"));
        }
        self.limited_by_address(client, async {
            if code.is_empty() {
                return Err(InvalidRecoveryCode.into());
            }
            let ticket = self
                .ephemeral()
                .take(&recovery_key(code))
                .await?
                .ok_or(InvalidRecoveryCode)?;
            let RecoveryTicket { sub: user } =
                serde_json::from_slice(&ticket).map_err(MfaError::internal)?;
            if user.is_empty() {
                return Err(InvalidRecoveryCode.into());
            }
            let checked = self
                .limited(&user, None, "recovery", async {
                    let accounts = self.accounts();
                    let Some(email) = accounts.email_of(&user).await? else {
                        return Err(InvalidCode.into());
                    };
                    match accounts.check(&email, password).await? {
                        Some(owner) if owner == user => Ok(()),
                        _ => Err(InvalidCode.into()),
                    }
                })
                .await;
            match checked {
                Ok(()) => {}
                Err(MfaError::InvalidCode(_)) => return Err(InvalidRecoveryCode.into()),
                Err(other) => return Err(other),
            }
            let Some(delay) = self.recovery_delay() else {
                let generation = self.complete_recovery(&user).await?;
                let login = self.password_only(user.clone(), generation, None, "recovery");
                return Ok(RecoveryOutcome::Completed { user, login });
            };
            let due_at = self.now().saturating_add(delay.as_secs());
            let pending =
                serde_json::to_vec(&PendingRecovery { due_at }).map_err(MfaError::internal)?;
            let key = pending_key(&user);
            let inserted = self
                .ephemeral()
                .insert_if_absent(&key, &pending, delay.saturating_add(RECOVERY_PENDING_GRACE))
                .await?;
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
        })
        .await
    }

    /// The due time of the user's pending recovery, if one is pending.
    pub async fn pending_recovery(&self, user: &str) -> Result<Option<u64>, MfaError> {
        let Some(raw) = self.ephemeral().get(&pending_key(user)).await? else {
            return Ok(None);
        };
        let pending: PendingRecovery = serde_json::from_slice(&raw).map_err(MfaError::internal)?;
        Ok(Some(pending.due_at))
    }

    /// Applies the user's pending recovery if its due time has come: the user's new generation
    /// if it did. The password step calls this after a right password, before it looks at the
    /// user's factors.
    pub(crate) async fn apply_due_recovery(&self, user: &str) -> Result<Option<u64>, MfaError> {
        if self.recovery_delay().is_none() {
            return Ok(None);
        }
        let Some(due_at) = self.pending_recovery(user).await? else {
            return Ok(None);
        };
        if self.now() < due_at || self.ephemeral().take(&pending_key(user)).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.complete_recovery(user).await?))
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
    /// factor unlocked and the per-user lockout lifted, every earlier token voided; `admin` is
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

    /// Resets the user for a recovery; returns the new generation.
    async fn complete_recovery(&self, user: &str) -> Result<u64, MfaError> {
        let generation = self.reset_factors(user).await?;
        self.audit()
            .record(user, AuditEvent::RecoveryCompleted {})
            .await;
        Ok(generation)
    }

    /// The reset of a recovery or an admin reset ([`Mfa::reset_user`](crate::account)), and the
    /// pending recovery forgotten.
    async fn reset_factors(&self, user: &str) -> Result<u64, MfaError> {
        let generation = self.reset_user(user).await?;
        self.ephemeral().remove(&pending_key(user)).await?;
        self.audit().record(user, AuditEvent::FactorsReset {}).await;
        Ok(generation.value)
    }

    /// Counts a recovery request against its mail address and its client's address group; both
    /// counters move on every request, whatever the outcome. `false` once either had its hourly
    /// share.
    async fn admit_recovery_request(
        &self,
        email: &str,
        client: &ClientInfo,
    ) -> Result<bool, MfaError> {
        let hour = Duration::from_secs(60 * 60);
        let address = email.trim().to_lowercase();
        let key = format!("recovery_requests:{}", tokens::digest(&address));
        let per_mail = self.ephemeral().increment(&key, hour).await?;
        let key = format!(
            "recovery_requests_from:{}",
            self.address_key(client.address)
        );
        let per_client = self.ephemeral().increment(&key, hour).await?;
        Ok(per_mail <= REQUESTS_PER_HOUR && per_client <= REQUESTS_PER_CLIENT_PER_HOUR)
    }
}

/// Where a recovery code lives: only its SHA-256.
fn recovery_key(code: &str) -> String {
    format!("recovery:{}", tokens::digest(code))
}

fn pending_key(user: &str) -> String {
    format!("recovery_pending:{user}")
}
