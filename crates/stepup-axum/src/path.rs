//! [`Path`]: path parameters whose rejections are JSON [`ApiError`]s (axum's own answer a
//! plain-text `400`, e.g. for a segment that is not UTF-8).

use axum::extract::{FromRequestParts, rejection::PathRejection};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Path parameters, refused with `400 invalid_request` JSON when they do not decode.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::invalid_request(
                "a path segment is not valid UTF-8 or has the wrong shape",
            )),
            Err(_) => Err(ApiError::server_error()),
        }
    }
}
