//! The SMS factor: a phone number proven by one-time codes sent to it. NIST SP 800-63B calls SMS
//! a *restricted* authenticator ([`Method::is_restricted`]): offer it beside an unrestricted one,
//! and refuse it as the only factor with [`SmsPolicy::needs_another_factor`].
//!
//! Two kinds of provider ([`SmsProvider`]):
//!
//! - **stepup makes the code** ([`SmsSender`], any gateway): a random 6-digit code, kept only as
//!   its keyed digest in a code set of kind [`CODE_KIND`], live at most [`MAX_CODE_TTL`] by the
//!   injected clock, consumed once. The digest covers what the code was sent for (the SHA-256 of
//!   the `mfa_token`, or the enrollment of one number), so a code dies with its token and is never
//!   accepted for another one; a new code replaces the earlier one.
//! - **the provider makes and checks the code** ([`SmsVerifier`], e.g. [`TwilioVerify`]): stepup
//!   records what the verification was started for and asks the provider to check.
//!
//! Either way stepup keeps its own limits: every check runs under the per-user limit and the
//! 100-failure factor lock, a resend waits [`SmsPolicy::resend_cooldown`], sends are counted per
//! number, per user and per client address per hour and per day, and a new code resets no
//! failure count. The number is a credential of kind [`KIND`], one per user, its payload the
//! E.164 number sealed by the keyring and bound to the user; answers and logs only ever show it
//! masked (`+1*****6789`). Refused sends are audited as `sms_refused` with a reason, never the
//! number or the code.

mod phone;
mod provider;
pub mod twilio;

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use stepup_core::tokens;
use stepup_store::{CodeHash, CodeSet, Credential, CredentialRef, CredentialStatus, Enrollment};

pub use phone::PhoneNumber;
pub(crate) use provider::SmsSettings;
pub use provider::{SmsError, SmsLimit, SmsPolicy, SmsProvider, SmsSender, SmsVerifier};
pub use twilio::TwilioVerify;

use crate::audit::AuditEvent;
use crate::{Method, Mfa, MfaError};

/// The store kind of SMS credentials (the phone number).
pub const KIND: &str = "sms";
/// The store kind of SMS codes.
pub const CODE_KIND: &str = "sms_code";
/// The longest an SMS code lives, whatever the policy says.
pub const MAX_CODE_TTL: Duration = Duration::from_secs(10 * 60);

/// The id of a user's SMS credential (there is at most one).
const CREDENTIAL_ID: &str = "sms";

/// A code was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmsSent {
    /// The number it went to, masked (`+1*****6789`).
    pub phone: String,
    /// `Code sent to +1*****6789`.
    pub message: String,
}

/// The stored payload of an SMS credential.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// The E.164 number sealed by the keyring under [`sealing_context`].
    number: String,
}

impl Mfa {
    /// Enables SMS codes through `provider`.
    pub fn with_sms_provider(self, provider: SmsProvider) -> Self {
        self.map(|inner| inner.sms.provider = Some(provider))
    }

    /// Sets the SMS limits, allow-list and code lifetime.
    pub fn with_sms_policy(self, policy: SmsPolicy) -> Self {
        self.map(|inner| inner.sms.policy = policy)
    }

    /// Whether SMS codes are configured.
    pub fn sms_enabled(&self) -> bool {
        self.inner.sms.provider.is_some()
    }

    fn sms_provider(&self) -> Result<&SmsProvider, MfaError> {
        self.inner
            .sms
            .provider
            .as_ref()
            .ok_or(MfaError::SmsNotConfigured)
    }

    /// Starts enrolling `phone` (E.164) for `user`, pending until a code sent to it comes back
    /// ([`confirm_sms_enrollment`](Self::confirm_sms_enrollment)); replaces an unconfirmed number.
    /// `address` is the client address the sends are counted against.
    pub async fn begin_sms_enrollment(
        &self,
        user: &str,
        phone: &str,
        address: Option<&str>,
    ) -> Result<SmsSent, MfaError> {
        self.sms_provider()?;
        let number = PhoneNumber::parse(phone).ok_or(MfaError::InvalidPhoneNumber)?;
        self.check_country(user, &number).await?;
        if self.inner.sms.policy.needs_another_factor && !self.has_unrestricted_factor(user).await?
        {
            return Err(self.refuse_sms(user, "sms_needs_another_factor").await);
        }
        if let Some(existing) = self.factors().credential(sms_ref(user)).await?
            && existing.status == CredentialStatus::Active
        {
            return Err(MfaError::AlreadyEnrolled);
        }
        self.admit_sms_send(user, &number, address).await?;
        let credential = Credential {
            user: user.to_owned(),
            kind: KIND.to_owned(),
            id: CREDENTIAL_ID.to_owned(),
            status: CredentialStatus::Pending,
            label: None,
            payload: self.sms_payload(user, &number)?,
            counter: 0,
            created_at: self.now(),
            last_used_at: None,
        };
        if !self
            .factors()
            .put_pending(credential, Enrollment::OnePerUser)
            .await?
        {
            return Err(MfaError::AlreadyEnrolled);
        }
        self.audit()
            .record(user, AuditEvent::SmsEnrollmentStarted {})
            .await;
        let binding = self.enrollment_binding(&number);
        self.deliver(user, &number, &binding, "enrollment").await
    }

    /// Confirms the pending number with the code sent to it. Returns the backup codes, shown this
    /// once, when this is the user's first factor (empty when they already have codes).
    pub async fn confirm_sms_enrollment(
        &self,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, MfaError> {
        self.one_factor_change(user, async {
            let credential = match self.factors().credential(sms_ref(user)).await? {
                None => return Err(MfaError::NoPendingEnrollment),
                Some(credential) if credential.status == CredentialStatus::Active => {
                    return Err(MfaError::AlreadyEnrolled);
                }
                Some(credential) => credential,
            };
            // Checked again here, not only when the number was given: the other factor may have
            // been removed since.
            if self.inner.sms.policy.needs_another_factor
                && !self.has_unrestricted_factor(user).await?
            {
                return Err(self.refuse_sms(user, "sms_needs_another_factor").await);
            }
            let number = self.open_number(&credential)?;
            let binding = self.enrollment_binding(&number);
            self.limited(
                user,
                None,
                "sms_setup",
                self.check_sms_code(user, &number, &binding, code),
            )
            .await?;
            let (codes, set) = self.first_factor_backup_codes(user).await?;
            if !self.factors().activate(sms_ref(user), 0, set).await? {
                return Err(MfaError::NoPendingEnrollment);
            }
            let event = AuditEvent::SmsEnrolled {
                backup_codes: codes.len(),
            };
            self.audit().record(user, event).await;
            Ok(codes)
        })
        .await
    }

    /// Sends a code for the MFA step of `mfa_token` to the user's number; answer it with
    /// [`Proof::Sms`](crate::Proof::Sms). The code is accepted for this `mfa_token` only.
    pub async fn send_sms_challenge(
        &self,
        mfa_token: &str,
        address: Option<&str>,
    ) -> Result<SmsSent, MfaError> {
        self.sms_provider()?;
        let ticket = self.challenge_subject(mfa_token).await?;
        let user = ticket.sub.as_str();
        let credential = self.active_sms(user).await?;
        if self.is_locked(user, Method::Sms).await? {
            return Err(MfaError::FactorLocked {
                method: Method::Sms,
            });
        }
        let number = self.open_number(&credential)?;
        self.admit_sms_send(user, &number, address).await?;
        self.deliver(user, &number, &login_binding(mfa_token), "login")
            .await
    }

    /// Checks the SMS code of the MFA step of `mfa_token` under every limit.
    pub(crate) async fn verify_sms(
        &self,
        mfa_token: &str,
        user: &str,
        code: &str,
    ) -> Result<(), MfaError> {
        self.limited(user, Some(Method::Sms), "sms", async {
            let credential = self.active_sms(user).await?;
            let number = self.open_number(&credential)?;
            self.check_sms_code(user, &number, &login_binding(mfa_token), code)
                .await?;
            // Record the use; the code itself was the single-use part.
            self.factors()
                .advance_counter(sms_ref(user), credential.counter + 1, None, self.now())
                .await?;
            Ok(())
        })
        .await
    }

    /// The user's number, masked, if one is enrolled (active or pending).
    pub async fn sms_phone(&self, user: &str) -> Result<Option<String>, MfaError> {
        match self.factors().credential(sms_ref(user)).await? {
            Some(credential) => Ok(Some(self.open_number(&credential)?.masked())),
            None => Ok(None),
        }
    }

    /// Removes the SMS factor and its codes; the backup codes go too when no other factor
    /// remains, and remembered devices are revoked. `false` when there was none.
    pub async fn remove_sms(&self, user: &str) -> Result<bool, MfaError> {
        self.one_factor_change(user, async {
            let existed = self.factors().delete_credential(sms_ref(user)).await?;
            let no_codes = CodeSet {
                kind: CODE_KIND.to_owned(),
                codes: Vec::new(),
            };
            self.factors().replace_codes(user, no_codes).await?;
            if existed {
                self.audit().record(user, AuditEvent::SmsRemoved {}).await;
            }
            self.after_factor_removed(user).await?;
            Ok(existed)
        })
        .await
    }

    /// Refuses to remove the credential `(kind, id)` of `user` when the policy says SMS needs
    /// another factor and SMS would then be the user's only factor
    /// ([`MfaError::SmsWouldBeAlone`]). Removing SMS itself, or any factor beside another
    /// unrestricted one, is always allowed.
    pub(crate) async fn check_removal_keeps_sms_company(
        &self,
        user: &str,
        kind: &str,
        id: &str,
    ) -> Result<(), MfaError> {
        if !self.inner.sms.policy.needs_another_factor {
            return Ok(());
        }
        let credentials = self.factors().credentials(user).await?;
        let active = |c: &&Credential| c.status == CredentialStatus::Active;
        let has_sms = credentials.iter().filter(active).any(|c| c.kind == KIND);
        let others = credentials.iter().filter(active).any(|c| {
            !(c.kind == kind && c.id == id)
                && Method::from_credential_kind(&c.kind).is_some_and(|m| !m.is_restricted())
        });
        let removing = credentials
            .iter()
            .filter(active)
            .any(|c| c.kind == kind && c.id == id);
        if has_sms && removing && !others {
            return Err(MfaError::SmsWouldBeAlone);
        }
        Ok(())
    }

    /// Re-seals every phone number not sealed under the current key; returns how many moved.
    pub(crate) async fn reseal_phone_numbers(&self) -> Result<usize, MfaError> {
        let keyring = &self.inner.keyring;
        let mut moved = 0;
        for credential in self.factors().credentials_of_kind(KIND).await? {
            let payload: Payload = serde_json::from_str(&credential.payload)
                .map_err(|_| MfaError::Internal("a stored SMS credential is corrupt"))?;
            if crate::Keyring::key_id_of(&payload.number).ok() == Some(keyring.current_key_id()) {
                continue;
            }
            let number = self.open_number(&credential)?;
            let resealed = self.sms_payload(&credential.user, &number)?;
            if self
                .factors()
                .replace_payload(credential.key(), &credential.payload, &resealed, None)
                .await?
            {
                moved += 1;
            }
        }
        Ok(moved)
    }

    async fn active_sms(&self, user: &str) -> Result<Credential, MfaError> {
        match self.factors().credential(sms_ref(user)).await? {
            Some(credential) if credential.status == CredentialStatus::Active => Ok(credential),
            _ => Err(MfaError::NotEnrolled),
        }
    }

    /// Whether the user has an active factor other than SMS.
    async fn has_unrestricted_factor(&self, user: &str) -> Result<bool, MfaError> {
        Ok(self.factors().credentials(user).await?.iter().any(|c| {
            c.status == CredentialStatus::Active
                && Method::from_credential_kind(&c.kind).is_some_and(|m| !m.is_restricted())
        }))
    }

    async fn check_country(&self, user: &str, number: &PhoneNumber) -> Result<(), MfaError> {
        let allowed = match &self.inner.sms.policy.allowed_country_codes {
            None => true,
            Some(codes) => codes.iter().any(|code| code == number.country_code()),
        };
        if allowed {
            Ok(())
        } else {
            Err(self.refuse_sms(user, "country_not_allowed").await)
        }
    }

    /// Audits a refused SMS (a send, or the factor itself) and returns the error answering it.
    async fn refuse_sms(&self, user: &str, reason: &'static str) -> MfaError {
        tracing::info!(target: "stepup::sms", reason, "SMS was refused");
        self.audit()
            .record(user, AuditEvent::SmsRefused { reason })
            .await;
        MfaError::SmsRefused { reason }
    }

    /// The resend cooldown, then the per-number, per-user and per-address counters. A refused
    /// send is audited with its reason.
    async fn admit_sms_send(
        &self,
        user: &str,
        number: &PhoneNumber,
        address: Option<&str>,
    ) -> Result<(), MfaError> {
        let policy = &self.inner.sms.policy;
        let cooldown = policy.resend_cooldown;
        if !cooldown.is_zero() {
            let key = format!("sms_cooldown:{user}");
            let until = self.now().saturating_add(cooldown.as_secs());
            if !self
                .ephemeral()
                .insert_if_absent(&key, &until.to_be_bytes(), cooldown)
                .await?
            {
                let until = self
                    .ephemeral()
                    .get(&key)
                    .await?
                    .and_then(|value| <[u8; 8]>::try_from(value.as_slice()).ok())
                    .map_or(until, u64::from_be_bytes);
                let wait = until.saturating_sub(self.now()).max(1);
                self.refuse_rate(user, "cooldown").await;
                return Err(MfaError::RateLimited {
                    retry_after: Duration::from_secs(wait),
                });
            }
        }
        let number_key = self.number_digest(number);
        let scopes: [(&'static str, Option<&str>, &[SmsLimit]); 3] = [
            (
                "number_limit",
                Some(number_key.as_str()),
                &policy.per_number,
            ),
            ("user_limit", Some(user), &policy.per_user),
            ("address_limit", address, &policy.per_address),
        ];
        for (reason, id, limits) in scopes {
            let Some(id) = id else { continue };
            for limit in limits {
                let window = limit.window.as_secs();
                let key = format!("sms_sends:{reason}:{window}:{id}");
                let count = self.ephemeral().increment(&key, limit.window).await?;
                if count > limit.max {
                    self.refuse_rate(user, reason).await;
                    return Err(MfaError::RateLimited {
                        retry_after: limit.window,
                    });
                }
            }
        }
        Ok(())
    }

    async fn refuse_rate(&self, user: &str, reason: &'static str) {
        tracing::info!(target: "stepup::sms", reason, "an SMS send was refused");
        self.audit()
            .record(user, AuditEvent::SmsRefused { reason })
            .await;
    }

    /// Makes and sends a code bound to `binding` (or asks the provider to).
    async fn deliver(
        &self,
        user: &str,
        number: &PhoneNumber,
        binding: &str,
        purpose: &'static str,
    ) -> Result<SmsSent, MfaError> {
        let ttl = self.inner.sms.policy.code_ttl.min(MAX_CODE_TTL);
        match self.sms_provider()? {
            SmsProvider::Sender(sender) => {
                let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
                let set = CodeSet {
                    kind: CODE_KIND.to_owned(),
                    codes: vec![CodeHash {
                        lookup: self.sms_lookup(binding, &code),
                        hash: String::new(),
                        expires_at: Some(self.now().saturating_add(ttl.as_secs())),
                    }],
                };
                // A new code replaces the earlier one; failure counts stay as they are.
                self.factors().replace_codes(user, set).await?;
                let minutes = (ttl.as_secs() / 60).max(1);
                let body = format!(
                    "Your verification code is {code}. It expires in {minutes} minutes. Never share it."
                );
                sender
                    .send(number.as_str(), &body)
                    .await
                    .map_err(send_error)?;
            }
            SmsProvider::Verifier(verifier) => {
                verifier.start(number.as_str()).await.map_err(send_error)?;
                let key = verification_key(binding);
                self.ephemeral().remove(&key).await?;
                self.ephemeral().insert_if_absent(&key, b"1", ttl).await?;
            }
        }
        tracing::info!(target: "stepup::sms", to = %number.masked(), purpose, "SMS code sent");
        self.audit()
            .record(user, AuditEvent::SmsSent { purpose })
            .await;
        let phone = number.masked();
        Ok(SmsSent {
            message: format!("Code sent to {phone}"),
            phone,
        })
    }

    /// Checks `code` for `binding`: consumed once (stepup's codes) or checked by the provider.
    async fn check_sms_code(
        &self,
        user: &str,
        number: &PhoneNumber,
        binding: &str,
        code: &str,
    ) -> Result<(), MfaError> {
        let code = normalise(code).ok_or(MfaError::InvalidCode)?;
        match self.sms_provider()? {
            SmsProvider::Sender(_) => {
                let lookup = self.sms_lookup(binding, &code);
                if !self
                    .factors()
                    .consume_code(user, CODE_KIND, &lookup)
                    .await?
                {
                    return Err(MfaError::InvalidCode);
                }
            }
            SmsProvider::Verifier(verifier) => {
                let key = verification_key(binding);
                if self.ephemeral().get(&key).await?.is_none() {
                    return Err(MfaError::InvalidCode);
                }
                if !verifier
                    .check(number.as_str(), &code)
                    .await
                    .map_err(check_error)?
                {
                    return Err(MfaError::InvalidCode);
                }
                if self.ephemeral().take(&key).await?.is_none() {
                    return Err(MfaError::InvalidCode);
                }
            }
        }
        Ok(())
    }

    fn sms_payload(&self, user: &str, number: &PhoneNumber) -> Result<String, MfaError> {
        let sealed = self
            .inner
            .keyring
            .seal(number.as_str().as_bytes(), &sealing_context(user))
            .map_err(|_| MfaError::Internal("could not seal the phone number"))?;
        serde_json::to_string(&Payload { number: sealed })
            .map_err(|_| MfaError::Internal("could not encode the SMS payload"))
    }

    fn open_number(&self, credential: &Credential) -> Result<PhoneNumber, MfaError> {
        let payload: Payload = serde_json::from_str(&credential.payload)
            .map_err(|_| MfaError::Internal("a stored SMS credential is corrupt"))?;
        let number = self
            .inner
            .keyring
            .open(&payload.number, &sealing_context(&credential.user))
            .map_err(|_| MfaError::Internal("a stored phone number does not open"))?;
        std::str::from_utf8(&number)
            .ok()
            .and_then(PhoneNumber::parse)
            .ok_or(MfaError::Internal("a stored phone number is corrupt"))
    }

    /// The keyed digest a code is stored under: the code and what it was sent for.
    fn sms_lookup(&self, binding: &str, code: &str) -> String {
        self.inner.backup.lookup(&format!("sms:{binding}:{code}"))
    }

    /// A keyed digest of a number, for its send counters (the store never holds the number).
    fn number_digest(&self, number: &PhoneNumber) -> String {
        self.inner
            .backup
            .lookup(&format!("sms-number:{}", number.as_str()))
    }

    fn enrollment_binding(&self, number: &PhoneNumber) -> String {
        format!("enroll:{}", self.number_digest(number))
    }
}

/// What a login code is bound to: the `mfa_token`'s SHA-256.
fn login_binding(mfa_token: &str) -> String {
    format!("login:{}", tokens::digest(mfa_token))
}

/// Where a provider-made verification's purpose is recorded.
fn verification_key(binding: &str) -> String {
    format!("sms_verification:{}", tokens::digest(binding))
}

/// Six ASCII digits, spaces and dashes ignored.
fn normalise(code: &str) -> Option<String> {
    if code.len() > 32 {
        return None;
    }
    let digits: String = code.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

fn send_error(error: SmsError) -> MfaError {
    match error {
        SmsError::InvalidNumber => MfaError::InvalidPhoneNumber,
        SmsError::TooManySends | SmsError::RateLimited => MfaError::RateLimited {
            retry_after: MAX_CODE_TTL,
        },
        SmsError::VerificationGone | SmsError::Unavailable(_) => {
            tracing::warn!(target: "stepup::sms", %error, "the SMS provider failed");
            MfaError::SmsUnavailable
        }
    }
}

fn check_error(error: SmsError) -> MfaError {
    match error {
        SmsError::VerificationGone | SmsError::InvalidNumber => MfaError::InvalidCode,
        SmsError::TooManySends | SmsError::RateLimited => MfaError::RateLimited {
            retry_after: MAX_CODE_TTL,
        },
        SmsError::Unavailable(_) => {
            tracing::warn!(target: "stepup::sms", %error, "the SMS provider failed");
            MfaError::SmsUnavailable
        }
    }
}

fn sms_ref(user: &str) -> CredentialRef<'_> {
    CredentialRef {
        user,
        kind: KIND,
        id: CREDENTIAL_ID,
    }
}

/// Associated data binding a sealed number to its user.
fn sealing_context(user: &str) -> String {
    format!("sms:{user}")
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(normalise("123 456").as_deref(), Some("123456"));
        assert_eq!(normalise("123-456").as_deref(), Some("123456"));
        for bad in ["", "12345", "1234567", "12345a", "１２３４５６"] {
            assert_eq!(normalise(bad), None, "{bad}");
        }
    }
}
