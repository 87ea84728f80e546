//! A factor's life, the same for every kind: enrollment started (a pending credential), finished
//! by a first proof (active, with the first backup codes), listed, renamed, removed. The engine
//! owns every rule of it here, once:
//!
//! - **one change at a time**: finishing an enrollment or removing a factor checks the user's
//!   other factors first (a restricted factor never left alone, backup codes given with the first
//!   factor and taken with the last); those checks hold only if no other change runs between the
//!   check and the write. Each such change holds a per-user lease in the ephemeral store, shared
//!   by every instance; a second change meanwhile is refused
//!   ([`FactorChangeInProgress`], `409`) rather than queued, and the client tries again. The
//!   lease expires by itself if its holder dies ([`FACTOR_CHANGE_LEASE`]). Resets (recovery,
//!   admin reset, account deletion) take the same lease;
//! - **the generation**: every credential is written with the user's current generation, so one
//!   that raced a reset and landed after it is stale and proves nothing;
//! - **restricted factors** (SMS, email) are refused as a user's only factor when the engine says
//!   so ([`Mfa::with_restricted_factor_alone`]), when added and when the other factor is removed;
//! - **after a removal**: the backup codes go with the last factor, remembered devices are
//!   revoked, and the factor's failure streak is cleared (as it is when a kind is enrolled anew);
//! - every change is audited (`{kind}_enrollment_started`, `{kind}_enrolled`, `{kind}_removed`).

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use stepup_core::AcrRequirement;
use stepup_core::acr::level;
use stepup_store::{Credential, CredentialRef, CredentialStatus, Enrollment};

use crate::Mfa;
use crate::audit::AuditEvent;
use crate::error::{
    AlreadyEnrolled, FactorChangeInProgress, InvalidLabel, MfaError, NoPendingEnrollment,
    PolicyRefusal, Unsupported,
};
use crate::factor::{ClientInfo, Factor, FactorContext, NewCredential};

/// The longest a factor change can keep others out, should its process die holding the lease.
pub const FACTOR_CHANGE_LEASE: Duration = Duration::from_secs(30);
/// The longest label, in characters.
pub const MAX_LABEL_CHARS: usize = 64;

/// A finished enrollment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enrolled {
    /// The factor's kind.
    pub kind: String,
    /// The new credential's id.
    pub credential_id: String,
    /// The backup codes, shown this once, when this is the user's first factor (empty otherwise).
    pub backup_codes: Vec<String>,
}

/// A user's factors, without secrets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactorSummary {
    /// Every credential, pending, active or disabled.
    pub factors: Vec<FactorInfo>,
    /// Unused backup codes.
    pub backup_codes_remaining: usize,
}

/// One credential, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactorInfo {
    /// The factor's kind.
    pub kind: String,
    /// The same kind, under the name earlier clients read.
    pub method: String,
    /// The credential's id.
    pub id: String,
    /// A name the user chose.
    pub label: Option<String>,
    /// `pending`, `active` or `disabled`.
    pub status: &'static str,
    /// Confirmed by a first proof and trusted.
    pub active: bool,
    /// Locked by consecutive failures until recovery or reset.
    pub locked: bool,
    /// A NIST SP 800-63B *restricted* authenticator (SMS, email): offered beside another factor.
    pub restricted: bool,
    /// When it was made (Unix seconds).
    pub created_at: u64,
    /// When it last completed a login (Unix seconds).
    pub last_used_at: Option<u64>,
    /// What the factor shows of it (a masked destination, passkey flags).
    #[serde(flatten)]
    pub detail: Map<String, Value>,
}

impl Mfa {
    /// Who may enroll a factor for `user`: a first factor needs a password from the last
    /// enrollment window ([`Mfa::with_enrollment_max_age`], 10 minutes by default: a stolen
    /// password-level token cannot enroll the thief's authenticator later); with a factor
    /// enrolled, a fresh second factor ([`Mfa::with_fresh_mfa_max_age`]).
    pub async fn enrollment_requirement(&self, user: &str) -> Result<AcrRequirement, MfaError> {
        let settings = &self.inner.login;
        Ok(if self.is_enrolled(user).await? {
            AcrRequirement::mfa().max_age(settings.fresh_mfa)
        } else {
            AcrRequirement::level(level::PWD).max_age(settings.enrollment_max_age)
        })
    }

    /// Starts enrolling a factor of `kind` for `user` with the factor's `input` (e.g.
    /// `{"phone": "+1…"}` for SMS, `{}` for TOTP); the answer is the factor's (a QR code, "code
    /// sent", creation options). The credential stays pending until
    /// [`finish_enrollment`](Self::finish_enrollment).
    pub async fn start_enrollment(
        &self,
        user: &str,
        kind: &str,
        input: &Value,
        client: &ClientInfo,
    ) -> Result<Value, MfaError> {
        let factor = self.enrollable(kind)?;
        let generation = self.current_generation(user).await?.value;
        let cx = FactorContext::new(self, factor.kind(), user, generation, client);
        self.check_restricted_company(&**factor, user).await?;
        if factor.enrollment() == Enrollment::OnePerUser
            && !self.credentials_of(user, factor.kind()).await?.is_empty()
        {
            return Err(AlreadyEnrolled.into());
        }
        let started = factor.start_enrollment(&cx, input).await?;
        if let Some(pending) = started.pending {
            let credential = self.new_credential(user, factor.kind(), generation, pending);
            if !self
                .factors()
                .put_pending(credential, factor.enrollment())
                .await?
            {
                return Err(AlreadyEnrolled.into());
            }
        }
        let event = AuditEvent::EnrollmentStarted {
            kind: factor.kind().to_owned(),
        };
        self.audit().record(user, event).await;
        Ok(started.answer)
    }

    /// Finishes an enrollment of `kind` with its first proof (`{"code": …}`, or a passkey's
    /// registration): the credential becomes active, with the backup codes (shown once) when it
    /// is the user's first factor. A wrong proof is [`InvalidCode`](crate::InvalidCode), counts
    /// against the user's attempt limit, is audited, and is answered with the factor's
    /// [`enrollment_refusal`](Factor::enrollment_refusal).
    pub async fn finish_enrollment(
        &self,
        user: &str,
        kind: &str,
        input: &Value,
        client: &ClientInfo,
    ) -> Result<Enrolled, MfaError> {
        let factor = self.enrollable(kind)?;
        self.one_factor_change(user, async {
            let generation = self.current_generation(user).await?.value;
            let cx = FactorContext::new(self, factor.kind(), user, generation, client);
            // Checked again here, not only when the enrollment started: the other factor may
            // have been removed since.
            self.check_restricted_company(&**factor, user).await?;
            let pending = self.pending_of(user, factor.kind(), generation).await?;
            if factor.enrollment() == Enrollment::OnePerUser
                && !self.credentials_of(user, factor.kind()).await?.is_empty()
            {
                return Err(AlreadyEnrolled.into());
            }
            let setup = format!("{}_setup", factor.kind());
            let finished = self
                .limited(
                    user,
                    None,
                    &setup,
                    factor.finish_enrollment(&cx, pending.as_ref(), input),
                )
                .await
                .map_err(|error| match error {
                    // Enrolling is not a login: a wrong first proof is bad input (`400`), though
                    // it counted against the user's attempt limit all the same.
                    MfaError::InvalidCode(_) => factor.enrollment_refusal().into(),
                    other => other,
                })?;
            let (codes, set) = self.first_factor_backup_codes(user).await?;
            let id = match finished.credential {
                Some(new) => {
                    let credential = self.new_credential(user, factor.kind(), generation, new);
                    let id = credential.id.clone();
                    if !self
                        .factors()
                        .put_pending(credential, factor.enrollment())
                        .await?
                    {
                        return Err(PolicyRefusal {
                            status: http::StatusCode::CONFLICT,
                            code: "credential_exists".into(),
                            description: "this credential is already registered".into(),
                        }
                        .into());
                    }
                    id
                }
                None => pending.ok_or(NoPendingEnrollment)?.id,
            };
            let key = CredentialRef {
                user,
                kind: factor.kind(),
                id: &id,
            };
            // Activation and the backup codes land together or not at all.
            if !self.factors().activate(key, finished.counter, set).await? {
                return Err(NoPendingEnrollment.into());
            }
            // A kind enrolled anew starts with no failure streak.
            self.factors().clear_failures(user, factor.kind()).await?;
            let event = AuditEvent::Enrolled {
                kind: factor.kind().to_owned(),
                noun: factor.noun(),
                credential_id: id.clone(),
                backup_codes: codes.len(),
            };
            self.audit().record(user, event).await;
            Ok(Enrolled {
                kind: factor.kind().to_owned(),
                credential_id: id,
                backup_codes: codes,
            })
        })
        .await
    }

    /// Removes credential `id` of `kind`; the backup codes go too when no other factor remains,
    /// remembered devices are revoked, and the factor's failure streak ends. `false` when there
    /// was none. Refused when a restricted factor would be left as the only one and the engine
    /// forbids that.
    pub async fn remove_factor(&self, user: &str, kind: &str, id: &str) -> Result<bool, MfaError> {
        let factor = self.enrollable(kind)?;
        self.one_factor_change(user, async {
            let key = CredentialRef {
                user,
                kind: factor.kind(),
                id,
            };
            let Some(credential) = self.factors().credential(key).await? else {
                return Ok(false);
            };
            self.check_removal_keeps_company(user, &credential).await?;
            if !self.factors().delete_credential(key).await? {
                return Ok(false);
            }
            let generation = credential.generation;
            let client = ClientInfo::default();
            let cx = FactorContext::new(self, factor.kind(), user, generation, &client);
            factor.removed(&cx, &credential).await?;
            if self.credentials_of(user, factor.kind()).await?.is_empty() {
                self.factors().clear_failures(user, factor.kind()).await?;
            }
            let event = AuditEvent::Removed {
                kind: factor.kind().to_owned(),
                noun: factor.noun(),
                credential_id: id.to_owned(),
            };
            self.audit().record(user, event).await;
            self.after_factor_removed(user).await?;
            Ok(true)
        })
        .await
    }

    /// Renames credential `id` of `kind` (`None` clears the label); `false` when there is none.
    pub async fn rename_factor(
        &self,
        user: &str,
        kind: &str,
        id: &str,
        label: Option<&str>,
    ) -> Result<bool, MfaError> {
        let factor = self.enrollable(kind)?;
        let label = label.map(validate_label).transpose()?;
        let key = CredentialRef {
            user,
            kind: factor.kind(),
            id,
        };
        Ok(self.factors().set_label(key, label.as_deref()).await?)
    }

    /// The user's factors, without secrets: every current credential of every registered kind.
    pub async fn factor_summary(&self, user: &str) -> Result<FactorSummary, MfaError> {
        let generation = self.current_generation(user).await?.value;
        let client = ClientInfo::default();
        let mut factors = Vec::new();
        for credential in self.current_credentials(user).await? {
            let Some(factor) = self.inner.factors.find(&credential.kind) else {
                continue;
            };
            let cx = FactorContext::new(self, factor.kind(), user, generation, &client);
            factors.push(FactorInfo {
                kind: credential.kind.clone(),
                method: credential.kind.clone(),
                status: credential.status.as_str(),
                active: credential.status == CredentialStatus::Active,
                locked: self.is_locked(user, factor.kind()).await?,
                restricted: factor.is_restricted(),
                detail: factor.describe(&cx, &credential).await?,
                id: credential.id,
                label: credential.label,
                created_at: credential.created_at,
                last_used_at: credential.last_used_at,
            });
        }
        Ok(FactorSummary {
            factors,
            backup_codes_remaining: self.remaining_backup_codes(user).await?,
        })
    }

    /// The kinds the user can complete an MFA step with now: each registered, available kind the
    /// user has an active, current, unlocked credential of (in registration order), then backup
    /// codes while some are left and the user [is enrolled](Self::is_enrolled).
    pub async fn methods(&self, user: &str) -> Result<Vec<String>, MfaError> {
        let generation = self.current_generation(user).await?.value;
        let credentials = self.active_credentials(user).await?;
        let client = ClientInfo::default();
        let mut methods = Vec::new();
        for factor in self.inner.factors.iter().filter(|f| f.is_enrollable()) {
            let of_kind: Vec<Credential> = credentials
                .iter()
                .filter(|credential| credential.kind == factor.kind())
                .cloned()
                .collect();
            if of_kind.is_empty() {
                continue;
            }
            let cx = FactorContext::new(self, factor.kind(), user, generation, &client);
            if factor.is_available()
                && !self.is_locked(user, factor.kind()).await?
                && factor.is_offered(&cx, &of_kind).await?
            {
                methods.push(factor.kind().to_owned());
            }
        }
        if self.is_enrolled(user).await? {
            for factor in self.inner.factors.iter().filter(|f| !f.is_enrollable()) {
                let cx = FactorContext::new(self, factor.kind(), user, generation, &client);
                if !self.is_locked(user, factor.kind()).await?
                    && factor.is_offered(&cx, &[]).await?
                {
                    methods.push(factor.kind().to_owned());
                }
            }
        }
        Ok(methods)
    }

    /// Whether the user has a second factor: a current credential that was confirmed (active, or
    /// disabled as a suspected clone), of any kind but backup codes. A kind the engine does not
    /// register (any more) or cannot use now still counts: the user then needs a factor the
    /// engine offers (backup codes, or recovery), never the password alone.
    pub async fn is_enrolled(&self, user: &str) -> Result<bool, MfaError> {
        let generation = self.current_generation(user).await?.value;
        Ok(self
            .factors()
            .credentials(user)
            .await?
            .iter()
            .any(|credential| {
                credential.generation == generation
                    && credential.status != CredentialStatus::Pending
                    && self
                        .inner
                        .factors
                        .find(&credential.kind)
                        .is_none_or(|factor| factor.is_enrollable())
            }))
    }

    /// The user's credentials of the current generation, of registered kinds, any status.
    pub(crate) async fn current_credentials(
        &self,
        user: &str,
    ) -> Result<Vec<Credential>, MfaError> {
        let generation = self.current_generation(user).await?.value;
        Ok(self
            .factors()
            .credentials(user)
            .await?
            .into_iter()
            .filter(|credential| {
                credential.generation == generation
                    && self
                        .inner
                        .factors
                        .find(&credential.kind)
                        .is_some_and(|factor| factor.is_enrollable())
            })
            .collect())
    }

    /// The user's active, current credentials of registered kinds.
    pub(crate) async fn active_credentials(&self, user: &str) -> Result<Vec<Credential>, MfaError> {
        Ok(self
            .current_credentials(user)
            .await?
            .into_iter()
            .filter(|credential| credential.status == CredentialStatus::Active)
            .collect())
    }

    /// The user's active, current credentials of `kind`.
    pub(crate) async fn credentials_of(
        &self,
        user: &str,
        kind: &str,
    ) -> Result<Vec<Credential>, MfaError> {
        Ok(self
            .active_credentials(user)
            .await?
            .into_iter()
            .filter(|credential| credential.kind == kind)
            .collect())
    }

    /// The user's pending credential of `kind` of this generation, the newest if several.
    async fn pending_of(
        &self,
        user: &str,
        kind: &str,
        generation: u64,
    ) -> Result<Option<Credential>, MfaError> {
        Ok(self
            .factors()
            .credentials(user)
            .await?
            .into_iter()
            .filter(|credential| {
                credential.kind == kind
                    && credential.generation == generation
                    && credential.status == CredentialStatus::Pending
            })
            .max_by_key(|credential| credential.created_at))
    }

    fn enrollable(&self, kind: &str) -> Result<&std::sync::Arc<dyn Factor>, MfaError> {
        let factor = self.inner.factors.get(kind)?;
        if !factor.is_enrollable() || !factor.is_available() {
            return Err(Unsupported.into());
        }
        Ok(factor)
    }

    fn new_credential(
        &self,
        user: &str,
        kind: &str,
        generation: u64,
        new: NewCredential,
    ) -> Credential {
        Credential {
            user: user.to_owned(),
            kind: kind.to_owned(),
            id: new.id,
            status: CredentialStatus::Pending,
            label: new.label,
            payload: new.payload,
            counter: new.counter,
            created_at: self.now(),
            last_used_at: None,
            generation,
        }
    }

    /// Refuses a restricted `factor` for a user with no active unrestricted factor, when the
    /// engine forbids a restricted factor alone.
    async fn check_restricted_company(
        &self,
        factor: &dyn Factor,
        user: &str,
    ) -> Result<(), MfaError> {
        if !factor.is_restricted() || self.inner.restricted_alone {
            return Ok(());
        }
        let credentials = self.active_credentials(user).await?;
        if credentials.iter().any(|c| self.is_unrestricted(&c.kind)) {
            return Ok(());
        }
        self.audit()
            .record(
                user,
                AuditEvent::factor(
                    factor.kind(),
                    "refused",
                    serde_json::json!({ "reason": format!("{}_needs_another_factor", factor.kind()) }),
                ),
            )
            .await;
        Err(
            PolicyRefusal::needs_another_factor(factor.kind(), http::StatusCode::BAD_REQUEST)
                .into(),
        )
    }

    /// Refuses removing `removing` when a restricted factor would be left as the user's only
    /// factor and the engine forbids that. Removing a restricted factor itself, or any factor
    /// beside another unrestricted one, is always allowed.
    async fn check_removal_keeps_company(
        &self,
        user: &str,
        removing: &Credential,
    ) -> Result<(), MfaError> {
        if self.inner.restricted_alone {
            return Ok(());
        }
        let credentials = self.active_credentials(user).await?;
        let is_removed = |c: &&Credential| c.kind == removing.kind && c.id == removing.id;
        let restricted_left = credentials
            .iter()
            .find(|c| !is_removed(c) && !self.is_unrestricted(&c.kind));
        let unrestricted_left = credentials
            .iter()
            .any(|c| !is_removed(&c) && self.is_unrestricted(&c.kind));
        match restricted_left {
            Some(restricted)
                if !unrestricted_left && credentials.iter().any(|c| is_removed(&c)) =>
            {
                Err(PolicyRefusal::needs_another_factor(
                    &restricted.kind,
                    http::StatusCode::CONFLICT,
                )
                .into())
            }
            _ => Ok(()),
        }
    }

    fn is_unrestricted(&self, kind: &str) -> bool {
        self.inner
            .factors
            .find(kind)
            .is_some_and(|factor| factor.is_enrollable() && !factor.is_restricted())
    }

    /// Runs `change` holding `user`'s factor-change lease.
    pub(crate) async fn one_factor_change<T>(
        &self,
        user: &str,
        change: impl Future<Output = Result<T, MfaError>>,
    ) -> Result<T, MfaError> {
        let lease = format!("factor_change:{user}");
        if !self
            .ephemeral()
            .insert_if_absent(&lease, b"1", FACTOR_CHANGE_LEASE)
            .await?
        {
            return Err(FactorChangeInProgress.into());
        }
        let outcome = change.await;
        // The change is done (or refused) whatever the release does: a lease that could not be
        // released only delays the user's next change until it expires.
        if let Err(error) = self.ephemeral().remove(&lease).await {
            tracing::warn!(%error, "a factor-change lease could not be released; it will expire");
        }
        outcome
    }

    /// What follows the removal of any factor: the backup codes go when no factor remains, and
    /// devices remembered on the strength of a factor are revoked.
    pub(crate) async fn after_factor_removed(&self, user: &str) -> Result<(), MfaError> {
        if !self.is_enrolled(user).await? {
            self.clear_backup_codes(user).await?;
        }
        self.revoke_devices(user).await?;
        Ok(())
    }
}

/// A label as stored: trimmed, 1 to [`MAX_LABEL_CHARS`] characters, no control characters.
pub(crate) fn validate_label(label: &str) -> Result<String, MfaError> {
    let label = label.trim();
    let count = label.chars().count();
    if count == 0 || count > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(InvalidLabel.into());
    }
    Ok(label.to_owned())
}
