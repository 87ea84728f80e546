//! Per-route step-up: [`RequireAcr`] demands a level, a freshness and methods; [`RequireMfa`] is
//! the zero-config `mfa` requirement. A caller who falls short gets the RFC 9470 challenge:
//!
//! ```text
//! HTTP/1.1 401 Unauthorized
//! WWW-Authenticate: Bearer error="insufficient_user_authentication",
//!   error_description="a stronger authentication level is required", acr_values="mfa", max_age=300
//! Content-Type: application/json
//!
//! {"error":"insufficient_user_authentication","error_description":"…","acr_values":"mfa","max_age":300}
//! ```
//!
//! A request without an [`AuthContext`] (no `authenticate()` layer outside, or no token) gets
//! `401 WWW-Authenticate: Bearer`. A gRPC call gets the same refusals as the status
//! `UNAUTHENTICATED` (see [`stepup_core::grpc`]); `authenticate()`'s
//! [`with_resource_metadata`](crate::AuthenticateLayer::with_resource_metadata) adds
//! `resource_metadata="…"` to these challenges.
//!
//! ```
//! use std::time::Duration;
//! use axum::{Router, routing::{delete, post}};
//! use stepup_tower::{RequireAcr, RequireMfa};
//!
//! let app: Router = Router::new()
//!     .route("/api/account", delete(|| async { "gone" }).layer(RequireMfa))
//!     .route(
//!         "/api/admin",
//!         post(|| async { "ok" })
//!             .layer(RequireAcr::level("phr").max_age(Duration::from_secs(300))),
//!     );
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use stepup_core::grpc::is_grpc_request;
use stepup_core::{AcrRequirement, AuthContext, AuthRejection};
use tower_layer::Layer;
use tower_service::Service;

pub use crate::response::{ResponseBody, ResponseFuture};

/// Layer requiring a minimum `acr`, optionally a `max_age` and `amr` values.
#[derive(Debug, Clone)]
pub struct RequireAcr {
    requirement: Arc<AcrRequirement>,
}

impl RequireAcr {
    /// Requires at least `level` (under the verifier's level order).
    pub fn level(level: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        Self::from_requirement(AcrRequirement::level(level))
    }

    /// Wraps an [`AcrRequirement`] built elsewhere.
    pub fn from_requirement(requirement: AcrRequirement) -> Self {
        Self {
            requirement: Arc::new(requirement),
        }
    }

    /// Also requires the authentication to be at most `max_age` old.
    pub fn max_age(self, max_age: Duration) -> Self {
        self.map(|requirement| requirement.max_age(max_age))
    }

    /// Also requires every one of these `amr` values.
    pub fn amr<I, V>(self, values: I) -> Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        self.map(|requirement| requirement.amr(values))
    }

    /// The requirement this layer enforces.
    pub fn requirement(&self) -> &AcrRequirement {
        &self.requirement
    }

    fn map(self, change: impl FnOnce(AcrRequirement) -> AcrRequirement) -> Self {
        Self::from_requirement(change(Arc::unwrap_or_clone(self.requirement)))
    }
}

impl<S> Layer<S> for RequireAcr {
    type Service = RequireAcrService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAcrService {
            inner,
            requirement: self.requirement.clone(),
        }
    }
}

/// Requires `acr` `mfa` or higher: `.layer(RequireMfa)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequireMfa;

impl RequireMfa {
    /// `mfa` no older than `max_age`.
    pub fn max_age(self, max_age: Duration) -> RequireAcr {
        RequireAcr::from(self).max_age(max_age)
    }
}

impl From<RequireMfa> for RequireAcr {
    fn from(_: RequireMfa) -> Self {
        RequireAcr::from_requirement(AcrRequirement::mfa())
    }
}

impl<S> Layer<S> for RequireMfa {
    type Service = RequireAcrService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAcr::from(*self).layer(inner)
    }
}

/// Middleware enforcing an [`AcrRequirement`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RequireAcrService<S> {
    inner: S,
    requirement: Arc<AcrRequirement>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireAcrService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let verdict = match request.extensions().get::<AuthContext>() {
            None => Err(AuthRejection::MissingToken),
            Some(context) => self
                .requirement
                .check(context)
                .map_err(AuthRejection::StepUpRequired),
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(rejection) => {
                tracing::debug!(reason = rejection.description(), "step-up required");
                ResponseFuture::rejected(rejection, is_grpc_request(request.headers()))
            }
        }
    }
}
