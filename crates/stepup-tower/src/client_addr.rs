//! Who is the client? The TCP peer, unless the peer is a proxy you trust to say.
//!
//! The server integration puts the TCP peer in the request extensions as [`PeerAddr`] (for axum:
//! copy `ConnectInfo<SocketAddr>` into it). [`ResolveClientAddr`] then adds the [`ClientAddr`]
//! that [`client_addr()`] works out:
//!
//! - a peer that is not a trusted proxy is the client, whatever forwarding headers it sends (a
//!   client rotating `X-Forwarded-For` does not change who it is);
//! - behind trusted proxies, the forwarding chain (`X-Forwarded-For`, or else the `for=` of
//!   RFC 7239 `Forwarded`) is read from the right, skipping trusted hops: the first untrusted hop
//!   is the client. Hops to its left were written by the client and are never believed.
//!
//! ```
//! use std::convert::Infallible;
//! use std::net::{IpAddr, SocketAddr};
//! use http::{Request, Response};
//! use stepup_tower::client_addr::{ClientAddr, PeerAddr, ResolveClientAddrLayer, TrustedProxies};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let trusted = TrustedProxies::parse(&["10.0.0.0/8"])?;
//! let service = ServiceBuilder::new()
//!     .layer(ResolveClientAddrLayer::new(trusted))
//!     .service(service_fn(|request: Request<String>| async move {
//!         let ClientAddr(client) = request.extensions().get::<ClientAddr>().copied().unwrap();
//!         Ok::<_, Infallible>(Response::new(client.to_string()))
//!     }));
//!
//! let mut request = Request::new(String::new());
//! request.headers_mut().insert("x-forwarded-for", "198.51.100.7, 10.1.2.3".parse()?);
//! let peer: SocketAddr = "10.0.0.1:55012".parse()?;
//! request.extensions_mut().insert(PeerAddr(peer));
//! let response = service.oneshot(request).await?;
//! assert_eq!(response.body(), "198.51.100.7");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::FORWARDED;
use http::{HeaderMap, HeaderName, Request};
use ipnet::{IpNet, Ipv4Net};
use tower_layer::Layer;
use tower_service::Service;

/// At most this many hops of the forwarding chain are read, from the right; anything further
/// left counts as unparseable.
pub const MAX_HOPS: usize = 64;

/// At most this many bytes of forwarding headers are read, from the right; anything further left
/// counts as unparseable.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Request extension: the TCP peer of the connection, inserted by the server integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// Request extension: the client's address, inserted by [`ResolveClientAddr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The networks of the reverse proxies whose forwarding headers are believed.
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count as their IPv4 address, both as networks
/// and as the addresses checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
}

impl TrustedProxies {
    /// No trusted proxy: the TCP peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts these networks.
    pub fn new<I: IntoIterator<Item = IpNet>>(networks: I) -> Self {
        Self {
            networks: networks.into_iter().map(canonical_net).collect(),
        }
    }

    /// Parses networks (`10.0.0.0/8`, `2001:db8::/32`) and bare addresses (`192.0.2.1`, `::1`).
    pub fn parse<S: AsRef<str>>(networks: &[S]) -> Result<Self, InvalidProxy> {
        let networks = networks
            .iter()
            .map(|network| {
                let network = network.as_ref().trim();
                network
                    .parse::<IpNet>()
                    .map(|net| net.trunc())
                    .or_else(|_| network.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| InvalidProxy {
                        input: network.to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(networks))
    }

    /// Whether `addr` is in one of the trusted networks.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.networks.iter().any(|network| network.contains(&addr))
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }
}

impl FromIterator<IpNet> for TrustedProxies {
    fn from_iter<I: IntoIterator<Item = IpNet>>(networks: I) -> Self {
        Self::new(networks)
    }
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it maps.
fn canonical_net(network: IpNet) -> IpNet {
    if let IpNet::V6(v6) = network
        && v6.prefix_len() >= 96
        && let Some(v4) = v6.network().to_ipv4_mapped()
        && let Ok(v4) = Ipv4Net::new(v4, v6.prefix_len() - 96)
    {
        return IpNet::V4(v4);
    }
    network
}

/// A trusted-proxy entry that is neither a network nor an address.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InvalidProxy {
    input: String,
}

impl InvalidProxy {
    /// The entry that was refused.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for InvalidProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not an IP network or address: {:?}",
            self.input.chars().take(64).collect::<String>()
        )
    }
}

impl std::error::Error for InvalidProxy {}

/// The client's address, given the TCP `peer`, the request's headers and the trusted proxies.
///
/// - If `peer` is not trusted, it is the client and every forwarding header is ignored.
/// - Otherwise the hops of every `X-Forwarded-For` header (comma-separated, in header order) or,
///   when there is no `X-Forwarded-For`, the `for=` of every `Forwarded` element are walked from
///   the right, skipping trusted hops; the first untrusted hop is the client.
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
    let mut walk = Walk {
        trusted,
        client: peer,
        hops: 0,
        bytes: 0,
    };
    let outcome = if headers.contains_key(X_FORWARDED_FOR) {
        headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .rev()
            .try_for_each(|value| walk.x_forwarded_for(value.as_bytes()))
    } else {
        headers
            .get_all(FORWARDED)
            .iter()
            .rev()
            .try_for_each(|value| walk.forwarded(value.as_bytes()))
    };
    match outcome {
        ControlFlow::Break(client) => client,
        ControlFlow::Continue(()) => walk.client,
    }
}

/// The walk along the forwarding chain, from the right.
struct Walk<'a> {
    trusted: &'a TrustedProxies,
    /// The leftmost address reached so far.
    client: IpAddr,
    hops: usize,
    bytes: usize,
}

impl Walk<'_> {
    /// One hop, right to left; `None` when it cannot be parsed.
    fn hop(&mut self, hop: Option<IpAddr>) -> ControlFlow<IpAddr> {
        self.hops += 1;
        if self.hops > MAX_HOPS {
            return ControlFlow::Break(self.client);
        }
        let Some(addr) = hop else {
            return ControlFlow::Break(self.client);
        };
        self.client = addr.to_canonical();
        if self.trusted.contains(self.client) {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(self.client)
        }
    }

    /// Takes up to the remaining byte budget of a header value: the part read and whether the
    /// value was cut.
    fn budget<'v>(&mut self, value: &'v [u8]) -> (&'v [u8], bool) {
        let remaining = MAX_HEADER_BYTES.saturating_sub(self.bytes);
        let cut = value.len() > remaining;
        let taken = if cut {
            &value[value.len() - remaining..]
        } else {
            value
        };
        self.bytes += taken.len();
        (taken, cut)
    }

    /// The hops of one `X-Forwarded-For` value, right to left.
    fn x_forwarded_for(&mut self, value: &[u8]) -> ControlFlow<IpAddr> {
        let (value, cut) = self.budget(value);
        let mut hops = value.rsplit(|&byte| byte == b',').peekable();
        while let Some(hop) = hops.next() {
            // The leftmost piece of a cut value is a fragment.
            let fragment = cut && hops.peek().is_none();
            self.hop(if fragment { None } else { parse_node(hop) })?;
        }
        ControlFlow::Continue(())
    }

    /// The `for=` of one `Forwarded` value's elements, right to left.
    fn forwarded(&mut self, value: &[u8]) -> ControlFlow<IpAddr> {
        let (value, cut) = self.budget(value);
        if cut {
            // Quoted strings make a suffix unreliable to parse: the value is read whole or not.
            return self.hop(None);
        }
        let elements = split_unquoted(value, b',');
        for element in elements.into_iter().rev() {
            self.hop(forwarded_for(element))?;
        }
        ControlFlow::Continue(())
    }
}

/// Splits on `separator` outside of quoted strings (RFC 9110 §5.6.4, with `\` quoted pairs).
fn split_unquoted(input: &[u8], separator: u8) -> Vec<&[u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (index, &byte) in input.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && byte == b'\\' {
            escaped = true;
        } else if byte == b'"' {
            quoted = !quoted;
        } else if !quoted && byte == separator {
            pieces.push(&input[start..index]);
            start = index + 1;
        }
    }
    pieces.push(&input[start..]);
    pieces
}

/// The address in the `for=` parameter of one `Forwarded` element: `None` when the element has
/// no `for=`, several of them, or one that is not an address.
fn forwarded_for(element: &[u8]) -> Option<IpAddr> {
    let mut found = None;
    for pair in split_unquoted(element, b';') {
        let Some(equals) = pair.iter().position(|&byte| byte == b'=') else {
            continue;
        };
        let (name, value) = (pair[..equals].trim_ascii(), &pair[equals + 1..]);
        if !name.eq_ignore_ascii_case(b"for") {
            continue;
        }
        if found.is_some() {
            return None;
        }
        found = Some(value.trim_ascii());
    }
    let value = found?;
    match value.strip_prefix(b"\"") {
        Some(quoted) => parse_node(&unquote(quoted)?),
        None => parse_node(value),
    }
}

/// The content of a quoted string whose opening quote is already stripped; `None` unless it ends
/// with the closing quote.
fn unquote(quoted: &[u8]) -> Option<Vec<u8>> {
    let mut content = Vec::with_capacity(quoted.len());
    let mut bytes = quoted.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'\\' => content.push(*bytes.next()?),
            b'"' => return bytes.as_slice().is_empty().then_some(content),
            _ => content.push(byte),
        }
    }
    None
}

/// A node (RFC 7239 §6): `192.0.2.1`, `192.0.2.1:8080`, `[2001:db8::1]`, `[2001:db8::1]:8080`,
/// with a numeric or obfuscated (`_abc`) port. A bare IPv6 address (as in `X-Forwarded-For`) is
/// accepted too. `unknown`, obfuscated identifiers and anything else: `None`.
fn parse_node(node: &[u8]) -> Option<IpAddr> {
    let node = std::str::from_utf8(node).ok()?.trim_matches([' ', '\t']);
    if let Some(bracketed) = node.strip_prefix('[') {
        let (host, rest) = bracketed.split_once(']')?;
        if !(rest.is_empty() || rest.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        return host.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    match node.split_once(':') {
        None => node.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        Some((host, port)) if !port.contains(':') => {
            if !valid_port(port) {
                return None;
            }
            host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        }
        Some(_) => node.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
    }
}

/// A port: 1 to 5 digits, or an obfuscated port (`_` and letters, digits, `.`, `_`, `-`).
fn valid_port(port: &str) -> bool {
    if let Some(obfuscated) = port.strip_prefix('_') {
        return !obfuscated.is_empty()
            && obfuscated
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    }
    (1..=5).contains(&port.len()) && port.bytes().all(|byte| byte.is_ascii_digit())
}

/// Layer that applies [`ResolveClientAddr`].
#[derive(Debug, Clone, Default)]
pub struct ResolveClientAddrLayer {
    trusted: TrustedProxies,
}

impl ResolveClientAddrLayer {
    /// Resolves client addresses, believing the forwarding headers of `trusted` proxies only.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self { trusted }
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(networks).unwrap()
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn xff(values: &[&str]) -> HeaderMap {
        headers("x-forwarded-for", values)
    }

    fn fwd(values: &[&str]) -> HeaderMap {
        headers("forwarded", values)
    }

    /// Peer 10.0.0.1, proxies 10.0.0.0/8 trusted.
    fn behind_proxy(headers: &HeaderMap) -> IpAddr {
        client_addr(ip("10.0.0.1"), headers, &trusted(&["10.0.0.0/8"]))
    }

    #[test]
    fn parses_networks_and_bare_addresses() {
        let proxies = trusted(&["10.0.0.0/8", "192.0.2.7", " 2001:db8::/32 ", "::1"]);
        assert!(proxies.contains(ip("10.255.0.1")));
        assert!(proxies.contains(ip("192.0.2.7")));
        assert!(!proxies.contains(ip("192.0.2.8")));
        assert!(proxies.contains(ip("2001:db8:1::5")));
        assert!(proxies.contains(ip("::1")));
        assert!(!proxies.contains(ip("11.0.0.1")));
        // Host bits set are truncated to the network.
        assert!(trusted(&["10.1.2.3/8"]).contains(ip("10.200.0.1")));

        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0", "::1/129"] {
            let error = TrustedProxies::parse(&[bad]).unwrap_err();
            assert_eq!(error.input(), bad.trim());
        }
        assert!(TrustedProxies::none().is_empty());
        assert!(!TrustedProxies::none().contains(ip("127.0.0.1")));
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert!(proxies.contains(ip("::ffff:10.1.2.3")));
        // A mapped network counts as the IPv4 network.
        let mapped = trusted(&["::ffff:10.0.0.0/104"]);
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(!mapped.contains(ip("11.1.2.3")));

        // A mapped untrusted peer is returned as IPv4.
        let none = TrustedProxies::none();
        assert_eq!(
            client_addr(ip("::ffff:198.51.100.7"), &HeaderMap::new(), &none),
            ip("198.51.100.7")
        );
        // A mapped trusted peer forwards; a mapped hop comes back as IPv4.
        assert_eq!(
            client_addr(
                ip("::ffff:10.0.0.1"),
                &xff(&["::ffff:198.51.100.7"]),
                &proxies
            ),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn untrusted_peer_ignores_forwarding_headers() {
        let peer = ip("203.0.113.9");
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(client_addr(peer, &xff(&["198.51.100.7"]), &proxies), peer);
        assert_eq!(
            client_addr(peer, &fwd(&["for=198.51.100.7"]), &proxies),
            peer
        );
        assert_eq!(
            client_addr(peer, &xff(&["1.2.3.4"]), &TrustedProxies::none()),
            peer
        );
    }

    #[test]
    fn trusted_peer_without_headers_is_the_client() {
        assert_eq!(behind_proxy(&HeaderMap::new()), ip("10.0.0.1"));
    }

    #[test]
    fn walks_x_forwarded_for_from_the_right() {
        assert_eq!(behind_proxy(&xff(&["198.51.100.7"])), ip("198.51.100.7"));
        // The client prepended hops: the rightmost untrusted one wins.
        assert_eq!(
            behind_proxy(&xff(&["6.6.6.6, 7.7.7.7, 198.51.100.7, 10.2.3.4"])),
            ip("198.51.100.7")
        );
        // Several headers, in order, and no spaces.
        assert_eq!(
            behind_proxy(&xff(&["6.6.6.6,198.51.100.7", "10.9.9.9"])),
            ip("198.51.100.7")
        );
        // A spoofed trusted-looking hop on the left is only reached through trusted hops.
        assert_eq!(
            behind_proxy(&xff(&["10.6.6.6", "198.51.100.7"])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv6_and_ports() {
        assert_eq!(behind_proxy(&xff(&["2001:db8::1"])), ip("2001:db8::1"));
        assert_eq!(behind_proxy(&xff(&["[2001:db8::1]"])), ip("2001:db8::1"));
        assert_eq!(
            behind_proxy(&xff(&["[2001:db8::1]:4711"])),
            ip("2001:db8::1")
        );
        assert_eq!(
            behind_proxy(&xff(&["198.51.100.7:8080"])),
            ip("198.51.100.7")
        );
        assert_eq!(behind_proxy(&xff(&[" 198.51.100.7\t"])), ip("198.51.100.7"));
        // IPv6 peer behind an IPv6 proxy network.
        let proxies = trusted(&["2001:db8:ffff::/48"]);
        assert_eq!(
            client_addr(ip("2001:db8:ffff::1"), &xff(&["2001:db8::7"]), &proxies),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn junk_stops_at_the_proxy_that_forwarded_it() {
        for junk in [
            "unknown",
            "",
            "not an address",
            "198.51.100.7:port",
            "198.51.100.7:",
            "[2001:db8::1]:_",
            "198.51.100.7:123456",
            "[2001:db8::1",
            "2001:db8::1]:80",
            "fe80::1%eth0",
            "300.1.1.1",
        ] {
            assert_eq!(behind_proxy(&xff(&[junk])), ip("10.0.0.1"), "{junk:?}");
            // Behind a second trusted proxy, that proxy forwarded the junk.
            assert_eq!(
                behind_proxy(&xff(&[&format!("6.6.6.6, {junk}, 10.0.0.2")])),
                ip("10.0.0.2"),
                "{junk:?}"
            );
        }
        // Trailing comma: an empty rightmost hop.
        assert_eq!(behind_proxy(&xff(&["198.51.100.7,"])), ip("10.0.0.1"));
        // Non-UTF-8 bytes.
        let mut headers = HeaderMap::new();
        headers.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"198.51.100.7, \xff\xfe").unwrap(),
        );
        assert_eq!(behind_proxy(&headers), ip("10.0.0.1"));
    }

    #[test]
    fn all_trusted_chain_gives_the_leftmost() {
        assert_eq!(behind_proxy(&xff(&["10.0.0.3, 10.0.0.2"])), ip("10.0.0.3"));
        assert_eq!(
            behind_proxy(&fwd(&["for=10.0.0.4", "for=10.0.0.3"])),
            ip("10.0.0.4")
        );
    }

    #[test]
    fn forwarded_header() {
        assert_eq!(
            behind_proxy(&fwd(&["for=198.51.100.7"])),
            ip("198.51.100.7")
        );
        assert_eq!(
            behind_proxy(&fwd(&["For=\"198.51.100.7:4711\";proto=https;by=10.0.0.1"])),
            ip("198.51.100.7")
        );
        assert_eq!(
            behind_proxy(&fwd(&["for=\"[2001:db8:cafe::17]:4711\""])),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            behind_proxy(&fwd(&["for=\"[2001:db8:cafe::17]\""])),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            behind_proxy(&fwd(&["for=\"[2001:db8:cafe::17]:_abc\""])),
            ip("2001:db8:cafe::17")
        );
        // Elements from the right, across headers and commas, with spaces.
        assert_eq!(
            behind_proxy(&fwd(&[
                "for=6.6.6.6, for=198.51.100.7;proto=http",
                "for=10.0.0.9 ; by=10.0.0.1"
            ])),
            ip("198.51.100.7")
        );
        // A quoted comma or semicolon does not split.
        assert_eq!(
            behind_proxy(&fwd(&["for=198.51.100.7;host=\"a,b;c\", for=10.0.0.2"])),
            ip("198.51.100.7")
        );
        // Escapes in a quoted string.
        assert_eq!(
            behind_proxy(&fwd(&["for=\"198.51.\\100.7\""])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn forwarded_junk_stops_the_walk() {
        for junk in [
            "for=unknown",
            "for=_hidden",
            "for=\"_SEVKISEK\"",
            "proto=https",
            "for=198.51.100.7;for=6.6.6.6",
            "for=\"198.51.100.7",
            "for=\"198.51.100.7\"x",
            "for=\"198\"51.100.7\"",
            "for=",
            "",
        ] {
            assert_eq!(behind_proxy(&fwd(&[junk])), ip("10.0.0.1"), "{junk:?}");
            assert_eq!(
                behind_proxy(&fwd(&["for=6.6.6.6", junk, "for=10.0.0.2"])),
                ip("10.0.0.2"),
                "{junk:?}"
            );
        }
        // In one value, junk between commas stops the walk the same way...
        assert_eq!(
            behind_proxy(&fwd(&["for=6.6.6.6, for=unknown, for=10.0.0.2"])),
            ip("10.0.0.2")
        );
        // ...but an unterminated quote swallows the rest of its value, so nothing in it is read.
        assert_eq!(
            behind_proxy(&fwd(&["for=6.6.6.6, for=\"x, for=10.0.0.2"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn x_forwarded_for_takes_precedence_over_forwarded() {
        let mut headers = xff(&["198.51.100.7"]);
        headers.insert(FORWARDED, HeaderValue::from_static("for=6.6.6.6"));
        assert_eq!(behind_proxy(&headers), ip("198.51.100.7"));
        // Even an empty X-Forwarded-For.
        let mut headers = xff(&[""]);
        headers.insert(FORWARDED, HeaderValue::from_static("for=6.6.6.6"));
        assert_eq!(behind_proxy(&headers), ip("10.0.0.1"));
    }

    #[test]
    fn work_is_bounded() {
        // A chain of trusted hops longer than MAX_HOPS: the walk stops at the last hop read.
        let chain = (0..100)
            .map(|index| format!("10.0.{}.{}", index / 250, index % 250 + 1))
            .collect::<Vec<_>>();
        let headers = xff(&[&chain.join(", ")]);
        assert_eq!(behind_proxy(&headers), ip(&chain[100 - MAX_HOPS]));

        // Padding on the left does not hide the hops on the right.
        let padded = format!("{}, 198.51.100.7", "1".repeat(3 * MAX_HEADER_BYTES));
        assert_eq!(behind_proxy(&xff(&[&padded])), ip("198.51.100.7"));
        // A hop cut by the byte budget is not read as a shorter address.
        // ("21.2.3.4" is cut to "1.2.3.4"; the spaces make the value just too long.)
        let spaces = " ".repeat(MAX_HEADER_BYTES - "1.2.3.4,10.0.0.2".len());
        let exact = format!("21.2.3.4,{spaces}10.0.0.2");
        assert_eq!(exact.len(), MAX_HEADER_BYTES + 1);
        assert_eq!(behind_proxy(&xff(&[&exact])), ip("10.0.0.2"));
        // Headers beyond the budget are not read.
        let big = "1".repeat(MAX_HEADER_BYTES);
        assert_eq!(
            behind_proxy(&xff(&["6.6.6.6", &big, "10.0.0.2"])),
            ip("10.0.0.2")
        );
        // An oversized Forwarded value is not read.
        let huge = format!("for=6.6.6.6;x=\"{}\", for=198.51.100.7", "a".repeat(9000));
        assert_eq!(behind_proxy(&fwd(&[&huge])), ip("10.0.0.1"));
        assert_eq!(
            behind_proxy(&fwd(&[&huge, "for=198.51.100.8"])),
            ip("198.51.100.8")
        );
    }

    #[test]
    fn layer_inserts_client_addr_only_with_a_peer() {
        use tower::{ServiceExt, service_fn};

        let service = ResolveClientAddrLayer::new(trusted(&["10.0.0.0/8"])).layer(service_fn(
            |request: Request<()>| async move {
                Ok::<_, std::convert::Infallible>(request.extensions().get::<ClientAddr>().copied())
            },
        ));
        let mut request = Request::new(());
        request
            .headers_mut()
            .insert(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.7"));
        let without_peer = block_on(service.clone().oneshot(request));
        assert_eq!(without_peer, None);

        let mut request = Request::new(());
        request
            .headers_mut()
            .insert(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.7"));
        request
            .extensions_mut()
            .insert(PeerAddr("10.0.0.1:443".parse().unwrap()));
        let with_peer = block_on(service.oneshot(request));
        assert_eq!(with_peer, Some(ClientAddr(ip("198.51.100.7"))));
    }

    /// Runs a future on a current-thread runtime.
    fn block_on<F: std::future::Future<Output = Result<T, std::convert::Infallible>>, T>(
        future: F,
    ) -> T {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        match runtime.block_on(future) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }
}
