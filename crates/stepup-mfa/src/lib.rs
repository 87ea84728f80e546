//! The engine of stepup: [`Mfa`], the one gateway to stepup's state.
//!
//! - **Factors** are units ([`factor::Factor`]), registered on the engine: [`totp`],
//!   [`webauthn`], [`sms`] and [`email`] (each behind its cargo feature), [`backup`] codes on
//!   every engine, and any the application writes. A factor implements only what is its own;
//!   the engine owns the rest.
//! - **The lifecycle** of every factor ([`lifecycle`]): enrollment started and finished, listing,
//!   renaming, removal, one change per user at a time, backup codes with the first factor,
//!   restricted factors never alone, audit.
//! - **The login** ([`login`]): the password step, remembered [`devices`], the MFA step
//!   ([`challenge`]), passwordless sign-in, the level reached, tokens and [`authorization`] codes.
//! - **The limits** ([`limits`]): per user, per factor (the 100-failure lock), per account's
//!   password, per claimed credential, per client address.
//! - **Resets** ([`account`], [`recovery`]): the user's generation voids everything made before.
//! - **The authorization server** ([`clients`], [`authorize`], [`refresh`]): configured,
//!   registered (RFC 7591) and metadata-document clients, the authorization request and the
//!   sign-in session, the token endpoint with rotated refresh tokens, resources and revocation.
//! - **One operation** ([`transactions`]): an amount to a payee approved with a second factor,
//!   in a single-use grant.
//! - **External identity providers** ([`external`]): their users keyed by issuer and subject,
//!   and the token exchange that adds stepup's second factor to their provider's login.
//! - **The layers' policies** ([`policies`]): the engine answers `RejectRevoked`,
//!   `RememberedDevices` and `RateLimit`.
//! - The [`audit`] trail, sealed secrets ([`seal`]), the bounded slow-hash pool ([`kdf`]), the
//!   shared machinery of codes sent to a destination ([`delivery`]).
//!
//! ```
//! use stepup_mfa::backup::BackupCodes;
//!
//! let codes = BackupCodes::generate();
//! assert_eq!(codes.len(), 10);
//! assert_eq!(BackupCodes::normalise(&codes[0].to_lowercase()), BackupCodes::normalise(&codes[0]));
//! ```

pub mod account;
mod accounts;
pub mod audit;
pub mod authorization;
pub mod authorize;
pub mod backup;
pub mod challenge;
#[cfg(feature = "client-metadata")]
mod client_metadata;
pub mod clients;
pub mod delivery;
pub mod devices;
#[cfg(feature = "email")]
pub mod email;
mod engine;
pub mod error;
pub mod external;
pub mod factor;
pub mod kdf;
pub mod lifecycle;
pub mod limits;
pub mod login;
pub mod notices;
pub mod policies;
pub mod recovery;
pub mod refresh;
pub mod replica;
pub mod seal;
#[cfg(feature = "sms")]
pub mod sms;
#[cfg(feature = "totp")]
pub mod totp;
pub mod transactions;
#[cfg(feature = "webauthn")]
pub mod webauthn;

pub use accounts::{PasswordCheck, PasswordCheckFailed};
pub use audit::{Audit, AuditEvent, Notifier};
pub use authorization::{Authentication, CODE_TTL, PendingAuthorization, RedeemedCode};
pub use authorize::{
    AuthorizationError, AuthorizationParams, AuthorizationRequest, ErrorRedirect, Prompt,
    SessionDecision,
};
pub use challenge::{CHALLENGE_TTL, CompletedChallenge, MAX_CODE_ATTEMPTS, MfaChallenge};
pub use clients::{
    Client, ClientSource, MetadataDocumentPolicy, OAuthClient, RegisteredClient, RegistrationPolicy,
};
pub use devices::RememberedDevice;
pub use engine::{Mfa, Stores};
pub use error::{
    InvalidClientMetadata, InvalidCode, InvalidMfaToken, InvalidSubjectToken, MfaError, Refusal,
};
pub use factor::{ClientInfo, Factor};
pub use kdf::{KdfBusy, KdfPool};
pub use lifecycle::{Enrolled, FactorInfo, FactorSummary};
pub use limits::{AddressPolicy, AttemptPolicy};
pub use login::{Conclusion, Login, LoginStep, PasswordLogin};
pub use recovery::{RECOVERY_CODE_TTL, RecoveryOutcome};
pub use refresh::{CodeExchange, RefreshRequest, TokenResponse};
pub use seal::Keyring;
pub use stepup_store::Credential;
