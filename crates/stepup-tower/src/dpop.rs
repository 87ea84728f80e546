//! `authenticate()` with sender-constrained tokens (DPoP, RFC 9449): built by
//! [`AuthenticateLayer::with_dpop`](crate::AuthenticateLayer::with_dpop).
//!
//! - `Authorization: DPoP <token>` with one `DPoP` proof header: the token is verified as any
//!   other, then the proof, by every check of [`stepup_core::dpop`] (its key must be the one the
//!   token's `cnf.jkt` names), then the proof's `jti` is recorded by the policy's
//!   [`ProofReplay`](stepup_core::policy::ProofReplay) — across instances when it is stepup's
//!   engine — and a proof seen before is refused. The [`AuthContext`] says
//!   [`Presentation::Dpop`].
//! - `Authorization: Bearer <token>`: a token bound to a key (`cnf.jkt`) is refused
//!   (`invalid_token`, a stolen bound token is no bearer token); with
//!   [`DpopPolicy::required`] every bearer token is.
//! - No token: the request passes on with no context, as with plain `authenticate()`.
//!
//! **Challenges.** Every challenge that leaves this layer says what the client must do: a
//! refused proof is `401 WWW-Authenticate: DPoP error="invalid_dpop_proof", …,
//! algs="ES256 EdDSA PS256"`; a missing or stale server nonce is `error="use_dpop_nonce"` with a
//! fresh `DPoP-Nonce`; and for a caller who presented DPoP (or anyone, when DPoP is required)
//! the Bearer challenges of the layers inside — [`RequireAcr`](crate::RequireAcr)'s RFC 9470
//! `insufficient_user_authentication`, [`RequireScope`](crate::RequireScope)'s
//! `insufficient_scope`, the extractor's `401` — are restated under the `DPoP` scheme with the
//! same parameters. Where both schemes are accepted, a `401` Bearer challenge is joined by
//! `DPoP algs="…"`. The replay memory unreachable is `503` (fail closed).
//!
//! ```
//! use axum::{Router, routing::post};
//! use stepup_core::dpop::DpopPolicy;
//! use stepup_core::token::{JwtIssuer, SigningKey};
//! use stepup_tower::{RequireMfa, authenticate};
//!
//! let issuer = JwtIssuer::new(SigningKey::hs256(b"an example secret of at least 32 bytes")?);
//! let app: Router = Router::new()
//!     .route("/api/transfers", post(|| async { "sent" }).layer(RequireMfa))
//!     .layer(
//!         authenticate(issuer.verifier().build()?)
//!             .with_dpop(DpopPolicy::required("https://api.example.com")?),
//!     );
//! # Ok::<(), stepup_core::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use stepup_core::dpop::{
    DPOP_NONCE, DpopError, DpopPolicy, DpopRejection, ProofTarget, offer_dpop, to_dpop_challenges,
};
use stepup_core::grpc::is_grpc_request;
use stepup_core::token::{AwaitingKeys, JwtVerifier, MAX_TOKEN_LEN, Verification};
use stepup_core::{AuthContext, AuthRejection, Presentation, ResourceMetadataUrl, TokenError};
use tower_layer::Layer;
use tower_service::Service;

use crate::response::ResponseBody;

/// The `DPoP` request header holding the proof.
const DPOP: &str = "dpop";

/// The answer to a DPoP presentation, which awaits the replay memory before the inner service.
type AwaitingFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static>>;

pin_project! {
    /// Response future of [`AuthenticateDpop`]. A request judged at once (no token, or a bearer
    /// token whose key is at hand: every route's common case) goes straight to the inner
    /// service, and a refusal is answered on the spot; only a DPoP proof, whose `jti` the replay
    /// memory records, or a token waiting for its issuer's key set, is boxed and awaited.
    pub struct AuthenticateDpopFuture<F, B, E> {
        #[pin]
        kind: FutureKind<F, B, E>,
    }
}

pin_project! {
    #[project = FutureKindProj]
    enum FutureKind<F, B, E> {
        Inner { #[pin] future: F, layer: Arc<AuthenticateDpopLayer> },
        Answered { response: Option<Response<ResponseBody<B>>> },
        Awaiting { future: AwaitingFuture<B, E> },
    }
}

impl<F, B, E> Future for AuthenticateDpopFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FutureKindProj::Inner { future, layer } => {
                let response = std::task::ready!(future.poll(cx))?;
                let mut response = response.map(ResponseBody::from_inner);
                let status = response.status();
                let url = layer.resource_metadata.as_ref();
                // No DPoP was presented on this path.
                finish_challenges(
                    status,
                    response.headers_mut(),
                    layer.policy.is_required(),
                    url,
                );
                Poll::Ready(Ok(response))
            }
            FutureKindProj::Answered { response } => Poll::Ready(Ok(response
                .take()
                .expect("AuthenticateDpopFuture polled after completion"))),
            FutureKindProj::Awaiting { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for AuthenticateDpopFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateDpopFuture")
            .finish_non_exhaustive()
    }
}

/// Layer that applies [`AuthenticateDpop`]; made by
/// [`AuthenticateLayer::with_dpop`](crate::AuthenticateLayer::with_dpop).
#[derive(Debug, Clone)]
pub struct AuthenticateDpopLayer {
    verifier: JwtVerifier,
    resource_metadata: Option<ResourceMetadataUrl>,
    policy: DpopPolicy,
}

impl AuthenticateDpopLayer {
    pub(crate) fn new(
        verifier: JwtVerifier,
        resource_metadata: Option<ResourceMetadataUrl>,
        policy: DpopPolicy,
    ) -> Self {
        Self {
            verifier,
            resource_metadata,
            policy,
        }
    }

    /// Names the resource's RFC 9728 metadata in every challenge answered through this layer,
    /// `Bearer` and `DPoP` alike (see
    /// [`AuthenticateLayer::with_resource_metadata`](crate::AuthenticateLayer::with_resource_metadata)).
    pub fn with_resource_metadata(mut self, url: ResourceMetadataUrl) -> Self {
        self.resource_metadata = Some(url);
        self
    }
}

impl<S> Layer<S> for AuthenticateDpopLayer {
    type Service = AuthenticateDpop<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthenticateDpop {
            inner,
            layer: Arc::new(self.clone()),
        }
    }
}

/// Middleware that verifies bearer and DPoP-bound tokens; see the [module docs](self).
#[derive(Clone)]
pub struct AuthenticateDpop<S> {
    inner: S,
    /// Shared: each request takes one reference, not a copy of the verifier and the policy.
    layer: Arc<AuthenticateDpopLayer>,
}

impl<S> fmt::Debug for AuthenticateDpop<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateDpop")
            .field("policy", &self.layer.policy)
            .finish_non_exhaustive()
    }
}

/// How the request presented its token, once judged.
enum Judged {
    /// No token: the inner layers decide.
    Anonymous,
    /// A verified bearer token.
    Bearer(AuthContext),
    /// A verified DPoP-bound token and its proof, the proof's replay key to record.
    Dpop(AuthContext, String, bool),
}

/// Why the request is answered here.
enum Refusal {
    /// The bearer token itself (answered as `authenticate()` does).
    Bearer(TokenError),
    /// A DPoP presentation, or a bearer token this policy does not accept.
    Dpop(DpopError),
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthenticateDpop<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = AuthenticateDpopFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Only this layer may vouch for a caller: drop any context set further out.
        request.extensions_mut().remove::<AuthContext>();
        let kind = match judge_now(&self.layer, request.headers()) {
            JudgedNow::Done(Ok(context)) => {
                if let Some(context) = context {
                    request.extensions_mut().insert(context);
                }
                FutureKind::Inner {
                    future: self.inner.call(request),
                    layer: Arc::clone(&self.layer),
                }
            }
            JudgedNow::Done(Err(refusal)) => {
                let grpc = is_grpc_request(request.headers());
                FutureKind::Answered {
                    response: Some(refuse(&self.layer, refusal, request.headers(), grpc)),
                }
            }
            JudgedNow::Later(awaiting) => {
                // The readied service is the one called; the clone waits for the next
                // `poll_ready`.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                FutureKind::Awaiting {
                    future: Box::pin(judge_then_call(
                        Arc::clone(&self.layer),
                        inner,
                        request,
                        awaiting,
                    )),
                }
            }
        };
        AuthenticateDpopFuture { kind }
    }
}

/// What is judged without awaiting: no token, or a bearer token whose issuer's keys are at
/// hand.
enum JudgedNow {
    /// Judged: the caller's context (none without a token), or the refusal.
    Done(Result<Option<AuthContext>, Refusal>),
    /// A DPoP presentation, whose proof the replay memory must record, or a bearer token that
    /// waits for its issuer's key set: [`judge_then_call`] answers it.
    Later(Option<AwaitingKeys>),
}

fn judge_now(layer: &AuthenticateDpopLayer, headers: &HeaderMap) -> JudgedNow {
    let (scheme, token) = match credentials(headers) {
        Ok(Some(found)) => found,
        Ok(None) => return JudgedNow::Done(Ok(None)),
        Err(error) => return JudgedNow::Done(Err(Refusal::Bearer(error))),
    };
    match scheme {
        Scheme::Bearer => match layer.verifier.verify_now(token) {
            Verification::Done(verified) => {
                JudgedNow::Done(judge_bearer(layer, verified).map(Some))
            }
            Verification::AwaitingKeys(awaiting) => JudgedNow::Later(Some(awaiting)),
        },
        Scheme::Dpop => JudgedNow::Later(None),
    }
}

/// Judges the request, awaiting what must be awaited (the replay memory, a key set being
/// fetched), then calls `inner`.
async fn judge_then_call<S, ReqBody, ResBody>(
    layer: Arc<AuthenticateDpopLayer>,
    mut inner: S,
    mut request: Request<ReqBody>,
    awaiting: Option<AwaitingKeys>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    let grpc = is_grpc_request(request.headers());
    let url = layer.resource_metadata.as_ref();
    let (headers, method, path) = (request.headers(), request.method(), request.uri().path());
    let judged = match judge(&layer, headers, method.as_str(), path, awaiting).await {
        Ok(judged) => judged,
        Err(refusal) => return Ok(refuse(&layer, refusal, request.headers(), grpc)),
    };
    let (presented_dpop, fresh_nonce) = match judged {
        Judged::Anonymous => (false, None),
        Judged::Bearer(context) => {
            request.extensions_mut().insert(context);
            (false, None)
        }
        Judged::Dpop(context, replay_key, nonce_is_current) => {
            match layer
                .policy
                .replay()
                .first_use(&replay_key, layer.policy.replay_ttl())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!("DPoP proof replayed");
                    let refusal = Refusal::Dpop(DpopError::Replayed);
                    return Ok(refuse(&layer, refusal, request.headers(), grpc));
                }
                Err(_) => {
                    tracing::warn!("DPoP replay memory unavailable; refusing");
                    return Ok(crate::response::temporarily_unavailable(grpc));
                }
            }
            request
                .extensions_mut()
                .insert(context.with_presentation(Presentation::Dpop));
            let fresh = if layer.policy.uses_nonces() && !nonce_is_current {
                layer.policy.current_nonce()
            } else {
                None
            };
            (true, fresh)
        }
    };
    let mut response = inner.call(request).await?.map(ResponseBody::from_inner);
    let status = response.status();
    let headers = response.headers_mut();
    finish_challenges(
        status,
        headers,
        presented_dpop || layer.policy.is_required(),
        url,
    );
    if let Some(nonce) = fresh_nonce.and_then(|nonce| HeaderValue::from_str(&nonce).ok()) {
        headers.insert(DPOP_NONCE.clone(), nonce);
    }
    Ok(response)
}

/// The token and, for the `DPoP` scheme, its proof: every check but the replay. `awaiting`: the
/// key-set refresh [`judge_now`] found the token waiting for.
async fn judge(
    layer: &AuthenticateDpopLayer,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    awaiting: Option<AwaitingKeys>,
) -> Result<Judged, Refusal> {
    let Some((scheme, token)) = credentials(headers).map_err(Refusal::Bearer)? else {
        return Ok(Judged::Anonymous);
    };
    let verified = match awaiting {
        Some(awaiting) => layer.verifier.verify_awaited(token, awaiting).await,
        None => layer.verifier.verify_async(token).await,
    };
    match scheme {
        Scheme::Bearer => judge_bearer(layer, verified).map(Judged::Bearer),
        Scheme::Dpop => {
            let context = verified.map_err(|error| Refusal::Dpop(DpopError::Token(error)))?;
            let proof = proof(headers).map_err(Refusal::Dpop)?;
            let target = ProofTarget {
                method,
                path,
                access_token: token,
            };
            let verified = layer
                .policy
                .verify_proof(proof, target, context.key_thumbprint())
                .map_err(|error| {
                    tracing::debug!(reason = %error, "DPoP proof refused");
                    Refusal::Dpop(error)
                })?;
            Ok(Judged::Dpop(
                context,
                verified.replay_key(),
                verified.nonce_is_current(),
            ))
        }
    }
}

/// A bearer presentation, its token verified: refused when bound to a key (a stolen bound token
/// is no bearer token) or when this policy requires DPoP.
fn judge_bearer(
    layer: &AuthenticateDpopLayer,
    verified: Result<AuthContext, TokenError>,
) -> Result<AuthContext, Refusal> {
    let context = verified.map_err(|error| {
        if layer.policy.is_required() {
            Refusal::Dpop(DpopError::Token(error))
        } else {
            Refusal::Bearer(error)
        }
    })?;
    if context.key_thumbprint().is_some() {
        return Err(Refusal::Dpop(DpopError::BoundTokenAsBearer));
    }
    if layer.policy.is_required() {
        return Err(Refusal::Dpop(DpopError::DpopRequired));
    }
    Ok(context)
}

/// The answer made here, its challenges finished like the inner service's.
fn refuse<B>(
    layer: &AuthenticateDpopLayer,
    refusal: Refusal,
    request_headers: &HeaderMap,
    grpc: bool,
) -> Response<ResponseBody<B>> {
    let (response, dpop) = match refusal {
        Refusal::Bearer(error) => {
            tracing::debug!(reason = %error, "bearer token refused");
            let rejection = AuthRejection::InvalidToken(error);
            (rejection.to_response_for(request_headers), false)
        }
        Refusal::Dpop(error) => {
            let nonce = if error == DpopError::NonceRequired {
                layer.policy.current_nonce()
            } else {
                None
            };
            let rejection = DpopRejection::new(error).with_nonce(nonce);
            let response = if grpc {
                rejection.to_grpc_response()
            } else {
                rejection.to_response()
            };
            (response, true)
        }
    };
    let mut response = response.map(ResponseBody::from_rejection);
    let status = response.status();
    finish_challenges(
        status,
        response.headers_mut(),
        dpop || layer.policy.is_required(),
        layer.resource_metadata.as_ref(),
    );
    response
}

/// Restates Bearer challenges under `DPoP` for a DPoP caller (or when DPoP is required), else
/// offers `DPoP` beside `Bearer`; names the resource metadata in every challenge.
fn finish_challenges(
    status: StatusCode,
    headers: &mut HeaderMap,
    dpop: bool,
    url: Option<&ResourceMetadataUrl>,
) {
    if dpop {
        to_dpop_challenges(headers, url);
        return;
    }
    if let Some(url) = url {
        url.add_to_headers(headers);
    }
    offer_dpop(status, headers, url);
}

/// The scheme a token was presented under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// The token of the request and its scheme: `Bearer` (RFC 6750) or `DPoP` (RFC 9449), either
/// case. Another scheme, or no header, is `Ok(None)`; several `Authorization` headers, a value
/// that is not UTF-8 or an empty token is [`TokenError::Malformed`], an oversized one
/// [`TokenError::TooLarge`].
fn credentials(headers: &HeaderMap) -> Result<Option<(Scheme, &str)>, TokenError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(TokenError::Malformed);
    }
    if value.len() > MAX_TOKEN_LEN + "Bearer ".len() {
        return Err(TokenError::TooLarge);
    }
    let value = std::str::from_utf8(value.as_bytes()).map_err(|_| TokenError::Malformed)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Ok(None);
    };
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Some((scheme, token)))
}

/// The one `DPoP` proof header.
fn proof(headers: &HeaderMap) -> Result<&str, DpopError> {
    let mut values = headers.get_all(DPOP).iter();
    let Some(value) = values.next() else {
        return Err(DpopError::MissingProof);
    };
    if values.next().is_some() {
        return Err(DpopError::MultipleProofs);
    }
    value.to_str().map_err(|_| DpopError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in values {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn both_schemes_are_read_and_others_ignored() {
        let read = |value: &str| {
            credentials(&headers(&[("authorization", value)])).map(|found| found.map(|f| f.0))
        };
        assert_eq!(read("Bearer a"), Ok(Some(Scheme::Bearer)));
        assert_eq!(read("dpop a"), Ok(Some(Scheme::Dpop)));
        assert_eq!(read("DPoP a"), Ok(Some(Scheme::Dpop)));
        assert_eq!(read("Basic a"), Ok(None));
        assert_eq!(read("DPoP "), Err(TokenError::Malformed));
        assert_eq!(
            proof(&headers(&[("dpop", "a"), ("dpop", "b")])),
            Err(DpopError::MultipleProofs)
        );
        assert_eq!(proof(&HeaderMap::new()), Err(DpopError::MissingProof));
    }
}
