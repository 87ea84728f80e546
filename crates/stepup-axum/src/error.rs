//! [`ApiError`]: every refusal of the drop-in routes, answered as `{"error", "error_description"}`
//! JSON. An engine refusal carries its own status and code ([`MfaError`]), so this is one
//! conversion, not a table; a `5xx` is logged with its cause, and every `503` has one body.

use std::borrow::Cow;

use axum::Json;
use axum::http::header::{CACHE_CONTROL, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use stepup_core::error_body::{
    UNAVAILABLE_CODE, UNAVAILABLE_DESCRIPTION, error_object, retry_after_seconds,
};
use stepup_core::{AuthRejection, TokenError};
use stepup_mfa::MfaError;

/// An error answer: status plus `{"error": code, "error_description": text}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`invalid_request`, `invalid_grant`, …).
    pub code: Cow<'static, str>,
    /// Human-readable description; never contains a secret or the client's input.
    pub description: Cow<'static, str>,
    /// Seconds to wait, sent as `Retry-After` (with `429`).
    pub retry_after: Option<u64>,
    /// An RFC 6750 / RFC 9470 rejection answered as itself (its `WWW-Authenticate` and body);
    /// boxed, so every `Result<_, ApiError>` stays small.
    pub rejection: Option<Box<AuthRejection>>,
}

impl ApiError {
    /// An error with `status`, `code` and `description`.
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            description: description.into(),
            retry_after: None,
            rejection: None,
        }
    }

    /// `400 invalid_request`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// `404 not_found`.
    pub fn not_found(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", description)
    }

    /// `401`, asking for a bearer token (`WWW-Authenticate: Bearer`).
    pub fn bearer_required() -> Self {
        AuthRejection::MissingToken.into()
    }

    /// The one `503`: a store, provider or pool cannot answer, so stepup fails closed.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            UNAVAILABLE_CODE,
            UNAVAILABLE_DESCRIPTION,
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match &self.rejection {
            Some(rejection) => rejection.to_response().into_response(),
            None => {
                let body = error_object(&self.code, &self.description);
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
            rejection: Some(Box::new(rejection.clone())),
            ..Self::new(
                rejection.status(),
                rejection.error_code().to_owned(),
                rejection.description().to_owned(),
            )
        }
    }
}

/// Every engine refusal answers its own status, code and description; a revoked token is the
/// RFC 6750 `invalid_token` challenge; a `5xx` is logged with its cause.
impl From<MfaError> for ApiError {
    fn from(error: MfaError) -> Self {
        if let MfaError::TokenRevoked(_) = error {
            return AuthRejection::InvalidToken(TokenError::Revoked).into();
        }
        let status = error.status();
        if status.is_server_error() {
            match std::error::Error::source(&error) {
                Some(cause) => tracing::error!(%error, %cause, "request failed"),
                None => tracing::error!(%error, "request failed"),
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            return Self::unavailable();
        }
        Self {
            retry_after: error.retry_after().map(retry_after_seconds),
            ..Self::new(
                status,
                error.code().to_owned(),
                error.description().into_owned(),
            )
        }
    }
}

impl From<stepup_store::StoreError> for ApiError {
    fn from(error: stepup_store::StoreError) -> Self {
        MfaError::from(error).into()
    }
}

impl From<stepup_mfa::PasswordCheckFailed> for ApiError {
    fn from(error: stepup_mfa::PasswordCheckFailed) -> Self {
        MfaError::from(error).into()
    }
}
