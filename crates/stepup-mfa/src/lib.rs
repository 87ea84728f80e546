//! Second factors of stepup: sealed TOTP secrets ([`seal`]), TOTP ([`totp`]), backup codes
//! ([`backup`]) and the engine tying them to a store ([`Mfa`]).
//!
//! ```
//! use stepup_mfa::backup::BackupCodes;
//!
//! let codes = BackupCodes::generate();
//! assert_eq!(codes.len(), 10);
//! assert_eq!(BackupCodes::normalise(&codes[0].to_lowercase()), BackupCodes::normalise(&codes[0]));
//! ```

pub mod audit;
pub mod backup;
mod limits;
mod mfa;
pub mod seal;
pub mod tokens;
pub mod totp;

pub use audit::{Audit, Notifier};
pub use limits::AttemptPolicy;
pub use mfa::{
    CHALLENGE_TTL, CompletedChallenge, FactorSummary, MAX_CODE_ATTEMPTS, Mfa, MfaChallenge,
    MfaError, Proof, TotpEnrollment, TotpSummary,
};
pub use seal::Keyring;
pub use totp::{TotpAlgorithm, TotpConfig};
