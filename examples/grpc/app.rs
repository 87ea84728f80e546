//! The gRPC example's application: the `Account` service, and the tower stack that protects it
//! with stepup's layers on tonic's own server (no axum router, no interceptor). `main.rs` reads
//! the settings; `tests/grpc.rs` drives it with a tonic client.
//!
//! ```text
//! tonic::transport::Server
//!   └─ ResourceMetadataLayer     GET /.well-known/oauth-protected-resource (HTTP/1.1 or h2)
//!      └─ authenticate()         bearer token → AuthContext; challenges name the metadata
//!         └─ Methods              /stepup.example.Account/CloseAccount → RequireMfa (max_age 300)
//!            └─ AccountServer     the generated service
//! ```
//!
//! A refusal is a gRPC status, not an HTTP one: `UNAUTHENTICATED` (16) with the RFC 9470
//! challenge in the `www-authenticate` metadata, the level in the message and in a
//! `google.rpc.ErrorInfo` detail (reason `INSUFFICIENT_USER_AUTHENTICATION`, metadata
//! `acr_values`, `max_age`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use stepup::clock::SharedClock;
use stepup::middleware::{Authenticate, RequireAcrService};
use stepup::profile::IdpProfile;
use stepup::resource::{ProtectedResourceMetadata, ResourceMetadataLayer, ServeResourceMetadata};
use stepup::token::JwtVerifier;
use stepup::{AuthContext, RequireMfa, authenticate};
use tonic::body::Body;
use tower::{Layer, Service};

/// The messages and the service, generated from `account.proto` by `tonic-prost-build` (see
/// `codegen/`: no `protoc` needed, none at build time).
#[allow(clippy::all, missing_docs, unreachable_pub)]
pub(crate) mod proto {
    include!("stepup.example.rs");
}

use proto::account_server::{Account, AccountServer};
use proto::{CloseAccountReply, CloseAccountRequest, WhoAmIReply, WhoAmIRequest};

/// The address served when `STEPUP_GRPC_ADDR` is not set.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// The method that needs a second factor.
pub(crate) const CLOSE_ACCOUNT: &str = "/stepup.example.Account/CloseAccount";

/// What to set, printed when the settings are incomplete.
pub(crate) const USAGE: &str = "\
Environment of the gRPC example:
  OIDC_ISSUER         required: the issuer of your identity provider, found by OIDC discovery
  OIDC_AUDIENCE       the audience your access tokens carry (default: STEPUP_PUBLIC_URL)
  STEPUP_IDP_PROFILE  keycloak, okta, auth0, cognito, entra or generic (default generic)
  STEPUP_ACR_MAP      level=value pairs, e.g. mfa=urn:example:2fa,phr=urn:example:phr
  STEPUP_GRPC_ADDR    the address to listen on (default 127.0.0.1:50051)
  STEPUP_PUBLIC_URL   the resource identifier clients use (default http://<STEPUP_GRPC_ADDR>)";

/// The settings, read from the environment by `main.rs`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The provider's issuer identifier.
    pub(crate) issuer: String,
    /// The audience accepted.
    pub(crate) audience: String,
    /// How the provider says how the user authenticated.
    pub(crate) profile: IdpProfile,
    /// The address to listen on.
    pub(crate) addr: SocketAddr,
    /// The resource identifier (RFC 9728 `resource`).
    pub(crate) resource: String,
}

impl Settings {
    /// The settings from `lookup` (the environment in `main.rs`); the error says what is wrong.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let lookup = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let issuer = lookup("OIDC_ISSUER").ok_or("OIDC_ISSUER is not set")?;
        let addr = lookup("STEPUP_GRPC_ADDR").unwrap_or_else(|| DEFAULT_ADDR.to_owned());
        let addr: SocketAddr = addr
            .parse()
            .map_err(|_| format!("STEPUP_GRPC_ADDR is not an address: {addr}"))?;
        let resource = lookup("STEPUP_PUBLIC_URL").unwrap_or_else(|| format!("http://{addr}"));
        let resource = resource.trim_end_matches('/').to_owned();
        let audience = lookup("OIDC_AUDIENCE").unwrap_or_else(|| resource.clone());
        let name = lookup("STEPUP_IDP_PROFILE").unwrap_or_else(|| "generic".to_owned());
        let mut profile = IdpProfile::named(&name)
            .map_err(|_| format!("STEPUP_IDP_PROFILE is not a known profile: {name}"))?;
        if let Some(map) = lookup("STEPUP_ACR_MAP") {
            profile = profile
                .with_acr_map(&map)
                .map_err(|error| format!("STEPUP_ACR_MAP: {error}"))?;
        }
        Ok(Self {
            issuer,
            audience,
            profile,
            addr,
            resource,
        })
    }

    /// The RFC 9728 metadata: this resource, and the provider as its authorization server.
    pub(crate) fn metadata(&self) -> Result<ProtectedResourceMetadata, stepup::Error> {
        Ok(ProtectedResourceMetadata::new(&self.resource)?.with_authorization_server(&self.issuer))
    }

    /// A verifier that finds the provider's keys by discovery (inside a tokio runtime).
    pub(crate) fn verifier(&self, clock: SharedClock) -> Result<JwtVerifier, stepup::Error> {
        JwtVerifier::builder()
            .discover(&self.issuer)
            .audience(&self.audience)
            .profile(self.profile.clone())
            .clock(clock)
            .build()
    }
}

/// The service: who the caller is; closing the account.
#[derive(Debug, Default)]
pub(crate) struct AccountService;

#[tonic::async_trait]
impl Account for AccountService {
    async fn who_am_i(
        &self,
        request: tonic::Request<WhoAmIRequest>,
    ) -> Result<tonic::Response<WhoAmIReply>, tonic::Status> {
        // tonic keeps the HTTP request's extensions: the context `authenticate()` put there.
        let caller = signed_in(&request)?;
        Ok(tonic::Response::new(WhoAmIReply {
            subject: caller.subject().to_owned(),
            acr: caller.acr().unwrap_or_default().to_owned(),
            amr: caller.amr().to_vec(),
        }))
    }

    async fn close_account(
        &self,
        request: tonic::Request<CloseAccountRequest>,
    ) -> Result<tonic::Response<CloseAccountReply>, tonic::Status> {
        // Reached only through `RequireMfa`: the level and its freshness are already checked.
        let caller = signed_in(&request)?;
        tracing::info!(sub = caller.subject(), "account closed");
        Ok(tonic::Response::new(CloseAccountReply { closed: true }))
    }
}

/// The caller, or `UNAUTHENTICATED` with the bare Bearer challenge (to which `authenticate()`
/// adds the resource metadata, as to every challenge).
fn signed_in<T>(request: &tonic::Request<T>) -> Result<AuthContext, tonic::Status> {
    request
        .extensions()
        .get::<AuthContext>()
        .cloned()
        .ok_or_else(|| {
            let mut status = tonic::Status::unauthenticated("a bearer access token is required");
            status
                .metadata_mut()
                .insert("www-authenticate", "Bearer".parse().expect("a valid value"));
            status
        })
}

/// The whole stack, outermost first.
pub(crate) type Stack = ServeResourceMetadata<Authenticate<Methods<AccountServer<AccountService>>>>;

/// The whole stack: serve it with `tonic::transport::Server::builder().serve_with_incoming`.
pub(crate) fn service(verifier: JwtVerifier, metadata: &ProtectedResourceMetadata) -> Stack {
    tower::ServiceBuilder::new()
        .layer(ResourceMetadataLayer::new(metadata))
        .layer(authenticate(verifier).with_resource_metadata(metadata.metadata_url()))
        .service(Methods::new(AccountServer::new(AccountService)))
}

/// Sends each call to its method's requirement: `CloseAccount` through `RequireMfa` with a
/// five-minute `max_age`, the others straight to the service (which reads the caller itself).
#[derive(Clone)]
pub(crate) struct Methods<S> {
    open: S,
    close_account: RequireAcrService<S>,
}

impl<S: Clone> Methods<S> {
    /// Guards `service`'s methods.
    pub(crate) fn new(service: S) -> Self {
        Self {
            close_account: RequireMfa
                .max_age(Duration::from_secs(300))
                .layer(service.clone()),
            open: service,
        }
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S> Service<Request<Body>> for Methods<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self.open.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.close_account.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request<Body>) -> BoxFuture {
        if request.uri().path() == CLOSE_ACCOUNT {
            let future = self.close_account.call(request);
            Box::pin(async move { Ok(future.await?.map(Body::new)) })
        } else {
            Box::pin(self.open.call(request))
        }
    }
}
