//! Who is asking, as far as the network says: the client's address (through trusted proxies
//! only) and its user agent, recorded as the source of what a person chooses.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::PublicState;

/// The proxies (load balancers) whose `X-Forwarded-For` is believed: addresses and networks
/// (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`). A request from any other peer is its peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses a comma-separated list; the reason names the entry that is not an address or a
    /// network.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bad = || format!("{entry:?} is not an address or a network such as 10.0.0.0/8");
            let (address, length) = match entry.split_once('/') {
                Some((address, length)) => (address, Some(length)),
                None => (entry, None),
            };
            let address: IpAddr = address.parse().map_err(|_| bad())?;
            let most = if address.is_ipv4() { 32 } else { 128 };
            let length = match length {
                Some(length) => length
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= most)
                    .ok_or_else(bad)?,
                None => most,
            };
            networks.push((address, length));
        }
        Ok(TrustedProxies(networks))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0
            .iter()
            .any(|(network, length)| within(address, canonical(*network), *length))
    }

    /// The client's address: the peer, unless it is a trusted proxy; then the last address of
    /// `X-Forwarded-For` that is not a trusted proxy (each proxy appends the address it was
    /// reached from, so the ones before an untrusted hop can be forged by the client).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // A hop that is not an address: nothing before it can be believed.
                return client;
            };
            client = address;
            if !self.trusts(address) {
                return address;
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 as the IPv4 address it is.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn within(address: IpAddr, network: IpAddr, length: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The key a client's bad tokens are counted under: its address, or for IPv6 its /64 (one
/// client commonly holds a whole /64).
pub fn throttle_key(address: IpAddr) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// The client of a public request.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl FromRequestParts<PublicState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &PublicState,
    ) -> Result<Self, Self::Rejection> {
        // Served with connect info (startup.rs); a router called without it (a unit test) is
        // its own peer.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(Client {
            ip: state.proxies.client(peer, &parts.headers),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_up_to_the_first_untrusted_hop() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7").unwrap();
        let headers = forwarded("203.0.113.9, 198.51.100.4, 10.1.2.3");
        assert_eq!(
            proxies.client(ip("198.51.100.200"), &headers),
            ip("198.51.100.200"),
            "an untrusted peer is the client, whatever it says"
        );
        assert_eq!(
            proxies.client(ip("10.9.9.9"), &headers),
            ip("198.51.100.4"),
            "the last hop before the trusted ones; the forged first entry is not believed"
        );
        assert_eq!(
            proxies.client(ip("192.0.2.7"), &HeaderMap::new()),
            ip("192.0.2.7")
        );
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.1"), &forwarded("203.0.113.9")),
            ip("203.0.113.9"),
            "an IPv4 peer seen through IPv6 is the address it is"
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &forwarded("junk, 203.0.113.9")),
            ip("203.0.113.9")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.1"), &forwarded("203.0.113.9, junk")),
            ip("10.0.0.1"),
            "nothing before a hop that is not an address is believed"
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &headers),
            ip("10.0.0.1"),
            "no proxies: the header is never read"
        );
    }

    #[test]
    fn a_bad_entry_is_named() {
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/33").unwrap_err(),
            "\"10.0.0.0/33\" is not an address or a network such as 10.0.0.0/8"
        );
        assert!(TrustedProxies::parse("proxy.example.org").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("0.0.0.0/0")
            .unwrap()
            .trusts(ip("203.0.113.9")));
    }

    #[test]
    fn an_ipv6_client_is_throttled_by_its_64() {
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:aaaa::1")),
            throttle_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            throttle_key(ip("2001:db8:1:2::1")),
            throttle_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(throttle_key(ip("203.0.113.9")), ip("203.0.113.9"));
    }
}
