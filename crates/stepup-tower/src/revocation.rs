//! Opt-in revocation check for the application's own routes: a token issued before its user's
//! revocation mark (set by account deletion, recovery and factor resets) is refused with
//! `401 invalid_token`, "the token has been revoked", even though its signature and expiry are
//! good. stepup's own routes always check it; put [`RejectRevokedLayer`] inside
//! `authenticate()` on the routes of yours that must not outlive an account.
//!
//! It costs one read of the durable store per authenticated request (see
//! `docs/benchmarks.md`). If the store fails, the request is refused with `503`: it fails
//! closed. Requests without an [`AuthContext`] pass through (the requirement layers answer them).
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use stepup_core::token::{JwtIssuer, SigningKey};
//! use stepup_store::MemoryStore;
//! use stepup_tower::{RejectRevokedLayer, RequireMfa, authenticate};
//!
//! let issuer = JwtIssuer::new(SigningKey::hs256(b"an example secret of at least 32 bytes")?);
//! let store = Arc::new(MemoryStore::new());
//! let app: Router = Router::new()
//!     .route("/api/transfer", get(|| async { "sent" }).layer(RequireMfa))
//!     .layer(RejectRevokedLayer::new(store))
//!     .layer(authenticate(issuer.verifier().build()?));
//! # Ok::<(), stepup_core::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use stepup_core::{AuthContext, AuthRejection, TokenError};
use stepup_store::FactorStore;
use tower_layer::Layer;
use tower_service::Service;

use crate::response::ResponseBody;

/// Response future of [`RejectRevoked`]: boxed, as it awaits the store before the inner service.
pub type RejectRevokedFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static>>;

/// Layer that applies [`RejectRevoked`]; see the [module docs](self).
#[derive(Clone)]
pub struct RejectRevokedLayer {
    factors: Arc<dyn FactorStore>,
}

impl RejectRevokedLayer {
    /// Checks tokens against the revocation marks kept in `factors`.
    pub fn new(factors: Arc<dyn FactorStore>) -> Self {
        Self { factors }
    }
}

impl fmt::Debug for RejectRevokedLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectRevokedLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RejectRevokedLayer {
    type Service = RejectRevoked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RejectRevoked {
            inner,
            factors: self.factors.clone(),
        }
    }
}

/// Middleware refusing revoked tokens; see the [module docs](self).
#[derive(Clone)]
pub struct RejectRevoked<S> {
    inner: S,
    factors: Arc<dyn FactorStore>,
}

impl<S> fmt::Debug for RejectRevoked<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectRevoked").finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RejectRevoked<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = RejectRevokedFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The readied service is the one called; the clone waits for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let factors = self.factors.clone();
        let caller = request.extensions().get::<AuthContext>().cloned();
        Box::pin(async move {
            if let Some(caller) = caller {
                match factors.tokens_revoked_before(caller.subject()).await {
                    // A token without `iat` predates any mark.
                    Ok(Some(mark)) if caller.issued_at().unwrap_or(0) < mark => {
                        let rejection = AuthRejection::InvalidToken(TokenError::Revoked);
                        return Ok(rejection.to_response().map(ResponseBody::from_rejection));
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "revocation check failed; refusing");
                        return Ok(unavailable());
                    }
                }
            }
            inner
                .call(request)
                .await
                .map(|response| response.map(ResponseBody::from_inner))
        })
    }
}

fn unavailable<B>() -> Response<ResponseBody<B>> {
    let body = stepup_core::error_body::error_body(
        "temporarily_unavailable",
        "the service cannot verify this now; try again shortly",
    );
    let mut response = Response::new(ResponseBody::from_rejection(body));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
