//! [`MfaError`]: why an operation of the engine was refused, one type per refusal.
//!
//! Each refusal is its own type carrying its HTTP status, its stable `error` code and a fixed
//! description that never echoes the client's input ([`Refusal`]); [`MfaError`] gathers them, so
//! an adapter answers every refusal from one mapping (`status()`, `code()`, `description()`), and
//! a store or provider failure keeps its cause ([`Unavailable`], [`Internal`]) for the log while
//! the client sees one `503` or `500` body.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use http::StatusCode;
use stepup_core::error_body::{UNAVAILABLE_CODE, UNAVAILABLE_DESCRIPTION};
use stepup_store::StoreError;

/// What every refusal answers: its status, its stable code and its fixed description.
pub trait Refusal {
    /// The HTTP status.
    fn status(&self) -> StatusCode;
    /// The stable machine-readable code (`invalid_mfa_code`, …).
    fn code(&self) -> &str;
    /// The human-readable description; never holds a secret or the client's input.
    fn description(&self) -> Cow<'_, str>;
}

/// Defines one unit refusal type per entry, with its status, code and description, and its
/// conversion into [`MfaError`].
macro_rules! refusals {
    ($(
        $(#[$meta:meta])*
        $name:ident => $status:ident, $code:literal, $description:literal;
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
            pub struct $name;

            impl $name {
                /// The HTTP status of this refusal.
                pub const STATUS: StatusCode = StatusCode::$status;
                /// The stable code of this refusal.
                pub const CODE: &'static str = $code;
                /// The description of this refusal.
                pub const DESCRIPTION: &'static str = $description;
            }

            impl Refusal for $name {
                fn status(&self) -> StatusCode {
                    Self::STATUS
                }
                fn code(&self) -> &str {
                    Self::CODE
                }
                fn description(&self) -> Cow<'_, str> {
                    Cow::Borrowed(Self::DESCRIPTION)
                }
            }

            impl fmt::Display for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(Self::DESCRIPTION)
                }
            }

            impl std::error::Error for $name {}

            impl From<$name> for MfaError {
                fn from(refusal: $name) -> Self {
                    Self::$name(refusal)
                }
            }
        )*

        /// Why an operation of the engine was refused. Each variant is one refusal type; match on
        /// the variant, answer with [`MfaError::status`], [`MfaError::code`] and
        /// [`MfaError::description`].
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum MfaError {
            $(
                $(#[$meta])*
                $name($name),
            )*
            /// Too many attempts or sends: wait `retry_after` (`429`).
            RateLimited(RateLimited),
            /// A factor failed too many times in a row: locked until a recovery or an
            /// administrator's reset (`403`).
            FactorLocked(FactorLocked),
            /// Refused by a factor's policy, with the factor's own code (`400`, `409`, …).
            Refused(PolicyRefusal),
            /// The request lacks a field or has one of the wrong shape (`400 invalid_request`).
            InvalidInput(InvalidInput),
            /// A client registration's metadata is refused (`400 invalid_client_metadata`).
            InvalidClientMetadata(InvalidClientMetadata),
            /// A store, provider or pool could not answer: fail closed (`503`).
            Unavailable(Unavailable),
            /// A stored record could not be read or a secret sealed (`500`).
            Internal(Internal),
        }

        impl MfaError {
            fn refusal(&self) -> &dyn Refusal {
                match self {
                    $(Self::$name(refusal) => refusal,)*
                    Self::RateLimited(refusal) => refusal,
                    Self::FactorLocked(refusal) => refusal,
                    Self::Refused(refusal) => refusal,
                    Self::InvalidInput(refusal) => refusal,
                    Self::InvalidClientMetadata(refusal) => refusal,
                    Self::Unavailable(refusal) => refusal,
                    Self::Internal(refusal) => refusal,
                }
            }
        }
    };
}

refusals! {
    /// The code or assertion is wrong, malformed, outside its window or already used.
    InvalidCode => UNAUTHORIZED, "invalid_mfa_code", "the code is invalid";
    /// The `mfa_token` is unknown, expired, used, or exhausted by wrong codes.
    InvalidMfaToken => UNAUTHORIZED, "invalid_mfa_token", "the mfa_token is invalid or expired; log in again";
    /// The username or password is wrong.
    InvalidCredentials => UNAUTHORIZED, "invalid_grant", "invalid username or password";
    /// The authorization code is unknown, expired, used, or does not match its client, redirect
    /// URI or PKCE verifier.
    InvalidGrant => BAD_REQUEST, "invalid_grant", "the code is invalid, expired, used, or was issued to another client, redirect_uri or verifier";
    /// A ceremony (a registration, a passwordless login) is unknown, expired, used, or another
    /// user's.
    InvalidCeremony => BAD_REQUEST, "invalid_ceremony", "the ceremony is unknown, expired or already used; start again";
    /// The recovery code is unknown, expired or used, or the password given with it is wrong.
    InvalidRecoveryCode => BAD_REQUEST, "invalid_token", "the recovery token is invalid, expired or used, or the password is wrong; request a new one";
    /// The user has no usable second factor (of this kind).
    NotEnrolled => BAD_REQUEST, "not_enrolled", "no second factor of this kind is enrolled";
    /// A signed-in user asked for step-up without any second factor.
    MfaNotEnrolled => BAD_REQUEST, "mfa_not_enrolled", "enroll a second factor first";
    /// The user already has an active factor of this one-per-user kind.
    AlreadyEnrolled => CONFLICT, "already_enrolled", "this factor is already enrolled; remove it first";
    /// There is no pending enrollment of this kind to finish.
    NoPendingEnrollment => BAD_REQUEST, "no_pending_enrollment", "start the enrollment first";
    /// No such factor kind is registered.
    UnknownFactor => NOT_FOUND, "unknown_factor", "no such kind of factor";
    /// The factor does not do this (a kind that is not enrolled on its own, or has nothing to
    /// prepare).
    Unsupported => BAD_REQUEST, "unsupported", "this kind of factor does not support this operation";
    /// The user has no such credential.
    NoSuchCredential => NOT_FOUND, "not_found", "no such factor";
    /// The label is empty, too long or holds control characters.
    InvalidLabel => BAD_REQUEST, "invalid_request", "the label must have 1 to 64 characters and no control characters";
    /// Another change to the user's factors is running (`409`); try again when it is done.
    FactorChangeInProgress => CONFLICT, "factor_change_in_progress", "another change to your factors is in progress; try again when it is done";
    /// Another request is preparing this MFA step's challenge at the same moment.
    ChallengeInProgress => CONFLICT, "challenge_in_progress", "this challenge is being prepared by another request; try again";
    /// The token's user was deleted, recovered or reset after it was issued, or the account no
    /// longer exists.
    TokenRevoked => UNAUTHORIZED, "invalid_token", "the token has been revoked";
    /// A redirect URI of a client registration is not an `https` URL, or an `http` URL of a
    /// loopback address, without a fragment (RFC 7591 §3.2.2).
    InvalidRedirectUri => BAD_REQUEST, "invalid_redirect_uri", "every redirect_uri must be an https URL, or an http URL of a loopback address, without a fragment";
    /// The client is unknown, or its registration was revoked (RFC 6749 §5.2).
    InvalidClient => UNAUTHORIZED, "invalid_client", "the client is unknown or its registration was revoked";
    /// The `resource` is not one this server issues tokens for, or not the one granted
    /// (RFC 8707 §2).
    InvalidTarget => BAD_REQUEST, "invalid_target", "the resource is not one this server issues tokens for, or not the one granted";
    /// The `scope` is unknown, or wider than the one granted (RFC 6749 §5.2).
    InvalidScope => BAD_REQUEST, "invalid_scope", "the scope is unknown or wider than the one granted";
    /// The sign-in page's authorization request is unknown or expired.
    UnknownAuthorizationRequest => BAD_REQUEST, "invalid_request", "the sign-in page has expired; start again from the application";
    /// A token exchange's `subject_token` is not an access token of an identity provider this
    /// server exchanges for (RFC 8693 §2.2.2 answers such a token with `invalid_request`).
    InvalidSubjectToken => BAD_REQUEST, "invalid_request", "the subject_token is not a valid access token of an identity provider this server exchanges tokens for";
    /// A transaction step-up names no live transaction of this user.
    UnknownTransaction => BAD_REQUEST, "invalid_request", "the transaction is unknown, expired or another user's; send the operation again";
    /// Dynamic client registration is not enabled on this server.
    RegistrationDisabled => FORBIDDEN, "access_denied", "dynamic client registration is not enabled";
}

/// Client metadata of a registration that this server refuses (RFC 7591 §3.2.2
/// `invalid_client_metadata`), naming the field from the server's own rules, never echoing the
/// client's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidClientMetadata {
    /// What is wrong, e.g. `token_endpoint_auth_method must be none`.
    pub message: Cow<'static, str>,
}

impl InvalidClientMetadata {
    /// A refusal saying `message`.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl Refusal for InvalidClientMetadata {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    fn code(&self) -> &str {
        "invalid_client_metadata"
    }
    fn description(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.message)
    }
}

impl From<InvalidClientMetadata> for MfaError {
    fn from(refusal: InvalidClientMetadata) -> Self {
        Self::InvalidClientMetadata(refusal)
    }
}

/// Too many attempts or sends: wait `retry_after` (`429 too_many_requests`, `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// How long to wait.
    pub retry_after: Duration,
}

impl Refusal for RateLimited {
    fn status(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }
    fn code(&self) -> &str {
        "too_many_requests"
    }
    fn description(&self) -> Cow<'_, str> {
        Cow::Borrowed("too many attempts; retry later")
    }
}

/// A factor failed [`AttemptPolicy::lock_after`](crate::AttemptPolicy::lock_after) times in a
/// row and stays locked until a recovery or an administrator's reset (`403 factor_locked`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorLocked {
    /// The locked factor's kind.
    pub kind: String,
}

impl Refusal for FactorLocked {
    fn status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }
    fn code(&self) -> &str {
        "factor_locked"
    }
    fn description(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "the {} factor is locked after too many failures; recover the account or ask an administrator",
            self.kind
        ))
    }
}

/// A refusal a factor defines for itself (its policy: a country not served, a destination not
/// allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRefusal {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable code.
    pub code: Cow<'static, str>,
    /// The fixed description (never the client's input).
    pub description: Cow<'static, str>,
}

impl PolicyRefusal {
    /// A `400` refusal with `code` and `description`.
    pub fn bad_request(
        code: impl Into<Cow<'static, str>>,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: code.into(),
            description: description.into(),
        }
    }
}

impl PolicyRefusal {
    /// `{kind}_needs_another_factor`: a restricted factor (SMS, email) would be, or would be
    /// left, the user's only factor, which the policy refuses (`400` when adding it, `409` when
    /// removing the other factor).
    pub fn needs_another_factor(kind: &str, status: StatusCode) -> Self {
        let description = if status == StatusCode::CONFLICT {
            "this would leave a restricted factor (SMS, email) as your only factor: add an \
             authenticator app or passkey first, or remove the restricted factor first"
        } else {
            "this factor can only be added beside another one (an authenticator app or a passkey)"
        };
        Self {
            status,
            code: Cow::Owned(format!("{kind}_needs_another_factor")),
            description: Cow::Borrowed(description),
        }
    }
}

impl Refusal for PolicyRefusal {
    fn status(&self) -> StatusCode {
        self.status
    }
    fn code(&self) -> &str {
        &self.code
    }
    fn description(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.description)
    }
}

/// The input lacks a field or has one of the wrong shape: `400 invalid_request`, naming the field
/// from the server's own schema (`missing field code`), never the client's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    /// What is wrong, e.g. `missing field registration_token`.
    pub message: Cow<'static, str>,
}

impl InvalidInput {
    /// An invalid-input refusal saying `message`.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl Refusal for InvalidInput {
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
    fn code(&self) -> &str {
        "invalid_request"
    }
    fn description(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.message)
    }
}

/// A store, provider or pool could not answer: the operation fails closed (`503`, one body for
/// every cause). The cause is kept for the log.
#[derive(Debug)]
pub struct Unavailable {
    /// What failed.
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl Unavailable {
    /// Unavailable because of `source`.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl Refusal for Unavailable {
    fn status(&self) -> StatusCode {
        StatusCode::SERVICE_UNAVAILABLE
    }
    fn code(&self) -> &str {
        UNAVAILABLE_CODE
    }
    fn description(&self) -> Cow<'_, str> {
        Cow::Borrowed(UNAVAILABLE_DESCRIPTION)
    }
}

/// A stored record could not be read back, or a secret could not be sealed (`500`). The cause is
/// kept for the log, never shown.
#[derive(Debug)]
pub struct Internal {
    /// What went wrong (for the log).
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl Internal {
    /// An internal error described by `message`.
    pub fn new(message: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: message.into(),
        }
    }
}

impl Refusal for Internal {
    fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    fn code(&self) -> &str {
        "server_error"
    }
    fn description(&self) -> Cow<'_, str> {
        Cow::Borrowed("an internal error occurred")
    }
}

impl MfaError {
    /// `429` after `retry_after`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::RateLimited(RateLimited { retry_after })
    }

    /// `500` for `message` (logged, never shown).
    pub fn internal(message: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(Internal::new(message))
    }

    /// `400 invalid_request` saying `message`.
    pub fn invalid_input(message: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidInput(InvalidInput::new(message))
    }

    /// The HTTP status to answer.
    pub fn status(&self) -> StatusCode {
        self.refusal().status()
    }

    /// The stable `error` code to answer.
    pub fn code(&self) -> &str {
        self.refusal().code()
    }

    /// The `error_description` to answer.
    pub fn description(&self) -> Cow<'_, str> {
        self.refusal().description()
    }

    /// How long to wait before retrying (`Retry-After`), for [`MfaError::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(limited) => Some(limited.retry_after),
            _ => None,
        }
    }

    /// Whether this answers a wrong guess (a password, a code, an `mfa_token`, an authorization
    /// or recovery code, a ceremony): those count against the client address's failure budget.
    pub fn is_failed_guess(&self) -> bool {
        matches!(
            self,
            Self::InvalidCode(_)
                | Self::InvalidMfaToken(_)
                | Self::InvalidCredentials(_)
                | Self::InvalidGrant(_)
                | Self::InvalidCeremony(_)
                | Self::InvalidRecoveryCode(_)
        )
    }
}

impl fmt::Display for MfaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(unavailable) => write!(f, "unavailable: {}", unavailable.source),
            Self::Internal(internal) => write!(f, "internal error: {}", internal.source),
            other => f.write_str(&other.description()),
        }
    }
}

impl std::error::Error for MfaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Unavailable(unavailable) => Some(unavailable.source.as_ref()),
            Self::Internal(internal) => Some(internal.source.as_ref()),
            _ => None,
        }
    }
}

impl From<StoreError> for MfaError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Corrupt(_) => Self::internal(error),
            other => Self::Unavailable(Unavailable::new(other)),
        }
    }
}

impl From<RateLimited> for MfaError {
    fn from(refusal: RateLimited) -> Self {
        Self::RateLimited(refusal)
    }
}

impl From<FactorLocked> for MfaError {
    fn from(refusal: FactorLocked) -> Self {
        Self::FactorLocked(refusal)
    }
}

impl From<PolicyRefusal> for MfaError {
    fn from(refusal: PolicyRefusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<InvalidInput> for MfaError {
    fn from(refusal: InvalidInput) -> Self {
        Self::InvalidInput(refusal)
    }
}

impl From<Unavailable> for MfaError {
    fn from(refusal: Unavailable) -> Self {
        Self::Unavailable(refusal)
    }
}

impl From<Internal> for MfaError {
    fn from(refusal: Internal) -> Self {
        Self::Internal(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_answers_its_own_status_and_code() {
        let error: MfaError = InvalidCode.into();
        assert_eq!(error.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error.code(), "invalid_mfa_code");
        assert!(error.is_failed_guess());
        let error = MfaError::rate_limited(Duration::from_secs(7));
        assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        assert!(!error.is_failed_guess());
    }

    #[test]
    fn an_unavailable_store_keeps_its_cause_and_answers_one_body() {
        let error: MfaError = StoreError::Unavailable("connection refused".into()).into();
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code(), UNAVAILABLE_CODE);
        assert_eq!(error.description(), UNAVAILABLE_DESCRIPTION);
        let cause = std::error::Error::source(&error).map(ToString::to_string);
        assert!(cause.is_some_and(|cause| cause.contains("connection refused")));
    }

    #[test]
    fn a_corrupt_record_is_internal() {
        let error: MfaError = StoreError::Corrupt("bad row".into()).into();
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.code(), "server_error");
    }
}
