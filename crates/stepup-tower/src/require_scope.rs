//! Per-route scopes: [`RequireScope`] lets a request through only when its token grants every
//! scope named (`scope`, or `scp` as a string or an array: the verifier reads both), and
//! otherwise answers RFC 6750's `insufficient_scope`, the refusal MCP clients act on:
//!
//! ```text
//! HTTP/1.1 403 Forbidden
//! WWW-Authenticate: Bearer error="insufficient_scope",
//!   error_description="the access token does not grant a scope this request needs",
//!   scope="vault:read vault:write"
//! Content-Type: application/json
//!
//! {"error":"insufficient_scope","error_description":"…","scope":"vault:read vault:write"}
//! ```
//!
//! `scope` names every scope the route needs, not only the missing ones: a client authorizes
//! again asking for that set. A request without an [`AuthContext`] gets
//! `401 WWW-Authenticate: Bearer`; a gRPC call gets `PERMISSION_DENIED` with the same challenge
//! (see [`stepup_core::grpc`]); `authenticate()`'s
//! [`with_resource_metadata`](crate::AuthenticateLayer::with_resource_metadata) adds
//! `resource_metadata="…"`.
//!
//! A missing scope and a missing level are different refusals: put `RequireScope` beside
//! [`RequireAcr`](crate::RequireAcr) / [`RequireMfa`](crate::RequireMfa) (the outer one is
//! checked first).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use stepup_core::AuthContext;
//! use stepup_tower::{RequireMfa, RequireScope};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! let service = ServiceBuilder::new()
//!     .layer(RequireScope::all(["vault:read"]))
//!     .layer(RequireMfa)
//!     .service(service_fn(|_: Request<String>| async {
//!         Ok::<_, Infallible>(Response::new(String::from("the secret")))
//!     }));
//!
//! let request = |scope: &str| {
//!     let mut request = Request::new(String::new());
//!     request
//!         .extensions_mut()
//!         .insert(AuthContext::builder("ada").acr("mfa").scope(scope).build());
//!     request
//! };
//! let refused = service.clone().oneshot(request("openid")).await?;
//! assert_eq!(refused.status(), StatusCode::FORBIDDEN);
//! assert_eq!(
//!     refused.headers()["www-authenticate"],
//!     "Bearer error=\"insufficient_scope\", \
//!      error_description=\"the access token does not grant a scope this request needs\", \
//!      scope=\"vault:read\""
//! );
//! let allowed = service.oneshot(request("openid vault:read")).await?;
//! assert_eq!(allowed.status(), StatusCode::OK);
//! # Ok::<(), Infallible>(())
//! # }).unwrap();
//! ```

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use stepup_core::grpc::is_grpc_request;
use stepup_core::{AuthContext, AuthRejection, ScopeChallenge};
use tower_layer::Layer;
use tower_service::Service;

pub use crate::response::{ResponseBody, ResponseFuture};

/// Layer requiring scopes of the access token; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RequireScope {
    scopes: Arc<[String]>,
}

impl RequireScope {
    /// Requires every one of `scopes` (none: every authenticated request passes).
    pub fn all<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::default().with_scopes(scopes)
    }

    /// Also requires `scope`.
    pub fn with_scope(self, scope: impl Into<String>) -> Self {
        self.with_scopes([scope])
    }

    /// Also requires every one of `scopes`.
    pub fn with_scopes<I, S>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut all = self.scopes.to_vec();
        for scope in scopes {
            let scope = scope.into();
            if !all.contains(&scope) {
                all.push(scope);
            }
        }
        Self { scopes: all.into() }
    }

    /// The scopes required.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// Whether `caller`'s token grants every required scope; else the refusal to answer.
    pub fn check(&self, caller: &AuthContext) -> Result<(), ScopeChallenge> {
        if self.scopes.iter().all(|scope| caller.has_scope(scope)) {
            Ok(())
        } else {
            Err(ScopeChallenge::new(self.scopes.join(" ")))
        }
    }
}

impl Default for RequireScope {
    /// No scope required.
    fn default() -> Self {
        Self {
            scopes: Arc::new([]),
        }
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService {
            inner,
            requirement: self.clone(),
        }
    }
}

/// Middleware enforcing a [`RequireScope`]; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    requirement: RequireScope,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopeService<S>
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
            Some(caller) => self
                .requirement
                .check(caller)
                .map_err(AuthRejection::InsufficientScope),
        };
        match verdict {
            Ok(()) => ResponseFuture::inner(self.inner.call(request)),
            Err(rejection) => {
                tracing::debug!(reason = rejection.description(), "scope missing");
                ResponseFuture::rejected(rejection, is_grpc_request(request.headers()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_is_needed_and_the_challenge_names_them_all() {
        let requirement = RequireScope::all(["a", "b"])
            .with_scope("a")
            .with_scope("c");
        assert_eq!(requirement.scopes(), ["a", "b", "c"]);
        let caller = |scope: &str| AuthContext::builder("u").scope(scope).build();
        assert!(requirement.check(&caller("c b a d")).is_ok());
        let refused = requirement.check(&caller("a b")).unwrap_err();
        assert_eq!(refused.scope, "a b c");
        // Scopes are whole words: `ab` is not `a`.
        assert!(RequireScope::all(["a"]).check(&caller("ab")).is_err());
        assert!(
            RequireScope::all(["a"])
                .check(&AuthContext::builder("u").build())
                .is_err()
        );
        assert!(RequireScope::default().check(&caller("")).is_ok());
    }
}
