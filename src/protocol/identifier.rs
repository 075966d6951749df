//! An identifier as it travels in orders and authorizations (RFC 8555
//! §9.7.7, RFC 8738), and the kinds certgate issues for. A leaf, so that
//! problem documents, resource objects and the identifier rules can all
//! name it.

use serde::{Deserialize, Serialize};

/// The identifier types certgate issues for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// An identifier in an order or authorization (RFC 8555 §9.7.7), as it is
/// on the wire. `kind` stays text so that a type certgate does not issue for
/// (`email`, say) can be named back in an `unsupportedIdentifier`
/// subproblem; [`Identifier::known_kind`] is the checked view.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
}

impl Identifier {
    pub fn new(kind: IdentifierKind, value: impl Into<String>) -> Self {
        Self {
            kind: kind.as_str().into(),
            value: value.into(),
        }
    }

    /// The kind, when it is one certgate issues for.
    pub fn known_kind(&self) -> Option<IdentifierKind> {
        IdentifierKind::parse(&self.kind)
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
