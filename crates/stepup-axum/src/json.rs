//! JSON in and out: every bad body is a `400` JSON error, every failure `{"error", "error_description"}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
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
}

impl ApiError {
    /// An error with `status`, `code` and `description`.
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
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
        (self.status, Json(body)).into_response()
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
