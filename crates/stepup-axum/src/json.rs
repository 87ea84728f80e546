//! [`JsonBody`]: a JSON request body whose rejections are [`ApiError`]s. The messages are fixed:
//! they never echo the client's input or the server's type names.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body: `400` JSON when it is not JSON or lacks the expected fields, `413` JSON when it
/// is too large.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::MissingJsonContentType(_) => ApiError::invalid_request(
                    "expected a JSON body (Content-Type: application/json)",
                ),
                JsonRejection::JsonSyntaxError(_) => {
                    ApiError::invalid_request("the body is not valid JSON")
                }
                JsonRejection::JsonDataError(_) => ApiError::invalid_request(
                    "the body lacks a required field or has one of the wrong type",
                ),
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request",
                    "the body is too large",
                ),
                _ => ApiError::invalid_request("the body could not be read"),
            }),
        }
    }
}
