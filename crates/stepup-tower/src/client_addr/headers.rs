//! Reading the forwarding chain: `X-Forwarded-For` hops, RFC 7239 `Forwarded` elements and the
//! nodes in them, walked from the right under fixed bounds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::ControlFlow;

use http::HeaderMap;

use super::{ForwardedHeader, TrustedProxies};

/// At most this many hops of the forwarding chain are read, from the right; anything further
/// left counts as unparseable.
pub const MAX_HOPS: usize = 64;

/// At most this many bytes of forwarding headers are read, from the right; anything further left
/// counts as unparseable.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// The client named by the configured header of `headers`, reached from the trusted `peer` (in
/// canonical form) by walking the chain from the right.
pub(super) fn walk_chain(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut walk = Walk {
        trusted,
        client: peer,
        hops: 0,
        bytes: 0,
    };
    let header = trusted.header();
    let mut values = headers.get_all(header.name()).iter().rev();
    let outcome = match header {
        ForwardedHeader::XForwardedFor => {
            values.try_for_each(|value| walk.x_forwarded_for(value.as_bytes()))
        }
        ForwardedHeader::Forwarded => values.try_for_each(|value| walk.forwarded(value.as_bytes())),
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
