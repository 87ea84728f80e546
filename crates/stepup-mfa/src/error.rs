//! [`MfaError`]: why an operation of the engine failed.

use std::time::Duration;

use stepup_store::StoreError;

use crate::Method;

/// Why a second-factor operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MfaError {
    /// The code (or assertion) is wrong, malformed, outside the window or already used.
    #[error("the code is invalid")]
    InvalidCode,
    /// The `mfa_token` is unknown, expired, used or exhausted by wrong codes.
    #[error("the mfa_token is invalid or expired")]
    InvalidMfaToken,
    /// The authorization code is unknown, expired, used, or does not match its client, redirect
    /// URI or PKCE verifier.
    #[error("the authorization code is invalid")]
    InvalidGrant,
    /// The user has no active factor of the kind asked for.
    #[error("no second factor is enrolled")]
    NotEnrolled,
    /// The user already has an active factor of this kind (one per user).
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
    /// The factor failed too many times in a row and stays locked until a recovery or an
    /// administrator's reset.
    #[error("this factor is locked after too many failures")]
    FactorLocked {
        /// The locked factor.
        method: Method,
    },
    /// No WebAuthn relying party is configured: passkeys are not available.
    #[error("passkeys are not configured")]
    WebauthnNotConfigured,
    /// A WebAuthn ceremony (registration or passwordless login) is unknown, expired, already
    /// used, or belongs to another user.
    #[error("the ceremony is unknown, expired or already used")]
    InvalidCeremony,
    /// This WebAuthn credential is already registered (to this user or another).
    #[error("this credential is already registered")]
    CredentialExists,
    /// A credential label is empty, too long or holds control characters.
    #[error("the label must have 1 to 64 characters and no control characters")]
    InvalidLabel,
    /// SMS codes are not configured (no provider).
    #[error("SMS codes are not configured")]
    SmsNotConfigured,
    /// The phone number is not E.164 (`+`, 8 to 15 digits) or cannot receive SMS.
    #[error("the phone number is invalid")]
    InvalidPhoneNumber,
    /// An SMS send was refused by policy: `reason` is `country_not_allowed` or
    /// `sms_needs_another_factor`.
    #[error("the SMS was refused: {reason}")]
    SmsRefused {
        /// Why.
        reason: &'static str,
    },
    /// Removing this factor would leave SMS as the user's only factor, which the policy refuses
    /// ([`SmsPolicy::needs_another_factor`](crate::SmsPolicy::needs_another_factor)): add
    /// another authenticator app or passkey first, or remove SMS first.
    #[error("SMS cannot be the only factor: add another factor or remove SMS first")]
    SmsWouldBeAlone,
    /// Another change to the user's factors is running (`409`); try again when it is done.
    #[error("another change to this user's factors is in progress")]
    FactorChangeInProgress,
    /// The SMS provider could not be reached or failed (`503`).
    #[error("the SMS provider is unavailable")]
    SmsUnavailable,
    /// The recovery code is unknown, expired or used, or the password given with it is wrong
    /// (the code is used up either way).
    #[error("the recovery code or the password is invalid")]
    InvalidRecoveryCode,
    /// No mailer is configured: recovery codes cannot be sent.
    #[error("no mailer is configured")]
    MailNotConfigured,
    /// The slow-hash pool had no room in time (`503`).
    #[error("the service is busy")]
    Busy,
    /// The store failed: callers fail closed (`503`).
    #[error("the store is unavailable")]
    Unavailable(#[from] StoreError),
    /// A stored secret or record could not be opened or read, or a secret could not be sealed.
    #[error("internal error: {0}")]
    Internal(&'static str),
}
