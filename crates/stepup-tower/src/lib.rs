//! tower middleware of stepup, for any `tower::Service<http::Request<B>>` (axum, hyper, tonic):
//!
//! - [`authenticate()`]: bearer token → [`AuthContext`](stepup_core::AuthContext) in the request
//!   extensions, or `401 invalid_token`; with [`AuthenticateLayer::with_dpop`], DPoP-bound tokens
//!   and their proofs too ([`dpop`], RFC 9449);
//! - [`RequireAcr`] / [`RequireMfa`]: per-route step-up, answering the RFC 9470 challenge;
//! - [`RequireScope`]: per-route scopes, answering `403 insufficient_scope`;
//! - [`RequireTransaction`]: a token authorizing this very operation (RFC 9396
//!   `authorization_details`: amount, payee…), answering `403 insufficient_authorization_details`;
//! - [`resource_metadata`]: the RFC 9728 protected-resource metadata, served
//!   ([`ResourceMetadataService`], [`ResourceMetadataLayer`]) and named in every challenge
//!   ([`AuthenticateLayer::with_resource_metadata`]);
//! - [`ResolveClientAddr`] / [`RateLimit`]: the client's address (believing trusted proxies only)
//!   and a per-client request ceiling, answering `429`;
//! - [`RememberedDevicesLayer`]: the remembered-device cookie → [`TrustedDevice`];
//! - [`RejectRevokedLayer`]: tokens whose user was deleted, recovered or reset since → `401`.
//!
//! The last three know nothing of storage: each asks a small policy trait of
//! [`stepup_core::policy`] ([`RequestCeiling`], [`DeviceVouching`], [`RevocationCheck`]), which
//! stepup's engine implements.
//!
//! The layers that answer wrap the inner response body in [`ResponseBody`], so they work with any
//! body type. A gRPC call (`content-type: application/grpc…`) is refused with a gRPC status
//! instead of an HTTP status (see [`stepup_core::grpc`]), so the same layers protect a tonic
//! service.
//!
//! ```
//! use axum::{Router, routing::{delete, get}};
//! use stepup_core::token::{JwtIssuer, SigningKey};
//! use stepup_tower::{authenticate, RequireMfa};
//!
//! let issuer = JwtIssuer::new(SigningKey::hs256(b"an example secret of at least 32 bytes")?);
//! let app: Router = Router::new()
//!     .route("/api/account", delete(|| async { "gone" }).layer(RequireMfa))
//!     .route("/api/public", get(|| async { "hello" }))
//!     .layer(authenticate(issuer.verifier().build()?));
//! # Ok::<(), stepup_core::Error>(())
//! ```

pub mod authenticate;
pub mod client_addr;
pub mod dpop;
pub mod rate_limit;
pub mod remembered_device;
pub mod require_acr;
pub mod require_scope;
pub mod require_transaction;
pub mod resource_metadata;
mod response;
pub mod revocation;

pub use authenticate::{Authenticate, AuthenticateLayer, authenticate};
pub use client_addr::{
    ClientAddr, ForwardedHeader, PeerAddr, ResolveClientAddr, ResolveClientAddrLayer,
    TrustedProxies, client_addr,
};
pub use dpop::{AuthenticateDpop, AuthenticateDpopLayer};
pub use rate_limit::{RateLimit, RateLimitLayer};
pub use remembered_device::{
    DEFAULT_REMEMBER_FOR, DEVICE_COOKIE, RememberedDevices, RememberedDevicesLayer, TrustedDevice,
    device_cookie, device_token,
};
pub use require_acr::{RequireAcr, RequireAcrService, RequireMfa};
pub use require_scope::{RequireScope, RequireScopeService};
pub use require_transaction::{
    Operation, OperationError, RequireTransaction, RequireTransactionService,
};
pub use resource_metadata::{
    ProtectedResourceMetadata, ResourceMetadataLayer, ResourceMetadataService,
    ServeResourceMetadata,
};
pub use response::{ResponseBody, ResponseFuture};
pub use revocation::{RejectRevoked, RejectRevokedLayer};
pub use stepup_core::dpop::DpopPolicy;
pub use stepup_core::policy::{DeviceVouching, ProofReplay, RequestCeiling, RevocationCheck};
