//! Who is the client? The TCP peer, unless the peer is a proxy you trust to say.
//!
//! The server integration puts the TCP peer in the request extensions as [`PeerAddr`] (for axum:
//! copy `ConnectInfo<SocketAddr>` into it). [`ResolveClientAddr`] then adds the [`ClientAddr`]
//! that [`client_addr()`] works out:
//!
//! - a peer that is not a trusted proxy is the client, whatever forwarding headers it sends (a
//!   client rotating `X-Forwarded-For` does not change who it is);
//! - behind trusted proxies, the forwarding chain of the one header the operator configures
//!   ([`ForwardedHeader`]: `X-Forwarded-For` by default, or the `for=` of RFC 7239 `Forwarded`)
//!   is read from the right, skipping trusted hops: the first untrusted hop is the client. Hops to
//!   its left were written by the client and are never believed, and neither is the other
//!   header, even when present: the client may have sent it, and your proxies pass it on.
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::{IpAddr, SocketAddr};
//! use http::{Request, Response};
//! use stepup_tower::client_addr::{
//!     ClientAddr, ForwardedHeader, PeerAddr, ResolveClientAddrLayer, TrustedProxies,
//! };
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // Proxies in 10.0.0.0/8 that write `X-Forwarded-For` (the default header).
//! let trusted = TrustedProxies::parse(&["10.0.0.0/8"])?
//!     .with_header(ForwardedHeader::XForwardedFor);
//! let service = ServiceBuilder::new()
//!     .layer(ResolveClientAddrLayer::new(trusted))
//!     .service(service_fn(|request: Request<String>| async move {
//!         let ClientAddr(client) = request.extensions().get::<ClientAddr>().copied().unwrap();
//!         Ok::<_, Infallible>(Response::new(client.to_string()))
//!     }));
//!
//! let mut request = Request::new(String::new());
//! request.headers_mut().insert("x-forwarded-for", "198.51.100.7, 10.1.2.3".parse()?);
//! // Sent by the client, passed on by the proxy: ignored.
//! request.headers_mut().insert("forwarded", "for=192.0.2.66".parse()?);
//! let peer: SocketAddr = "10.0.0.1:55012".parse()?;
//! request.extensions_mut().insert(PeerAddr(peer));
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.body(), "198.51.100.7");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod headers;
mod proxies;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::task::{Context, Poll};

use http::{HeaderMap, Request};
use tower_layer::Layer;
use tower_service::Service;

pub use headers::{MAX_HEADER_BYTES, MAX_HOPS};
pub use proxies::{ForwardedHeader, InvalidProxy, TrustedProxies};

/// Request extension: the TCP peer of the connection, inserted by the server integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Request extension: the client's address, inserted by [`ResolveClientAddr`].
pub use stepup_core::client::ClientAddr;

/// The client's address, given the TCP `peer`, the request's headers and the trusted proxies.
///
/// - If `peer` is not trusted, it is the client and every forwarding header is ignored.
/// - Otherwise the hops of the configured [`ForwardedHeader`] (see
///   [`TrustedProxies::with_header`]) are walked from the right, skipping trusted hops; the first
///   untrusted hop is the client. For `X-Forwarded-For` these are the comma-separated addresses
///   of every such header, in header order; for `Forwarded`, the `for=` of every element. The
///   other header is never read, even when the configured one is absent.
/// - A hop that cannot be parsed (junk, `unknown`, an obfuscated identifier, a `Forwarded` element
///   without `for=`) ends the walk at the last address that could be: the proxy that forwarded
///   the junk.
/// - When every hop is trusted, the leftmost one is the client.
///
/// Only the rightmost [`MAX_HOPS`] hops and [`MAX_HEADER_BYTES`] bytes are read; what lies beyond
/// counts as unparseable (a `Forwarded` value is read whole or not at all). IPv4-mapped IPv6
/// addresses come back as IPv4.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(peer) {
        return peer;
    }
    headers::walk_chain(peer, headers, trusted)
}

/// Layer that applies [`ResolveClientAddr`].
#[derive(Debug, Clone, Default)]
pub struct ResolveClientAddrLayer {
    trusted: TrustedProxies,
}

impl ResolveClientAddrLayer {
    /// Resolves client addresses, believing the forwarding header (see
    /// [`TrustedProxies::with_header`]) of `trusted` proxies only.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self { trusted }
    }

    /// The trusted proxies and the header read from them.
    pub fn trusted(&self) -> &TrustedProxies {
        &self.trusted
    }
}

impl<S> Layer<S> for ResolveClientAddrLayer {
    type Service = ResolveClientAddr<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResolveClientAddr {
            inner,
            trusted: self.trusted.clone(),
        }
    }
}

/// Middleware inserting [`ClientAddr`], worked out by [`client_addr()`] from the [`PeerAddr`]
/// extension and the headers. A request without a `PeerAddr` passes on unchanged.
#[derive(Debug, Clone)]
pub struct ResolveClientAddr<S> {
    inner: S,
    trusted: TrustedProxies,
}

impl<S, ReqBody> Service<Request<ReqBody>> for ResolveClientAddr<S>
where
    S: Service<Request<ReqBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if let Some(&PeerAddr(peer)) = request.extensions().get::<PeerAddr>() {
            let client = client_addr(peer.ip(), request.headers(), &self.trusted);
            request.extensions_mut().insert(ClientAddr(client));
        }
        self.inner.call(request)
    }
}
