//! The revocation check for the application's own routes: a token whose user was deleted,
//! recovered or reset after it was issued is refused with `401 invalid_token`, "the token has been
//! revoked", even though its signature and expiry are good. The layer asks its
//! [`RevocationCheck`] policy (stepup's engine, the same rule its own routes use); put
//! [`RejectRevokedLayer`] inside `authenticate()` on the routes of yours that must not outlive an
//! account.
//!
//! If the policy cannot answer, the request is refused with `503`: it fails closed. Requests
//! without an [`AuthContext`] pass through (the requirement layers answer them).
//!
//! ```
//! use axum::{Router, routing::get};
//! use stepup_core::AuthContext;
//! use stepup_core::policy::{Revoked, RevocationCheck, async_trait};
//! use stepup_core::token::{JwtIssuer, SigningKey};
//! use stepup_tower::{RejectRevokedLayer, RequireMfa, authenticate};
//!
//! /// Tokens issued before second 1_800_000_000 are void (an application's own rule).
//! struct IssuedAfter(u64);
//!
//! #[async_trait]
//! impl RevocationCheck for IssuedAfter {
//!     async fn check(&self, caller: &AuthContext) -> Result<(), Revoked> {
//!         match caller.issued_at() {
//!             Some(iat) if iat >= self.0 => Ok(()),
//!             _ => Err(Revoked::Revoked),
//!         }
//!     }
//! }
//!
//! let issuer = JwtIssuer::new(SigningKey::hs256(b"an example secret of at least 32 bytes")?);
//! let app: Router = Router::new()
//!     .route("/api/transfer", get(|| async { "sent" }).layer(RequireMfa))
//!     .layer(RejectRevokedLayer::new(IssuedAfter(1_800_000_000)))
//!     .layer(authenticate(issuer.verifier().build()?));
//! # Ok::<(), stepup_core::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
pub use stepup_core::policy::{RevocationCheck, Revoked};
use stepup_core::{AuthContext, AuthRejection, TokenError};
use tower_layer::Layer;
use tower_service::Service;

use crate::response::{ResponseBody, ResponseFuture};

/// The answer of a policy that must be awaited (boxed: the policy's future, then the inner
/// service's).
type Awaited<B, E> = Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

pin_project! {
    /// Response future of [`RejectRevoked`]: the inner service's answer or the refusal, made at
    /// once when the policy answered from memory ([`RevocationCheck::check_now`]), else after
    /// its [`check`](RevocationCheck::check).
    pub struct RejectRevokedFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Judged { #[pin] future: ResponseFuture<F> },
        Awaiting { future: Awaited<B, E> },
    }
}

impl<F, B, E> Future for RejectRevokedFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Judged { future } => future.poll(cx),
            KindProj::Awaiting { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for RejectRevokedFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectRevokedFuture")
            .finish_non_exhaustive()
    }
}

/// Layer that applies [`RejectRevoked`]; see the [module docs](self).
#[derive(Clone)]
pub struct RejectRevokedLayer {
    policy: Arc<dyn RevocationCheck>,
}

impl RejectRevokedLayer {
    /// Asks `policy` whether each verified token still stands.
    pub fn new(policy: impl RevocationCheck) -> Self {
        Self::shared(Arc::new(policy))
    }

    /// [`new`](Self::new) with a policy shared with other layers.
    pub fn shared(policy: Arc<dyn RevocationCheck>) -> Self {
        Self { policy }
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
            policy: self.policy.clone(),
        }
    }
}

/// Middleware refusing revoked tokens; see the [module docs](self).
#[derive(Clone)]
pub struct RejectRevoked<S> {
    inner: S,
    policy: Arc<dyn RevocationCheck>,
}

impl<S> fmt::Debug for RejectRevoked<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectRevoked").finish_non_exhaustive()
    }
}

/// The refusal of a revoked token, as HTTP or as a gRPC status (by the request).
fn revoked<F>(request_headers: &http::HeaderMap) -> ResponseFuture<F> {
    let grpc = stepup_core::grpc::is_grpc_request(request_headers);
    ResponseFuture::rejected(AuthRejection::InvalidToken(TokenError::Revoked), grpc)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RejectRevoked<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = RejectRevokedFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let verdict = match request.extensions().get::<AuthContext>() {
            None => Some(Ok(())),
            Some(caller) => self.policy.check_now(caller),
        };
        let judged = |future| RejectRevokedFuture {
            kind: Kind::Judged { future },
        };
        match verdict {
            Some(Ok(())) => return judged(ResponseFuture::inner(self.inner.call(request))),
            Some(Err(Revoked::Revoked)) => return judged(revoked(request.headers())),
            // Unavailable from memory: `check` decides (and answers 503 if it cannot either).
            Some(Err(_)) | None => {}
        }
        // The readied service is the one called; the clone waits for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let policy = self.policy.clone();
        let caller = request.extensions().get::<AuthContext>().cloned();
        let future: Awaited<ResBody, S::Error> = Box::pin(async move {
            if let Some(caller) = caller {
                match policy.check(&caller).await {
                    Ok(()) => {}
                    Err(Revoked::Revoked) => return revoked::<S::Future>(request.headers()).await,
                    Err(_) => {
                        tracing::warn!("revocation check unavailable; refusing");
                        let grpc = stepup_core::grpc::is_grpc_request(request.headers());
                        return Ok(crate::response::temporarily_unavailable(grpc));
                    }
                }
            }
            ResponseFuture::inner(inner.call(request)).await
        });
        RejectRevokedFuture {
            kind: Kind::Awaiting { future },
        }
    }
}
