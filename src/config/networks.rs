//! Networks validation must never connect to. certgate fronts an internal
//! PKI, so private ranges are fair game; link-local ones are not by default,
//! because that is where cloud metadata services answer (169.254.169.254)
//! and an ACME client could otherwise make certgate fetch from them.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An address range in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address reaches the IPv4 host.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_matches(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_matches(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if net[..full] != ip[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        net[full] & mask == ip[full] & mask
    }
}

impl FromStr for Network {
    type Err = String;

    /// `10.0.0.0/8`, `fe80::/10`, or a single address.
    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("network {text:?}: {addr:?} is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("network {text:?}: prefix must be 0 to {max}"))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A set of networks validation may not reach.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Networks(Vec<Network>);

impl Networks {
    pub fn new(networks: Vec<Network>) -> Self {
        Self(networks)
    }

    /// The default: IPv4 and IPv6 link-local.
    pub fn link_local() -> Self {
        Self(vec![
            "169.254.0.0/16".parse().expect("a valid network"),
            "fe80::/10".parse().expect("a valid network"),
        ])
    }

    /// The network that makes `ip` off limits, if any.
    pub fn containing(&self, ip: IpAddr) -> Option<&Network> {
        self.0.iter().find(|net| net.contains(ip))
    }

    /// The reason `ip` may not be reached, for a problem's detail.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        self.containing(ip)
            .map(|net| format!("{ip} is in {net}, a network validation may not connect to"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_covers_metadata_endpoints_but_not_private_ranges() {
        let denied = Networks::link_local();
        for ip in ["169.254.169.254", "fe80::1", "::ffff:169.254.169.254"] {
            assert!(denied.containing(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "fd00::1",
            "169.255.0.1",
        ] {
            assert!(denied.containing(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[test]
    fn prefixes_of_any_length() {
        let net: Network = "10.1.128.0/17".parse().unwrap();
        assert!(net.contains("10.1.200.3".parse().unwrap()));
        assert!(!net.contains("10.1.127.255".parse().unwrap()));
        let host: Network = "192.0.2.7".parse().unwrap();
        assert_eq!(host.to_string(), "192.0.2.7/32");
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("example/8".parse::<Network>().is_err());
        let all: Network = "::/0".parse().unwrap();
        assert!(all.contains("2001:db8::1".parse().unwrap()));
    }
}
