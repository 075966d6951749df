//! The challenge types (RFC 8555 §8, RFC 8737, draft-ietf-acme-dns-persist)
//! certgate offers, and which an identifier gets: stored, validated and
//! shown as this one type.

use serde::{Serialize, Serializer};

use super::identifier::IdentifierKind;

/// The challenge types certgate can validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    Http01,
    Dns01,
    /// RFC 8737.
    TlsAlpn01,
    /// draft-ietf-acme-dns-persist: a standing TXT record, offered only by
    /// profiles that turn it on.
    DnsPersist01,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::DnsPersist01 => super::dns_persist::CHALLENGE_TYPE,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Http01,
            Self::Dns01,
            Self::TlsAlpn01,
            Self::DnsPersist01,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// The challenges an authorization offers. A wildcard can only be proven
    /// through DNS (RFC 8555 §7.1.3); an IP address never through DNS
    /// (RFC 8738 §7); dns-persist-01 only when the profile offers it.
    pub fn offered_for(
        kind: IdentifierKind,
        wildcard: bool,
        dns_persist: bool,
    ) -> Vec<ChallengeKind> {
        let mut offered = match (kind, wildcard) {
            (IdentifierKind::Ip, _) => return vec![Self::Http01, Self::TlsAlpn01],
            (IdentifierKind::Dns, true) => vec![Self::Dns01],
            (IdentifierKind::Dns, false) => vec![Self::Http01, Self::Dns01, Self::TlsAlpn01],
        };
        if dns_persist {
            offered.push(Self::DnsPersist01);
        }
        offered
    }
}

/// On the wire as its RFC name (`http-01`, `dns-01`, `tls-alpn-01`,
/// `dns-persist-01`).
impl Serialize for ChallengeKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
