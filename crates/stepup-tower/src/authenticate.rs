//! Turns `Authorization: Bearer <token>` into an [`AuthContext`] in the request extensions.
//!
//! - no bearer credentials: the request passes on with no context (routes that need one answer
//!   `401 WWW-Authenticate: Bearer` through [`RequireAcr`](crate::RequireAcr) or the extractor);
//! - a bearer token that does not verify, a token bound to a DPoP key (`cnf.jkt`: accepted only
//!   with its proof, by [`with_dpop`](AuthenticateLayer::with_dpop)), or a malformed header: `401` with
//!   `WWW-Authenticate: Bearer error="invalid_token"` and a JSON body (for a gRPC call, the
//!   status `UNAUTHENTICATED` with the same challenge: see [`stepup_core::grpc`]).
//!
//! **Resource metadata (RFC 9728).** With
//! [`with_resource_metadata`](AuthenticateLayer::with_resource_metadata), every Bearer challenge
//! that leaves this layer names the resource's metadata, `resource_metadata="<url>"`, whoever
//! wrote it: this layer's `401`s, [`RequireAcr`](crate::RequireAcr) / `RequireMfa`'s RFC 9470
//! `401`, [`RequireScope`](crate::RequireScope)'s `403`, [`RejectRevoked`](crate::RejectRevoked),
//! the `AuthContext` extractor's `401` and your handlers' own. One setting, on the layer every
//! protected request passes: no inner layer can forget it.
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use stepup_core::AuthContext;
//! use stepup_core::token::{JwtVerifier, VerifyingKey};
//! use stepup_tower::{authenticate, RequireMfa};
//! use tower::{ServiceBuilder, service_fn};
//!
//! let verifier = JwtVerifier::builder()
//!     .key(VerifyingKey::hs256(b"an example secret of at least 32 bytes")?)
//!     .issuer("https://auth.example.com")
//!     .audience("https://api.example.com")
//!     .build()?;
//! let service = ServiceBuilder::new()
//!     .layer(authenticate(verifier))
//!     .layer(RequireMfa)
//!     .service(service_fn(|request: Request<String>| async move {
//!         let caller = request.extensions().get::<AuthContext>().unwrap();
//!         Ok::<_, Infallible>(Response::new(format!("hello {}", caller.subject())))
//!     }));
//! # let _ = service;
//! # Ok::<(), stepup_core::Error>(())
//! ```

use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{HeaderMap, Request, Response};
use stepup_core::dpop::DpopPolicy;
use stepup_core::grpc::is_grpc_request;
use stepup_core::token::{JwtVerifier, MAX_TOKEN_LEN};
use stepup_core::{AuthContext, AuthRejection, ResourceMetadataUrl, TokenError};
use tower_layer::Layer;
use tower_service::Service;

use crate::dpop::AuthenticateDpopLayer;
pub use crate::response::{ResponseBody, ResponseFuture};

/// Authenticates requests with `verifier`; shorthand for [`AuthenticateLayer::new`].
pub fn authenticate(verifier: JwtVerifier) -> AuthenticateLayer {
    AuthenticateLayer::new(verifier)
}

/// Layer that applies [`Authenticate`].
#[derive(Debug, Clone)]
pub struct AuthenticateLayer {
    verifier: JwtVerifier,
    resource_metadata: Option<ResourceMetadataUrl>,
}

impl AuthenticateLayer {
    /// Authenticates requests with `verifier`.
    pub fn new(verifier: JwtVerifier) -> Self {
        Self {
            verifier,
            resource_metadata: None,
        }
    }

    /// Names the resource's RFC 9728 metadata in every Bearer challenge answered through this
    /// layer, `resource_metadata="<url>"` (see the [module docs](self)); the URL is
    /// [`ProtectedResourceMetadata::metadata_url`](stepup_core::resource::ProtectedResourceMetadata::metadata_url),
    /// served by [`resource_metadata`](crate::resource_metadata).
    ///
    /// ```
    /// use stepup_core::resource::ProtectedResourceMetadata;
    /// use stepup_core::token::{JwtIssuer, SigningKey};
    /// use stepup_tower::authenticate;
    ///
    /// let metadata = ProtectedResourceMetadata::new("https://api.example.com")?
    ///     .with_authorization_server("https://auth.example.com");
    /// let issuer = JwtIssuer::new(SigningKey::hs256(b"an example secret of at least 32 bytes")?);
    /// let layer = authenticate(issuer.verifier().build()?)
    ///     .with_resource_metadata(metadata.metadata_url());
    /// # Ok::<(), stepup_core::Error>(())
    /// ```
    pub fn with_resource_metadata(mut self, url: ResourceMetadataUrl) -> Self {
        self.resource_metadata = Some(url);
        self
    }

    /// Also accepts sender-constrained tokens (DPoP, RFC 9449), or requires them, as `policy`
    /// says: `Authorization: DPoP <token>` with its `DPoP` proof, every check of
    /// [`stepup_core::dpop`], each proof accepted once (see [`crate::dpop`]).
    ///
    /// ```
    /// use stepup_core::dpop::DpopPolicy;
    /// use stepup_core::token::{JwtIssuer, SigningKey};
    /// use stepup_tower::authenticate;
    ///
    /// let issuer = JwtIssuer::new(SigningKey::hs256(b"an example secret of at least 32 bytes")?);
    /// let layer = authenticate(issuer.verifier().build()?)
    ///     .with_dpop(DpopPolicy::optional("https://api.example.com")?);
    /// # let _ = layer;
    /// # Ok::<(), stepup_core::Error>(())
    /// ```
    pub fn with_dpop(self, policy: DpopPolicy) -> AuthenticateDpopLayer {
        AuthenticateDpopLayer::new(self.verifier, self.resource_metadata, policy)
    }
}

impl<S> Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            verifier: self.verifier.clone(),
            resource_metadata: self.resource_metadata.clone(),
        }
    }
}

/// Middleware that verifies bearer tokens; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    verifier: JwtVerifier,
    resource_metadata: Option<ResourceMetadataUrl>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Authenticate<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Only this layer may vouch for a caller: drop any context set further out.
        request.extensions_mut().remove::<AuthContext>();
        let verified = bearer_token(request.headers())
            .and_then(|token| token.map(|token| self.verifier.verify(token)).transpose())
            .and_then(|context| match context {
                // A token bound to a key is no bearer token: only `with_dpop` accepts it, with
                // its proof.
                Some(context) if context.key_thumbprint().is_some() => Err(TokenError::DpopBound),
                other => Ok(other),
            });
        match verified {
            Ok(Some(context)) => {
                request.extensions_mut().insert(context);
            }
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(reason = %error, "bearer token refused");
                let grpc = is_grpc_request(request.headers());
                return ResponseFuture::rejected(AuthRejection::InvalidToken(error), grpc)
                    .with_resource_metadata(self.resource_metadata.clone());
            }
        }
        ResponseFuture::inner(self.inner.call(request))
            .with_resource_metadata(self.resource_metadata.clone())
    }
}

/// The bearer token of the request, if it presents one (RFC 6750 §2.1).
///
/// Another scheme (`Basic …`) or no header at all is `Ok(None)`. Several `Authorization` headers,
/// a value that is not UTF-8, or a missing token is [`TokenError::Malformed`]; an oversized header
/// is [`TokenError::TooLarge`]. The token's characters are checked by the verifier's strict
/// base64url decoding, not scanned twice here.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, TokenError> {
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
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Ok(None);
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn scheme_is_case_insensitive_and_other_schemes_are_ignored() {
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Ok(Some("abc")));
        assert_eq!(bearer_token(&headers(&["BEARER abc"])), Ok(Some("abc")));
        assert_eq!(bearer_token(&headers(&["Basic dXNlcjpwdw=="])), Ok(None));
        assert_eq!(bearer_token(&headers(&[])), Ok(None));
    }

    #[test]
    fn malformed_bearer_values_are_refused() {
        for bad in ["Bearer", "Bearer ", "Bearer   "] {
            assert_eq!(
                bearer_token(&headers(&[bad])),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            bearer_token(&headers(&["Bearer a", "Bearer b"])),
            Err(TokenError::Malformed)
        );
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(bearer_token(&headers(&[&huge])), Err(TokenError::TooLarge));
    }
}
