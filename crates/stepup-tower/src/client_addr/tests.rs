//! The walk along the forwarding chain, through [`client_addr()`] and the layer.

use std::net::IpAddr;

use http::header::FORWARDED;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use tower_layer::Layer;

use super::*;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn trusted(networks: &[&str]) -> TrustedProxies {
    TrustedProxies::parse(networks).unwrap()
}

fn headers(name: HeaderName, values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    headers
}

fn xff(values: &[&str]) -> HeaderMap {
    headers(X_FORWARDED_FOR, values)
}

fn fwd(values: &[&str]) -> HeaderMap {
    headers(FORWARDED, values)
}

/// Peer 10.0.0.1, proxies 10.0.0.0/8 trusted, writing `X-Forwarded-For` (the default).
fn behind_proxy(headers: &HeaderMap) -> IpAddr {
    client_addr(ip("10.0.0.1"), headers, &trusted(&["10.0.0.0/8"]))
}

/// Peer 10.0.0.1, proxies 10.0.0.0/8 trusted, writing `Forwarded`.
fn behind_forwarding_proxy(headers: &HeaderMap) -> IpAddr {
    let proxies = trusted(&["10.0.0.0/8"]).with_header(ForwardedHeader::Forwarded);
    client_addr(ip("10.0.0.1"), headers, &proxies)
}

#[test]
fn mapped_ipv4_peers_and_hops_come_back_as_ipv4() {
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
            &trusted(&["10.0.0.0/8"])
        ),
        ip("198.51.100.7")
    );
}

#[test]
fn untrusted_peer_ignores_forwarding_headers() {
    let peer = ip("203.0.113.9");
    let proxies = trusted(&["10.0.0.0/8"]);
    assert_eq!(client_addr(peer, &xff(&["198.51.100.7"]), &proxies), peer);
    let forwarding = proxies.with_header(ForwardedHeader::Forwarded);
    assert_eq!(
        client_addr(peer, &fwd(&["for=198.51.100.7"]), &forwarding),
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
    assert_eq!(behind_forwarding_proxy(&HeaderMap::new()), ip("10.0.0.1"));
}

#[test]
fn only_the_configured_header_is_read() {
    // X-Forwarded-For configured (the default): a spoofed Forwarded is ignored, whether
    // X-Forwarded-For is there, empty or missing.
    let mut both = xff(&["198.51.100.7"]);
    both.insert(FORWARDED, HeaderValue::from_static("for=6.6.6.6"));
    assert_eq!(behind_proxy(&both), ip("198.51.100.7"));
    let mut empty = xff(&[""]);
    empty.insert(FORWARDED, HeaderValue::from_static("for=6.6.6.6"));
    assert_eq!(behind_proxy(&empty), ip("10.0.0.1"));
    assert_eq!(behind_proxy(&fwd(&["for=6.6.6.6"])), ip("10.0.0.1"));

    // Forwarded configured: a spoofed X-Forwarded-For is ignored the same way.
    let mut both = fwd(&["for=198.51.100.7"]);
    both.insert(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
    assert_eq!(behind_forwarding_proxy(&both), ip("198.51.100.7"));
    let mut empty = fwd(&[""]);
    empty.insert(X_FORWARDED_FOR, HeaderValue::from_static("6.6.6.6"));
    assert_eq!(behind_forwarding_proxy(&empty), ip("10.0.0.1"));
    assert_eq!(behind_forwarding_proxy(&xff(&["6.6.6.6"])), ip("10.0.0.1"));
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
        behind_forwarding_proxy(&fwd(&["for=10.0.0.4", "for=10.0.0.3"])),
        ip("10.0.0.4")
    );
}

#[test]
fn forwarded_header() {
    let client = |values: &[&str]| behind_forwarding_proxy(&fwd(values));
    assert_eq!(client(&["for=198.51.100.7"]), ip("198.51.100.7"));
    assert_eq!(
        client(&["For=\"198.51.100.7:4711\";proto=https;by=10.0.0.1"]),
        ip("198.51.100.7")
    );
    assert_eq!(
        client(&["for=\"[2001:db8:cafe::17]:4711\""]),
        ip("2001:db8:cafe::17")
    );
    assert_eq!(
        client(&["for=\"[2001:db8:cafe::17]\""]),
        ip("2001:db8:cafe::17")
    );
    assert_eq!(
        client(&["for=\"[2001:db8:cafe::17]:_abc\""]),
        ip("2001:db8:cafe::17")
    );
    // Elements from the right, across headers and commas, with spaces.
    assert_eq!(
        client(&[
            "for=6.6.6.6, for=198.51.100.7;proto=http",
            "for=10.0.0.9 ; by=10.0.0.1"
        ]),
        ip("198.51.100.7")
    );
    // A quoted comma or semicolon does not split.
    assert_eq!(
        client(&["for=198.51.100.7;host=\"a,b;c\", for=10.0.0.2"]),
        ip("198.51.100.7")
    );
    // Escapes in a quoted string.
    assert_eq!(client(&["for=\"198.51.\\100.7\""]), ip("198.51.100.7"));
}

#[test]
fn forwarded_junk_stops_the_walk() {
    let client = |values: &[&str]| behind_forwarding_proxy(&fwd(values));
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
        assert_eq!(client(&[junk]), ip("10.0.0.1"), "{junk:?}");
        assert_eq!(
            client(&["for=6.6.6.6", junk, "for=10.0.0.2"]),
            ip("10.0.0.2"),
            "{junk:?}"
        );
    }
    // In one value, junk between commas stops the walk the same way...
    assert_eq!(
        client(&["for=6.6.6.6, for=unknown, for=10.0.0.2"]),
        ip("10.0.0.2")
    );
    // ...but an unterminated quote swallows the rest of its value, so nothing in it is read.
    assert_eq!(
        client(&["for=6.6.6.6, for=\"x, for=10.0.0.2"]),
        ip("10.0.0.1")
    );
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
    assert_eq!(behind_forwarding_proxy(&fwd(&[&huge])), ip("10.0.0.1"));
    assert_eq!(
        behind_forwarding_proxy(&fwd(&[&huge, "for=198.51.100.8"])),
        ip("198.51.100.8")
    );
}

#[test]
fn layer_inserts_client_addr_only_with_a_peer() {
    use tower::{ServiceExt, service_fn};

    let layer = ResolveClientAddrLayer::new(trusted(&["10.0.0.0/8"]));
    assert_eq!(layer.trusted().header(), ForwardedHeader::XForwardedFor);
    let service = layer.layer(service_fn(|request: Request<()>| async move {
        Ok::<_, std::convert::Infallible>(request.extensions().get::<ClientAddr>().copied())
    }));
    let request = |peer: Option<&str>| {
        let mut request = Request::new(());
        let headers = request.headers_mut();
        headers.insert(X_FORWARDED_FOR, HeaderValue::from_static("198.51.100.7"));
        headers.insert(FORWARDED, HeaderValue::from_static("for=192.0.2.66"));
        if let Some(peer) = peer {
            request
                .extensions_mut()
                .insert(PeerAddr(peer.parse().unwrap()));
        }
        request
    };
    let without_peer = block_on(service.clone().oneshot(request(None)));
    assert_eq!(without_peer, None);
    let with_peer = block_on(service.oneshot(request(Some("10.0.0.1:443"))));
    assert_eq!(with_peer, Some(ClientAddr(ip("198.51.100.7"))));

    // The layer reads the header its proxies are configured with.
    let forwarding = trusted(&["10.0.0.0/8"]).with_header(ForwardedHeader::Forwarded);
    let service = ResolveClientAddrLayer::new(forwarding).layer(service_fn(
        |request: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(request.extensions().get::<ClientAddr>().copied())
        },
    ));
    let with_peer = block_on(service.oneshot(request(Some("10.0.0.1:443"))));
    assert_eq!(with_peer, Some(ClientAddr(ip("192.0.2.66"))));
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
