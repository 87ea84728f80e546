//! The second factors as one shape: a [`Method`] names a factor, a [`Proof`] is what a user
//! presents for it. A new factor is a new variant here and a new module; the stores never change.

use serde::Serialize;
use stepup_core::acr::amr;

/// A second factor a user can complete an MFA step with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Method {
    /// A TOTP code from an authenticator app.
    Totp,
    /// A single-use backup code.
    BackupCode,
    /// A WebAuthn passkey or security key.
    Webauthn,
    /// A code sent by SMS (a NIST SP 800-63B *restricted* authenticator).
    Sms,
}

impl Method {
    /// The stable name used in `methods`, `method` fields and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::BackupCode => "backup_code",
            Self::Webauthn => "webauthn",
            Self::Sms => "sms",
        }
    }

    /// The RFC 8176 `amr` value a success with this method adds.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Totp | Self::BackupCode => amr::OTP,
            Self::Webauthn => amr::HWK,
            Self::Sms => "sms",
        }
    }

    /// The kind under which the store keeps this factor's credentials or codes (and its
    /// failure streak).
    pub fn store_kind(self) -> &'static str {
        match self {
            Self::Totp => crate::totp::KIND,
            Self::BackupCode => crate::backup::KIND,
            Self::Webauthn => crate::webauthn::KIND,
            Self::Sms => crate::sms::KIND,
        }
    }

    /// Whether NIST SP 800-63B calls this factor *restricted* (SMS): offer it beside another.
    pub fn is_restricted(self) -> bool {
        matches!(self, Self::Sms)
    }

    /// The method whose credentials the store keeps under `kind`, if any.
    pub fn from_credential_kind(kind: &str) -> Option<Self> {
        [Self::Totp, Self::Webauthn, Self::Sms]
            .into_iter()
            .find(|method| method.store_kind() == kind)
    }
}

/// What the user proves a second factor with.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Proof<'a> {
    /// A TOTP code.
    Totp(&'a str),
    /// A backup code.
    BackupCode(&'a str),
    /// A WebAuthn assertion (what a browser's `PublicKeyCredential.toJSON()` gives), answering
    /// the challenge of [`Mfa::begin_webauthn_challenge`](crate::Mfa::begin_webauthn_challenge).
    Webauthn(&'a crate::webauthn::PublicKeyCredential),
    /// A code sent by SMS for this MFA step
    /// ([`Mfa::send_sms_challenge`](crate::Mfa::send_sms_challenge)).
    Sms(&'a str),
}

impl Proof<'_> {
    /// The method this proof is for.
    pub fn method(&self) -> Method {
        match self {
            Self::Totp(_) => Method::Totp,
            Self::BackupCode(_) => Method::BackupCode,
            Self::Webauthn(_) => Method::Webauthn,
            Self::Sms(_) => Method::Sms,
        }
    }
}
