//! [`ApiError`]: every failure of the drop-in routes, answered as `{"error", "error_description"}`
//! JSON. Engine and store errors convert with `From`, so each is mapped in one place.

use axum::Json;
use axum::http::header::{CACHE_CONTROL, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use stepup_core::AuthRejection;
use stepup_core::error_body::{error_object, retry_after_seconds};
use stepup_mfa::MfaError;
use stepup_store::StoreError;

use crate::stepup::PasswordCheckFailed;

/// An error answer: status plus `{"error": code, "error_description": text}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`invalid_request`, `invalid_grant`, …).
    pub code: &'static str,
    /// Human-readable description; never contains a secret or the client's input.
    pub description: String,
    /// Seconds to wait, sent as `Retry-After` (with `429`).
    pub retry_after: Option<u64>,
    /// An RFC 6750 / RFC 9470 rejection answered as itself (its `WWW-Authenticate` and body).
    pub rejection: Option<AuthRejection>,
}

impl ApiError {
    /// An error with `status`, `code` and `description`.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
            rejection: None,
        }
    }

    /// `429 too_many_requests` with `Retry-After` (seconds rounded up).
    pub fn too_many_requests(retry_after: std::time::Duration) -> Self {
        Self {
            retry_after: Some(retry_after_seconds(retry_after)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "too many attempts; retry later",
            )
        }
    }

    /// `400 invalid_request`.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// `401`, asking for a bearer token (`WWW-Authenticate: Bearer`).
    pub fn bearer_required() -> Self {
        AuthRejection::MissingToken.into()
    }

    /// `503 temporarily_unavailable`: the store (or a dependency) cannot answer; fail closed.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the service cannot verify this now; try again shortly",
        )
    }

    /// `500 server_error`.
    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "an internal error occurred",
        )
    }

    /// Whether this answers a wrong guess (a password, a code, an `mfa_token`, an authorization
    /// code): those count against the client address's failure budget.
    pub fn is_failed_guess(&self) -> bool {
        matches!(
            self.code,
            "invalid_grant"
                | "invalid_mfa_code"
                | "invalid_mfa_token"
                | "invalid_ceremony"
                | "invalid_token"
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match &self.rejection {
            Some(rejection) => rejection.to_response().into_response(),
            None => {
                let body = error_object(self.code, &self.description);
                (self.status, Json(body)).into_response()
            }
        };
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(seconds) = self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A bearer-token or step-up rejection, answered exactly as the tower layers answer it.
impl From<AuthRejection> for ApiError {
    fn from(rejection: AuthRejection) -> Self {
        Self {
            rejection: Some(rejection.clone()),
            ..Self::new(
                rejection.status(),
                rejection.error_code(),
                rejection.description(),
            )
        }
    }
}

/// One mapping from engine errors to HTTP, so every route answers alike.
impl From<MfaError> for ApiError {
    fn from(error: MfaError) -> Self {
        match error {
            MfaError::InvalidCode => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_mfa_code",
                "the code is invalid",
            ),
            MfaError::InvalidMfaToken => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_mfa_token",
                "the mfa_token is invalid or expired; log in again",
            ),
            MfaError::InvalidGrant => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the code is invalid, expired, used, or was issued to another client, redirect_uri or verifier",
            ),
            MfaError::NotEnrolled => Self::new(
                StatusCode::BAD_REQUEST,
                "not_enrolled",
                "no second factor is enrolled",
            ),
            MfaError::AlreadyEnrolled => Self::new(
                StatusCode::CONFLICT,
                "already_enrolled",
                "an authenticator app is already enrolled; remove it first",
            ),
            MfaError::NoPendingEnrollment => Self::new(
                StatusCode::BAD_REQUEST,
                "no_pending_enrollment",
                "start with POST /api/mfa/setup",
            ),
            MfaError::RateLimited { retry_after } => Self::too_many_requests(retry_after),
            MfaError::FactorLocked { method } => Self::new(
                StatusCode::FORBIDDEN,
                "factor_locked",
                format!(
                    "the {} factor is locked after too many failures; recover the account or ask an administrator",
                    method.name()
                ),
            ),
            MfaError::WebauthnNotConfigured => Self::new(
                StatusCode::NOT_FOUND,
                "passkeys_not_configured",
                "passkeys are not configured",
            ),
            MfaError::InvalidCeremony => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_ceremony",
                "the ceremony is unknown, expired or already used; start again",
            ),
            MfaError::CredentialExists => Self::new(
                StatusCode::CONFLICT,
                "credential_exists",
                "this passkey or security key is already registered",
            ),
            MfaError::InvalidLabel => Self::invalid_request(
                "the label must have 1 to 64 characters and no control characters",
            ),
            MfaError::SmsNotConfigured => Self::new(
                StatusCode::NOT_FOUND,
                "sms_not_configured",
                "SMS codes are not configured",
            ),
            MfaError::InvalidPhoneNumber => Self::invalid_request(
                "the phone number must be in E.164 form (+ and 8 to 15 digits) and able to receive SMS",
            ),
            MfaError::SmsRefused { reason } => Self::new(
                StatusCode::BAD_REQUEST,
                reason,
                match reason {
                    "country_not_allowed" => "SMS to this country is not offered",
                    "sms_needs_another_factor" => {
                        "SMS can only be added beside another factor (an authenticator app or a passkey)"
                    }
                    _ => "the SMS was refused",
                },
            ),
            MfaError::SmsWouldBeAlone => Self::new(
                StatusCode::CONFLICT,
                "sms_needs_another_factor",
                "SMS cannot be your only factor: add another authenticator app or passkey first, or remove SMS first",
            ),
            MfaError::FactorChangeInProgress => Self::new(
                StatusCode::CONFLICT,
                "factor_change_in_progress",
                "another change to your factors is in progress; try again when it is done",
            ),
            MfaError::SmsUnavailable => {
                tracing::warn!("SMS provider unavailable");
                Self::unavailable()
            }
            MfaError::InvalidRecoveryCode => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_token",
                "the recovery token is invalid, expired or used, or the password is wrong; request a new one",
            ),
            MfaError::MailNotConfigured => {
                tracing::error!("recovery needs a mailer");
                Self::unavailable()
            }
            MfaError::Busy => {
                tracing::warn!("slow-hash pool saturated");
                Self::unavailable()
            }
            MfaError::Unavailable(error) => error.into(),
            other => {
                tracing::error!(error = %other, "internal error");
                Self::server_error()
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "store unavailable");
        Self::unavailable()
    }
}

impl From<PasswordCheckFailed> for ApiError {
    fn from(_: PasswordCheckFailed) -> Self {
        tracing::error!("password check unavailable");
        Self::unavailable()
    }
}
