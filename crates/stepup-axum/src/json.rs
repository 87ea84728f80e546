//! JSON in and out: every bad body is a `400` JSON error, every failure `{"error", "error_description"}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// An error answer: status plus `{"error": code, "error_description": text}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code (`invalid_request`, `invalid_grant`, …).
    pub code: &'static str,
    /// Human-readable description; never contains a secret.
    pub description: String,
    /// Seconds to wait, sent as `Retry-After` (with `429`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `description`.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    /// `429 too_many_requests` with `Retry-After`.
    pub fn too_many_requests(retry_after: std::time::Duration) -> Self {
        Self {
            retry_after: Some(retry_after.as_secs().max(1)),
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
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A JSON body whose rejections are [`ApiError`]s (`400`), not axum's plain-text ones.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::invalid_request(match &rejection {
                JsonRejection::MissingJsonContentType(_) => {
                    "expected a JSON body (Content-Type: application/json)".to_owned()
                }
                JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".to_owned(),
                other => other.body_text(),
            })),
        }
    }
}
