//! An identifier as it travels in orders and authorizations (RFC 8555
//! §9.7.7, RFC 8738), and the kinds certgate issues for. A leaf, so that
//! problem documents, resource objects and the identifier rules can all
//! name it.

use serde::{Deserialize, Serialize};

/// The identifier types certgate issues for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierKind {
    Dns,
    /// RFC 8738.
    Ip,
}

impl IdentifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Ip => "ip",
        }
    }

    /// The kind a wire `type` names, if certgate issues for it.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "dns" => Some(Self::Dns),
            "ip" => Some(Self::Ip),
            _ => None,
        }
    }
}

/// An identifier of a kind certgate issues for, in an order or an
/// authorization (RFC 8555 §9.7.7). What a client sends is a
/// [`WireIdentifier`] until the order's checks accept it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: IdentifierKind,
    pub value: String,
}

impl Identifier {
    pub fn new(kind: IdentifierKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }

    pub fn dns(value: impl Into<String>) -> Self {
        Self::new(IdentifierKind::Dns, value)
    }

    /// A DNS name or, when `value` is an address, an IP identifier.
    pub fn from_value(value: &str) -> Self {
        let kind = if value.parse::<std::net::IpAddr>().is_ok() {
            IdentifierKind::Ip
        } else {
            IdentifierKind::Dns
        };
        Self::new(kind, value)
    }
}

/// An identifier exactly as it is on the wire: in a newOrder request, and
/// in a subproblem. `kind` stays text so that a type certgate does not
/// issue for (`email`, say) can be named back in an `unsupportedIdentifier`
/// subproblem; [`WireIdentifier::known_kind`] is the checked view.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WireIdentifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl WireIdentifier {
    /// The kind, when it is one certgate issues for.
    pub fn known_kind(&self) -> Option<IdentifierKind> {
        IdentifierKind::parse(&self.kind)
    }
}

impl From<Identifier> for WireIdentifier {
    fn from(identifier: Identifier) -> Self {
        Self {
            kind: identifier.kind.as_str().into(),
            value: identifier.value,
        }
    }
}

impl From<&Identifier> for WireIdentifier {
    fn from(identifier: &Identifier) -> Self {
        identifier.clone().into()
    }
}
