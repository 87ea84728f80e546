//! The SMS providers ([`SmsSender`], [`SmsVerifier`], [`SmsProvider`]), their errors, and the
//! sending policy ([`SmsPolicy`]: code lifetime, cooldown, send limits, allow-lists).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use super::Region;
use crate::delivery::SendPolicy;

/// Why an SMS provider failed. Holds no number and no code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SmsError {
    /// The number cannot receive SMS (Twilio 60200, 21211, 21614).
    #[error("the number cannot receive SMS")]
    InvalidNumber,
    /// No verification is pending: checked too often (Twilio 60202), expired, approved already or
    /// never started (20404).
    #[error("no verification is pending for this number")]
    VerificationGone,
    /// Too many codes were sent to this number (Twilio 60203).
    #[error("too many codes were sent to this number")]
    TooManySends,
    /// The provider is rate limiting (Twilio 20429).
    #[error("the SMS provider is rate limiting")]
    RateLimited,
    /// The provider could not be reached or failed.
    #[error("the SMS provider is unavailable: {0}")]
    Unavailable(&'static str),
}

/// A gateway that delivers a text stepup wrote (the code is made and checked by stepup).
#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    /// Sends `body` to `to` (E.164). Never log `body`: it holds the code.
    async fn send(&self, to: &str, body: &str) -> Result<(), SmsError>;
}

/// A provider that makes, sends and checks the code itself (Twilio Verify).
#[async_trait]
pub trait SmsVerifier: Send + Sync + 'static {
    /// Starts (or resends) a verification of `to` by SMS.
    async fn start(&self, to: &str) -> Result<(), SmsError>;
    /// Whether `code` is the pending code of `to` (`true`: approved, and used up).
    async fn check(&self, to: &str, code: &str) -> Result<bool, SmsError>;
}

/// Who makes the codes.
#[derive(Clone)]
pub enum SmsProvider {
    /// stepup makes the code and this gateway delivers it.
    Sender(Arc<dyn SmsSender>),
    /// The provider makes and checks the code.
    Verifier(Arc<dyn SmsVerifier>),
}

impl SmsProvider {
    /// stepup makes the codes; `sender` delivers them.
    pub fn sender(sender: impl SmsSender) -> Self {
        Self::Sender(Arc::new(sender))
    }

    /// `verifier` makes and checks the codes.
    pub fn verifier(verifier: impl SmsVerifier) -> Self {
        Self::Verifier(Arc::new(verifier))
    }
}

impl fmt::Debug for SmsProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sender(_) => "SmsProvider::Sender",
            Self::Verifier(_) => "SmsProvider::Verifier",
        })
    }
}

/// Where SMS may go and how often: the send limits every code factor shares, and allow-lists of
/// regions and calling codes (against SMS pumping to premium-rate ranges). A number must pass
/// every list that is set.
///
/// ```
/// use stepup_mfa::sms::{Region, SmsPolicy};
///
/// // Numbers of the United Kingdom and Germany only.
/// let policy = SmsPolicy {
///     allowed_regions: Some(vec!["GB".parse().unwrap(), "DE".parse().unwrap()]),
///     ..SmsPolicy::default()
/// };
/// # let _ = policy;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SmsPolicy {
    /// Code lifetime, resend cooldown, per-number, per-user and per-address limits.
    pub sends: SendPolicy,
    /// The regions (ISO 3166-1 alpha-2) numbers may belong to, told by the numbering plan
    /// ([`PhoneNumber::region`](super::PhoneNumber::region)): `US` admits the United States, not
    /// Canada or Jamaica, though all dial `+1`. A number no region's plan holds is refused.
    /// Checked when a number is enrolled.
    /// `None`: every region.
    pub allowed_regions: Option<Vec<Region>>,
    /// The country calling codes numbers may have, without `+` (`["44", "49"]`); `None`: all.
    /// A calling code can span countries (`"1"` admits every NANP country): prefer
    /// [`allowed_regions`](Self::allowed_regions).
    pub allowed_country_codes: Option<Vec<String>>,
}
