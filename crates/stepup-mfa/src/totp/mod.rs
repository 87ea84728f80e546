//! The TOTP factor (RFC 6238): enrollment with a locally made QR code, confirmation by a first
//! code, verification accepting each time step at most once per user.
//!
//! The credential is kept under kind [`KIND`], one per user; its payload is the JSON object
//! `{"secret", "algorithm", "digits", "period"}` with the secret sealed by the keyring (bound to
//! the user), and its counter is the last accepted time step, advanced by compare-and-set, so a
//! step accepted by one instance is refused by every other.

mod key;

pub use key::{InvalidTotp, SECRET_LEN, TotpAlgorithm, TotpConfig, TotpKey};

use serde::{Deserialize, Serialize};
use stepup_store::{Credential, CredentialRef, CredentialStatus, Enrollment};

use crate::audit::AuditEvent;
use crate::{Method, Mfa, MfaError};

/// The store kind of TOTP credentials.
pub const KIND: &str = "totp";

/// The id of a user's TOTP credential (there is at most one).
const CREDENTIAL_ID: &str = "totp";

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

/// The stored payload of a TOTP credential.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// Sealed by the keyring under [`sealing_context`].
    secret: String,
    algorithm: String,
    digits: u8,
    period: u64,
}

impl Mfa {
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
        let payload = Payload {
            secret: self.seal_totp_secret(user, &secret)?,
            algorithm: config.algorithm.name().to_owned(),
            digits: config.digits,
            period: config.period,
        };
        let credential = Credential {
            user: user.to_owned(),
            kind: KIND.to_owned(),
            id: CREDENTIAL_ID.to_owned(),
            status: CredentialStatus::Pending,
            label: None,
            payload: serde_json::to_string(&payload)
                .map_err(|_| MfaError::Internal("could not encode the TOTP payload"))?,
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
            .record(user, AuditEvent::TotpEnrollmentStarted {})
            .await;
        Ok(enrollment)
    }

    /// Confirms the pending enrollment with a first valid code. Returns the backup codes, shown
    /// this once, when this is the user's first factor (empty when they already have codes).
    pub async fn confirm_totp_enrollment(
        &self,
        user: &str,
        code: &str,
    ) -> Result<Vec<String>, MfaError> {
        self.one_factor_change(user, async {
            let credential = match self.factors().credential(totp_ref(user)).await? {
                None => return Err(MfaError::NoPendingEnrollment),
                Some(credential) if credential.status == CredentialStatus::Active => {
                    return Err(MfaError::AlreadyEnrolled);
                }
                Some(credential) => credential,
            };
            let key = self.totp_key(&credential)?;
            let step = self
                .limited(user, None, "totp_setup", async {
                    key.matching_step(code, self.now())
                        .ok_or(MfaError::InvalidCode)
                })
                .await?;
            let (codes, set) = self.first_factor_backup_codes(user).await?;
            // Activation and the backup codes land together or not at all.
            if !self.factors().activate(totp_ref(user), step, set).await? {
                return Err(MfaError::NoPendingEnrollment);
            }
            let event = AuditEvent::TotpEnrolled {
                backup_codes: codes.len(),
            };
            self.audit().record(user, event).await;
            Ok(codes)
        })
        .await
    }

    /// Checks a TOTP code of an active enrollment; a time step is accepted at most once. Counts
    /// against the user's attempt limit and the factor's failure streak.
    pub async fn verify_totp(&self, user: &str, code: &str) -> Result<(), MfaError> {
        self.limited(
            user,
            Some(Method::Totp),
            "totp",
            self.check_totp(user, code),
        )
        .await
    }

    async fn check_totp(&self, user: &str, code: &str) -> Result<(), MfaError> {
        let credential = match self.factors().credential(totp_ref(user)).await? {
            Some(credential) if credential.status == CredentialStatus::Active => credential,
            _ => return Err(MfaError::NotEnrolled),
        };
        let now = self.now();
        let step = self
            .totp_key(&credential)?
            .matching_step(code, now)
            .ok_or(MfaError::InvalidCode)?;
        if !self
            .factors()
            .advance_counter(totp_ref(user), step, None, now)
            .await?
        {
            // The step was already used (a replay, or a concurrent submission that won).
            return Err(MfaError::InvalidCode);
        }
        Ok(())
    }

    /// Removes the TOTP factor; the backup codes go too when no other factor remains, and
    /// remembered devices are revoked. `false` when there was none. Refused with
    /// [`MfaError::SmsWouldBeAlone`] when SMS would be left as the only factor and the policy
    /// forbids that.
    pub async fn remove_totp(&self, user: &str) -> Result<bool, MfaError> {
        self.one_factor_change(user, async {
            self.check_removal_keeps_sms_company(user, KIND, CREDENTIAL_ID)
                .await?;
            let existed = self.factors().delete_credential(totp_ref(user)).await?;
            if existed {
                self.audit().record(user, AuditEvent::TotpRemoved {}).await;
            }
            self.after_factor_removed(user).await?;
            Ok(existed)
        })
        .await
    }

    /// Re-seals every TOTP secret not sealed under the current key; returns how many moved.
    pub(crate) async fn reseal_totp_secrets(&self) -> Result<usize, MfaError> {
        let keyring = &self.inner.keyring;
        let mut moved = 0;
        for credential in self.factors().credentials_of_kind(KIND).await? {
            let mut payload = parse_payload(&credential)?;
            if crate::Keyring::key_id_of(&payload.secret).ok() == Some(keyring.current_key_id()) {
                continue;
            }
            let secret = keyring
                .open(&payload.secret, &sealing_context(&credential.user))
                .map_err(|_| MfaError::Internal("a stored secret does not open"))?;
            payload.secret = self.seal_totp_secret(&credential.user, &secret)?;
            let resealed = serde_json::to_string(&payload)
                .map_err(|_| MfaError::Internal("could not encode the TOTP payload"))?;
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

    fn seal_totp_secret(&self, user: &str, secret: &[u8]) -> Result<String, MfaError> {
        self.inner
            .keyring
            .seal(secret, &sealing_context(user))
            .map_err(|_| MfaError::Internal("could not seal the secret"))
    }

    fn totp_key(&self, credential: &Credential) -> Result<TotpKey, MfaError> {
        let payload = parse_payload(credential)?;
        let secret = self
            .inner
            .keyring
            .open(&payload.secret, &sealing_context(&credential.user))
            .map_err(|_| MfaError::Internal("a stored secret does not open"))?;
        let algorithm = TotpAlgorithm::from_name(&payload.algorithm)
            .ok_or(MfaError::Internal("unknown stored TOTP algorithm"))?;
        TotpKey::new(
            &secret,
            algorithm,
            payload.digits,
            payload.period,
            self.inner.totp.skew,
            &self.inner.totp.issuer,
            &credential.user,
        )
        .map_err(|_| MfaError::Internal("invalid stored TOTP parameters"))
    }
}

fn totp_ref(user: &str) -> CredentialRef<'_> {
    CredentialRef {
        user,
        kind: KIND,
        id: CREDENTIAL_ID,
    }
}

fn parse_payload(credential: &Credential) -> Result<Payload, MfaError> {
    serde_json::from_str(&credential.payload)
        .map_err(|_| MfaError::Internal("a stored TOTP credential is corrupt"))
}

/// Associated data binding a sealed TOTP secret to its user.
fn sealing_context(user: &str) -> String {
    format!("totp:{user}")
}
