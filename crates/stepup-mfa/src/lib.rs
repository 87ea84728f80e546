//! The second-factor engine of stepup: [`Mfa`], the one gateway to stepup's state, with one
//! module per factor ([`totp`], [`webauthn`], [`sms`], [`backup`]) behind one shape ([`Method`],
//! [`Proof`]), and one per concern: the MFA step ([`challenge`]), remembered [`devices`],
//! [`authorization`] codes, [`recovery`], the [`account`]'s end, the [`audit`] trail, guessing
//! [`limits`], one [`factor_change`] at a time, sealed secrets ([`seal`]) and the slow-hash pool
//! ([`kdf`]).
//!
//! ```
//! use stepup_mfa::backup::BackupCodes;
//!
//! let codes = BackupCodes::generate();
//! assert_eq!(codes.len(), 10);
//! assert_eq!(BackupCodes::normalise(&codes[0].to_lowercase()), BackupCodes::normalise(&codes[0]));
//! ```

pub mod account;
pub mod audit;
pub mod authorization;
pub mod backup;
pub mod challenge;
pub mod devices;
mod engine;
mod error;
pub mod factor_change;
pub mod kdf;
pub mod limits;
mod method;
pub mod recovery;
pub mod seal;
pub mod sms;
pub mod totp;
pub mod webauthn;

pub use audit::{Audit, AuditEvent, Notifier};
pub use authorization::{Authentication, CODE_TTL, PendingAuthorization};
pub use challenge::{
    CHALLENGE_TTL, CompletedChallenge, FactorInfo, FactorSummary, MAX_CODE_ATTEMPTS, MfaChallenge,
};
pub use devices::{DeviceSeen, RememberedDevice};
pub use engine::{Mfa, Stores};
pub use error::MfaError;
pub use kdf::{KdfBusy, KdfPool};
pub use limits::{AddressAttempt, AddressPolicy, AttemptPolicy};
pub use method::{Method, Proof};
pub use recovery::{RECOVERY_CODE_TTL, RecoveryOutcome};
pub use seal::Keyring;
pub use sms::{
    PhoneNumber, SmsError, SmsLimit, SmsPolicy, SmsProvider, SmsSender, SmsSent, SmsVerifier,
    TwilioVerify,
};
pub use totp::{TotpAlgorithm, TotpConfig, TotpEnrollment};
pub use webauthn::{
    PasskeyInfo, PasskeyLogin, PasskeySignIn, RelyingParty, WebauthnEnrolled, WebauthnRegistration,
};
