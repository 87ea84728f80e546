//! Authentication levels (`acr`), methods (`amr`) and the requirement a route places on them.
//!
//! This module is the one place where "is this caller authenticated strongly and recently enough?"
//! is decided. The tower layers and extractors only carry its verdict over HTTP.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::context::AuthContext;

/// Well-known `acr` values, weakest first.
pub mod level {
    /// Something the user knows (a password).
    pub const PWD: &str = "pwd";
    /// Two distinct factors.
    pub const MFA: &str = "mfa";
    /// Phishing-resistant multi-factor (WebAuthn).
    pub const PHR: &str = "phr";
}

/// RFC 8176 authentication method reference (`amr`) values used by stepup.
pub mod amr {
    /// Password.
    pub const PWD: &str = "pwd";
    /// One-time password (TOTP, backup code).
    pub const OTP: &str = "otp";
    /// Confirmation by SMS.
    pub const SMS: &str = "sms";
    /// Proof of possession of a hardware-secured key.
    pub const HWK: &str = "hwk";
    /// Proof of possession of a software-secured key.
    pub const SWK: &str = "swk";
    /// Multiple-factor authentication.
    pub const MFA: &str = "mfa";
    /// User presence test.
    pub const USER: &str = "user";
}

/// The ordered set of `acr` values this service understands; a higher level satisfies a lower
/// requirement. Cheap to clone.
///
/// ```
/// use stepup_core::AcrLevels;
///
/// let levels = AcrLevels::default(); // pwd < mfa < phr
/// assert!(levels.satisfies(Some("phr"), "mfa"));
/// assert!(!levels.satisfies(Some("pwd"), "mfa"));
/// assert!(!levels.satisfies(None, "pwd"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcrLevels {
    weakest_first: Arc<[Box<str>]>,
}

impl AcrLevels {
    /// Levels from weakest to strongest.
    pub fn new<I, L>(weakest_first: I) -> Self
    where
        I: IntoIterator<Item = L>,
        L: Into<Box<str>>,
    {
        Self {
            weakest_first: weakest_first.into_iter().map(Into::into).collect(),
        }
    }

    /// The position of `acr` in the order, if it is known.
    pub fn rank(&self, acr: &str) -> Option<usize> {
        self.weakest_first.iter().position(|known| &**known == acr)
    }

    /// Whether a caller at level `actual` meets `required`.
    ///
    /// Fails closed: an absent level meets nothing, and a level outside the order meets only a
    /// requirement spelled exactly the same.
    pub fn satisfies(&self, actual: Option<&str>, required: &str) -> bool {
        let Some(actual) = actual else { return false };
        if actual == required {
            return true;
        }
        match (self.rank(actual), self.rank(required)) {
            (Some(actual), Some(required)) => actual >= required,
            _ => false,
        }
    }
}

impl Default for AcrLevels {
    /// `pwd` < `mfa` < `phr`, shared: cloning it allocates nothing.
    fn default() -> Self {
        static DEFAULT: LazyLock<AcrLevels> =
            LazyLock::new(|| AcrLevels::new([level::PWD, level::MFA, level::PHR]));
        DEFAULT.clone()
    }
}

/// What a route demands of its caller: a minimum `acr`, optionally a maximum age of the
/// authentication event and `amr` values that must all be present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcrRequirement {
    level: Cow<'static, str>,
    max_age: Option<Duration>,
    amr: Vec<String>,
}

impl AcrRequirement {
    /// Requires at least `level`.
    pub fn level(level: impl Into<Cow<'static, str>>) -> Self {
        Self {
            level: level.into(),
            max_age: None,
            amr: Vec::new(),
        }
    }

    /// Requires at least [`level::MFA`].
    pub fn mfa() -> Self {
        Self::level(level::MFA)
    }

    /// Also requires the authentication to be at most `max_age` old (`auth_time` claim).
    ///
    /// Durations are compared in whole seconds, as `auth_time` is.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Also requires every one of these `amr` values.
    pub fn amr<I, V>(mut self, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.amr.extend(values.into_iter().map(Into::into));
        self
    }

    /// The minimum level.
    pub fn required_level(&self) -> &str {
        &self.level
    }

    /// The maximum age, if any.
    pub fn required_max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The required methods.
    pub fn required_amr(&self) -> &[String] {
        &self.amr
    }

    /// Decides whether `context` meets this requirement; on failure, the RFC 9470 challenge to send.
    ///
    /// Freshness is measured at [`AuthContext::verified_at`], the moment the token was verified by
    /// the injected clock. A token without `auth_time` never meets a `max_age`, and neither does
    /// one whose `auth_time` lies further after `verified_at` than [`AuthContext::leeway`]: an
    /// authentication that has not happened yet proves no freshness.
    pub fn check(&self, context: &AuthContext) -> Result<(), StepUpChallenge> {
        let reason = if !context.levels().satisfies(context.acr(), &self.level) {
            Some(StepUpReason::LevelTooLow)
        } else if !self.amr.iter().all(|method| context.has_amr(method)) {
            Some(StepUpReason::MethodsMissing)
        } else if !self.is_fresh(context) {
            Some(StepUpReason::TooOld)
        } else {
            None
        };
        let Some(reason) = reason else {
            return Ok(());
        };
        let max_age = self.max_age.map(|age| age.as_secs());
        // The caller's identity provider names the level in its own vocabulary and dialect.
        Err(match context.profile() {
            Some(profile) => profile.challenge(
                &self.level,
                max_age,
                reason,
                context.claims_challenge_capable(),
                context.issuer(),
            ),
            None => StepUpChallenge::new(self.level.to_string(), max_age, reason),
        })
    }

    fn is_fresh(&self, context: &AuthContext) -> bool {
        let Some(max_age) = self.max_age else {
            return true;
        };
        let Some(auth_time) = context.auth_time() else {
            return false;
        };
        let now = context.verified_at();
        let leeway = context.leeway().as_secs();
        if auth_time > now.saturating_add(leeway) {
            return false;
        }
        // Within the leeway, an `auth_time` after `now` is clock skew: an age of zero.
        now.saturating_sub(auth_time) <= max_age.as_secs()
    }
}

/// Why a caller must authenticate again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepUpReason {
    /// The token's `acr` is below the required level.
    LevelTooLow,
    /// A required `amr` value is missing.
    MethodsMissing,
    /// The authentication event is older than `max_age`.
    TooOld,
    /// This very operation must be approved with a second factor (a transaction step-up).
    ApprovalRequired,
}

impl StepUpReason {
    /// A human-readable explanation, safe to send to the client.
    pub fn description(self) -> &'static str {
        match self {
            Self::LevelTooLow => "a stronger authentication level is required",
            Self::MethodsMissing => "a different authentication method is required",
            Self::TooOld => "a more recent authentication is required",
            Self::ApprovalRequired => "this operation must be approved with a second factor",
        }
    }
}

/// The content of a step-up challenge: by default RFC 9470 `insufficient_user_authentication`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepUpChallenge {
    /// The `acr_values` the client should request, in the vocabulary of the caller's identity
    /// provider (see [`crate::profile`]).
    pub acr_values: String,
    /// The `max_age` (seconds) the client should request, when the route demands freshness.
    pub max_age: Option<u64>,
    /// Why the current authentication falls short.
    pub reason: StepUpReason,
    /// How the refusal is answered (RFC 9470 unless the provider speaks another dialect).
    pub dialect: ChallengeDialect,
    /// With [`ChallengeDialect::EntraClaims`]: what the claims challenge names (boxed, so a
    /// challenge stays small in the error types that carry it).
    pub claims_challenge: Option<Box<ClaimsChallenge>>,
    /// For stepup's transaction step-up: the operation awaiting approval (boxed, as above).
    pub transaction: Option<Box<TransactionChallenge>>,
}

/// The operation a transaction step-up asks the user to approve: its id (sent back with the MFA
/// step) and the operation itself (RFC 9396 `authorization_details`, to show the user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionChallenge {
    /// The `transaction_id` of the challenge.
    pub id: String,
    /// The operation, a JSON array of one RFC 9396 entry.
    pub authorization_details: serde_json::Value,
}

/// The content of an Entra ID claims challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsChallenge {
    /// The provider's authorization endpoint.
    pub authorization_uri: String,
    /// Base64 of the claims request (`{"access_token":{"acrs":{"essential":true,"value":…}}}`).
    pub claims: String,
}

impl StepUpChallenge {
    /// An RFC 9470 challenge asking for `acr_values` (and `max_age`, when set).
    pub fn new(acr_values: impl Into<String>, max_age: Option<u64>, reason: StepUpReason) -> Self {
        Self {
            acr_values: acr_values.into(),
            max_age,
            reason,
            dialect: ChallengeDialect::Rfc9470,
            claims_challenge: None,
            transaction: None,
        }
    }

    /// The same challenge, for the approval of one operation (`transaction_id` in the
    /// challenge, the operation in the body).
    pub fn with_transaction(mut self, transaction: TransactionChallenge) -> Self {
        self.transaction = Some(Box::new(transaction));
        self
    }

    /// The same challenge, answered in `dialect`.
    pub fn with_dialect(mut self, dialect: ChallengeDialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// The same challenge, answered as an Entra ID claims challenge.
    pub fn with_claims_challenge(mut self, challenge: ClaimsChallenge) -> Self {
        self.dialect = ChallengeDialect::EntraClaims;
        self.claims_challenge = Some(Box::new(challenge));
        self
    }
}

/// How a step-up refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ChallengeDialect {
    /// RFC 9470: `401`, `WWW-Authenticate: Bearer error="insufficient_user_authentication",
    /// error_description=…, acr_values=…[, max_age=…]`.
    #[default]
    Rfc9470,
    /// Microsoft Entra ID's claims challenge: `401`, `WWW-Authenticate: Bearer realm="",
    /// authorization_uri="…", error="insufficient_claims", claims="…"` (from
    /// [`StepUpChallenge::claims_challenge`]).
    EntraClaims,
    /// A plain `403`: the provider has no challenge this client understands.
    Forbidden,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(auth_time: u64, leeway: Duration) -> AuthContext {
        AuthContext::builder("user-1")
            .acr(level::MFA)
            .auth_time(auth_time)
            .verified_at(1_000)
            .leeway(leeway)
            .build()
    }

    #[test]
    fn an_auth_time_in_the_future_is_never_fresh() {
        let requirement = AcrRequirement::mfa().max_age(Duration::from_secs(300));
        // Far ahead of the verification time: no age at all, and still not fresh.
        for leeway in [Duration::ZERO, Duration::from_secs(30)] {
            let verdict = requirement.check(&caller(1_000 + 3_600, leeway));
            assert_eq!(verdict.unwrap_err().reason, StepUpReason::TooOld);
        }
        // A hand-built context tolerates no skew unless told.
        assert!(requirement.check(&caller(1_001, Duration::ZERO)).is_err());
        // Within the leeway, a later `auth_time` is clock skew and counts as just now.
        let skew = Duration::from_secs(30);
        assert!(requirement.check(&caller(1_030, skew)).is_ok());
        assert!(requirement.check(&caller(1_031, skew)).is_err());
        // Without a `max_age` the time is not looked at.
        assert!(
            AcrRequirement::mfa()
                .check(&caller(u64::MAX, Duration::ZERO))
                .is_ok()
        );
    }

    #[test]
    fn max_age_is_met_at_the_boundary() {
        let requirement = AcrRequirement::mfa().max_age(Duration::from_secs(300));
        assert!(requirement.check(&caller(700, Duration::ZERO)).is_ok());
        assert!(requirement.check(&caller(699, Duration::ZERO)).is_err());
    }
}
