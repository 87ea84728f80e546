//! Who the client is, for per-address limits: [`ClientAddr`] (put in the request extensions by
//! the tower layer that resolves it) and [`AddressGrouping`], the one rule every per-address
//! limit keys by.
//!
//! ```
//! use std::net::IpAddr;
//! use stepup_core::client::AddressGrouping;
//!
//! let grouping = AddressGrouping::default();
//! let a: IpAddr = "2001:db8:1:2:aaaa::1".parse()?;
//! let b: IpAddr = "2001:db8:1:2:bbbb::9".parse()?;
//! assert_eq!(grouping.key(Some(a)), grouping.key(Some(b)));
//! assert_eq!(grouping.key(Some(a)), "2001:db8:1:2::/64");
//! assert_eq!(grouping.key(None), "unknown");
//! # Ok::<(), std::net::AddrParseError>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Request extension: the client's address (the TCP peer, or what a trusted proxy says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How per-address limits group clients: IPv4 addresses one by one, IPv6 addresses by network
/// prefix (a /64 by default, since one client usually holds a whole /64), and every client of
/// unknown address in one group, `unknown` (a limit fails closed, not open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressGrouping {
    ipv6_prefix: u8,
}

impl Default for AddressGrouping {
    fn default() -> Self {
        Self { ipv6_prefix: 64 }
    }
}

impl AddressGrouping {
    /// Groups IPv6 clients by their first `bits` bits (at most 128).
    pub fn ipv6_prefix(bits: u8) -> Self {
        Self {
            ipv6_prefix: bits.min(128),
        }
    }

    /// The IPv6 prefix length.
    pub fn prefix(&self) -> u8 {
        self.ipv6_prefix
    }

    /// The key a client is limited under: `192.0.2.1`, `2001:db8:1:2::/64`, or `unknown`.
    /// IPv4-mapped IPv6 addresses count as their IPv4 address.
    pub fn key(&self, client: Option<IpAddr>) -> String {
        match client {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let prefix = u32::from(self.ipv6_prefix);
                    let mask = if prefix == 0 {
                        0
                    } else {
                        u128::MAX << (128 - prefix)
                    };
                    format!("{}/{prefix}", Ipv6Addr::from(u128::from(v6) & mask))
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AddressGrouping;

    #[test]
    fn ipv6_clients_are_grouped_by_prefix() {
        let key = |grouping: AddressGrouping, ip: &str| grouping.key(Some(ip.parse().unwrap()));
        let by64 = AddressGrouping::default();
        assert_eq!(
            key(by64, "2001:db8:1:2:aaaa::1"),
            key(by64, "2001:db8:1:2:bbbb::9")
        );
        assert_ne!(key(by64, "2001:db8:1:2::1"), key(by64, "2001:db8:1:3::1"));
        let by128 = AddressGrouping::ipv6_prefix(128);
        assert_ne!(key(by128, "2001:db8::1"), key(by128, "2001:db8::2"));
        assert_eq!(key(AddressGrouping::ipv6_prefix(0), "2001:db8::1"), "::/0");
        assert_eq!(key(by64, "192.0.2.1"), "192.0.2.1");
        assert_eq!(key(by64, "::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(AddressGrouping::ipv6_prefix(200).prefix(), 128);
    }
}
