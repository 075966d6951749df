//! Networks validation must never connect to. certgate fronts an internal
//! PKI, so private ranges and loopback are fair game; the addresses where
//! cloud metadata services answer are not by default, since an ACME client
//! could otherwise make certgate fetch credentials from them. Unspecified
//! addresses (`0.0.0.0/8`, `::`) are refused whatever the list says: a
//! connection to one reaches the local host by a name no list would match.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::protocol::identifiers::is_unspecified;

/// The default deny list: link-local (AWS, GCP and Azure metadata at
/// 169.254.169.254, and every IPv6 link-local address), AWS's IPv6 metadata
/// address and Alibaba Cloud's metadata address.
pub const METADATA_NETWORKS: [&str; 4] = [
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
];

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

    /// The default: [`METADATA_NETWORKS`].
    pub fn metadata() -> Self {
        Self(
            METADATA_NETWORKS
                .iter()
                .map(|net| net.parse().expect("a valid network"))
                .collect(),
        )
    }

    /// Why validation may not connect to `ip`, for a problem's detail; `None`
    /// when it may. Every connection validation makes is checked here.
    pub fn refusal(&self, ip: IpAddr) -> Option<String> {
        if is_unspecified(ip) {
            return Some(format!(
                "refused by policy: {ip} is an unspecified address, which validation never connects to"
            ));
        }
        self.0.iter().find(|net| net.contains(ip)).map(|net| {
            format!("refused by policy: {ip} is in {net}, a network validation may not connect to")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_covers_metadata_endpoints_but_not_private_ranges_or_loopback() {
        let denied = Networks::metadata();
        for ip in [
            "169.254.169.254",
            "fe80::1",
            "::ffff:169.254.169.254",
            "fd00:ec2::254",
            "100.100.100.200",
            "::ffff:100.100.100.200",
        ] {
            assert!(denied.refusal(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "::1",
            "fd00::1",
            "fd00:ec2::253",
            "100.100.100.201",
            "169.255.0.1",
        ] {
            assert!(denied.refusal(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[test]
    fn unspecified_addresses_are_refused_by_any_list_even_an_empty_one() {
        for denied in [Networks::default(), Networks::metadata()] {
            for ip in ["0.0.0.0", "0.255.1.2", "::", "::ffff:0.0.0.0"] {
                let why = denied.refusal(ip.parse().unwrap());
                assert!(
                    why.as_deref().is_some_and(|w| w.contains("unspecified")),
                    "{ip}: {why:?}"
                );
            }
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
