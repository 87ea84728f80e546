//! The operator's configuration: which peers are trusted proxies, and which forwarding header
//! they write.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderName;
use http::header::FORWARDED;
use ipnet::{IpNet, Ipv4Net};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The forwarding header that names the client behind trusted proxies.
///
/// Only this header is read; the other one is ignored even when present. A client can send
/// either header, and a proxy appends to (or overwrites) only the one it is set up to write, so
/// reading "whichever is present" would let a client choose the chain that is believed.
///
/// ```
/// use stepup_tower::client_addr::{ForwardedHeader, TrustedProxies};
///
/// let trusted = TrustedProxies::parse(&["10.0.0.0/8"])?;
/// assert_eq!(trusted.header(), ForwardedHeader::XForwardedFor);
/// let trusted = trusted.with_header(ForwardedHeader::Forwarded);
/// assert_eq!(trusted.header().name(), "forwarded");
/// # Ok::<(), stepup_tower::client_addr::InvalidProxy>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`, comma-separated addresses (the default).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`: the `for=` parameter of each element.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name (lower case).
    pub fn name(self) -> HeaderName {
        match self {
            Self::XForwardedFor => X_FORWARDED_FOR,
            Self::Forwarded => FORWARDED,
        }
    }
}

/// The networks of the reverse proxies whose forwarding headers are believed, and the one
/// [`ForwardedHeader`] they write (`X-Forwarded-For` unless [`with_header`](Self::with_header)
/// says otherwise).
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count as their IPv4 address, both as networks
/// and as the addresses checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Arc<[IpNet]>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// No trusted proxy: the TCP peer is always the client.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts these networks, reading `X-Forwarded-For`.
    pub fn new<I: IntoIterator<Item = IpNet>>(networks: I) -> Self {
        Self {
            networks: networks.into_iter().map(canonical_net).collect(),
            header: ForwardedHeader::default(),
        }
    }

    /// Parses networks (`10.0.0.0/8`, `2001:db8::/32`) and bare addresses (`192.0.2.1`, `::1`);
    /// `X-Forwarded-For` is read.
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

    /// Reads the client from `header` (default [`ForwardedHeader::XForwardedFor`]), and only
    /// from it: the other forwarding header is ignored even when present. Set it to the header
    /// your proxies write.
    pub fn with_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The forwarding header that is read.
    pub fn header(&self) -> ForwardedHeader {
        self.header
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn trusted(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(networks).unwrap()
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
    fn mapped_networks_count_as_ipv4() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert!(proxies.contains(ip("::ffff:10.1.2.3")));
        let mapped = trusted(&["::ffff:10.0.0.0/104"]);
        assert!(mapped.contains(ip("10.1.2.3")));
        assert!(!mapped.contains(ip("11.1.2.3")));
    }

    #[test]
    fn the_header_defaults_to_x_forwarded_for_and_is_configurable() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(proxies.header(), ForwardedHeader::XForwardedFor);
        assert_eq!(
            TrustedProxies::none().header(),
            ForwardedHeader::XForwardedFor
        );
        assert_eq!(ForwardedHeader::XForwardedFor.name(), "x-forwarded-for");
        assert_eq!(ForwardedHeader::Forwarded.name(), FORWARDED);

        let forwarded = proxies.clone().with_header(ForwardedHeader::Forwarded);
        assert_eq!(forwarded.header(), ForwardedHeader::Forwarded);
        assert_eq!(forwarded.networks(), proxies.networks());
        assert_ne!(forwarded, proxies);
    }
}
