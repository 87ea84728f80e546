//! Serves a resource's RFC 9728 metadata ([`ProtectedResourceMetadata`]) at
//! `GET /.well-known/oauth-protected-resource` (followed by the resource's path, if its
//! identifier has one), so that a client holding only a `401` finds the authorization server:
//!
//! ```text
//! HTTP/1.1 200 OK
//! Content-Type: application/json
//! Cache-Control: public, max-age=3600
//! Access-Control-Allow-Origin: *
//!
//! {"resource":"https://api.example.com","authorization_servers":["https://auth.example.com"],
//!  "scopes_supported":["vault:read"],"bearer_methods_supported":["header"]}
//! ```
//!
//! Two ways to serve it, neither tied to a framework:
//!
//! - [`ResourceMetadataService`], a service answering the document to `GET` and `HEAD` (`405`
//!   otherwise), to mount at [`ProtectedResourceMetadata::well_known_path`]: in axum,
//!   `Router::route_service(&metadata.well_known_path(), ResourceMetadataService::new(&metadata))`;
//! - [`ResourceMetadataLayer`], which answers that path itself and passes every other request
//!   to the service it wraps (for hyper, tonic, or any tower stack without a router). Put it
//!   *outside* `authenticate()`: the document is public, and a bad token must not hide it.
//!
//! Then give `authenticate()` the document's URL
//! ([`with_resource_metadata`](crate::AuthenticateLayer::with_resource_metadata)) so every
//! challenge names it.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use axum::{Router, routing::get};
//! use http::{Request, StatusCode};
//! use stepup_core::resource::ProtectedResourceMetadata;
//! use stepup_core::token::{JwtIssuer, SigningKey};
//! use stepup_tower::resource_metadata::ResourceMetadataService;
//! use stepup_tower::{RequireScope, authenticate};
//! use tower::ServiceExt;
//!
//! let metadata = ProtectedResourceMetadata::new("https://api.example.com")?
//!     .with_authorization_server("https://auth.example.com")
//!     .with_scopes_supported(["vault:read"]);
//! let issuer = JwtIssuer::new(SigningKey::hs256(b"an example secret of at least 32 bytes")?);
//! let app: Router = Router::new()
//!     .route("/api/vault", get(|| async { "the secret" }).layer(RequireScope::all(["vault:read"])))
//!     .layer(authenticate(issuer.verifier().build()?).with_resource_metadata(metadata.metadata_url()))
//!     .route_service(&metadata.well_known_path(), ResourceMetadataService::new(&metadata));
//!
//! let request = |uri| Request::get(uri).body(axum::body::Body::empty()).unwrap();
//! let document = app.clone().oneshot(request("/.well-known/oauth-protected-resource")).await.unwrap();
//! assert_eq!(document.status(), StatusCode::OK);
//! let refused = app.oneshot(request("/api/vault")).await.unwrap();
//! assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
//! assert_eq!(
//!     refused.headers()["www-authenticate"],
//!     "Bearer resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
//! );
//! # Ok::<(), stepup_core::Error>(())
//! # }).unwrap();
//! ```

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
pub use stepup_core::resource::{ProtectedResourceMetadata, ResourceMetadataUrl, WELL_KNOWN_PATH};
use tower_layer::Layer;
use tower_service::Service;

pub use crate::response::{ResponseBody, ResponseFuture};

/// Answers a resource's metadata document; see the [module docs](self). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ResourceMetadataService {
    document: Bytes,
    path: Arc<str>,
    max_age: u64,
}

impl ResourceMetadataService {
    /// Serves `metadata` (its JSON is made once, here).
    pub fn new(metadata: &ProtectedResourceMetadata) -> Self {
        Self {
            document: Bytes::from(metadata.to_json()),
            path: metadata.well_known_path().into(),
            max_age: 3600,
        }
    }

    /// How long clients may cache the document (`Cache-Control: public, max-age=…`; default one
    /// hour).
    pub fn with_max_age(mut self, seconds: u64) -> Self {
        self.max_age = seconds;
        self
    }

    /// The path the document belongs at.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The answer to a request with `method`.
    fn answer(&self, method: &Method) -> Response<Bytes> {
        let mut response = if method == Method::GET || method == Method::HEAD {
            let mut response = Response::new(self.document.clone());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(
                CACHE_CONTROL,
                HeaderValue::from_str(&format!("public, max-age={}", self.max_age))
                    .expect("digits are a valid header value"),
            );
            response
        } else {
            let mut response = Response::new(Bytes::new());
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        };
        // Public by definition, and read by browser-based clients from other origins.
        response
            .headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        response
    }
}

impl<B> Service<Request<B>> for ResourceMetadataService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.answer(request.method()).map(Full::new)))
    }
}

/// Layer answering the metadata at its path and passing everything else on; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct ResourceMetadataLayer {
    service: ResourceMetadataService,
}

impl ResourceMetadataLayer {
    /// Serves `metadata` at [`ProtectedResourceMetadata::well_known_path`].
    pub fn new(metadata: &ProtectedResourceMetadata) -> Self {
        Self {
            service: ResourceMetadataService::new(metadata),
        }
    }

    /// How long clients may cache the document (default one hour).
    pub fn with_max_age(mut self, seconds: u64) -> Self {
        self.service = self.service.with_max_age(seconds);
        self
    }
}

impl<S> Layer<S> for ResourceMetadataLayer {
    type Service = ServeResourceMetadata<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServeResourceMetadata {
            inner,
            metadata: self.service.clone(),
        }
    }
}

/// Middleware answering the metadata path; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct ServeResourceMetadata<S> {
    inner: S,
    metadata: ResourceMetadataService,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ServeResourceMetadata<S>
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
        if request.uri().path() == self.metadata.path() {
            return ResponseFuture::ready(self.metadata.answer(request.method()));
        }
        ResponseFuture::inner(self.inner.call(request))
    }
}
