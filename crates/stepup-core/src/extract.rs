//! axum extractors: `AuthContext` (401 without a verified token) and `Option<AuthContext>`.
//!
//! They live here rather than in a separate axum crate because Rust's orphan rule lets a trait be
//! implemented for a type only in the trait's crate or the type's.
//!
//! ```
//! use axum_core::response::IntoResponse;
//! use stepup_core::AuthContext;
//!
//! async fn me(caller: AuthContext) -> impl IntoResponse {
//!     format!("hello {}", caller.subject())
//! }
//!
//! async fn maybe(caller: Option<AuthContext>) -> impl IntoResponse {
//!     caller.map_or("anonymous".to_owned(), |c| c.subject().to_owned())
//! }
//! ```

use std::convert::Infallible;

use axum_core::body::Body;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::{AuthContext, AuthRejection};

impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthContext>()
            .cloned()
            .ok_or(AuthRejection::MissingToken)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthContext {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuthContext>().cloned())
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        self.to_response().map(Body::from)
    }
}
