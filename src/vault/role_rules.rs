//! Which identifiers a Vault PKI role lets certgate ask for.
//!
//! newOrder runs every identifier through these rules so that a name the
//! role would refuse is answered with `rejectedIdentifier` at once, before
//! anyone proves control of it, rather than as a `badCSR` at finalize. The
//! rules are Vault's own (`ValidateNames` in the PKI engine), in its order,
//! including its quirks: a bare domain compares case-insensitively, a
//! subdomain suffix case-sensitively.

use std::net::IpAddr;

use serde::Deserialize;

/// The name rules of a role, as `GET <mount>/roles/<role>` returns them.
/// Missing fields take Vault's defaults, so an older Vault that lacks a
/// field still parses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RoleRules {
    #[serde(deserialize_with = "list_or_comma_string")]
    pub allowed_domains: Vec<String>,
    pub allow_subdomains: bool,
    pub allow_bare_domains: bool,
    pub allow_glob_domains: bool,
    pub allow_wildcard_certificates: bool,
    pub allow_any_name: bool,
    pub allow_localhost: bool,
    pub enforce_hostnames: bool,
    pub allow_ip_sans: bool,
    /// Not a name rule, but read with them: a role that keeps no copy of
    /// what it signs (certgate keeps its own, so this is only reported).
    pub no_store: bool,
    /// Also read with them: the lifetime (seconds) a certificate gets when
    /// none is asked for, and the longest one may be; 0 leaves it to the
    /// mount. The CA health check compares them with the CA's expiry.
    pub ttl: u64,
    pub max_ttl: u64,
}

impl Default for RoleRules {
    /// Vault's defaults for a new role.
    fn default() -> Self {
        Self {
            allowed_domains: Vec::new(),
            allow_subdomains: false,
            allow_bare_domains: false,
            allow_glob_domains: false,
            allow_wildcard_certificates: true,
            allow_any_name: false,
            allow_localhost: true,
            enforce_hostnames: true,
            allow_ip_sans: true,
            no_store: false,
            ttl: 0,
            max_ttl: 0,
        }
    }
}

/// Vault accepts a list field as an array or as one comma-separated string.
fn list_or_comma_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Field {
        List(Option<Vec<String>>),
        Text(String),
    }
    Ok(match Field::deserialize(deserializer)? {
        Field::List(list) => list.unwrap_or_default(),
        Field::Text(text) => text
            .split(',')
            .map(|d| d.trim().to_owned())
            .filter(|d| !d.is_empty())
            .collect(),
    })
}

/// Why a role refuses an identifier, in words for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierRefusal {
    pub identifier: String,
    pub reason: String,
}

impl IdentifierRefusal {
    fn new(identifier: &str, reason: impl Into<String>) -> Self {
        Self {
            identifier: identifier.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Vault's hostname pattern: letters, digits and inner hyphens in each
/// label (so `_` fails), with an optional final dot.
fn is_hostname(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `pattern` against `text`, where each `*` stands for any run of
/// characters, dots included (the glob library Vault uses has no separators).
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let mut pieces: Vec<&str> = pieces.collect();
    let Some(last) = pieces.pop() else {
        // No `*` at all: the whole text must have been the prefix.
        return rest.is_empty();
    };
    for piece in pieces {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl RoleRules {
    /// Whether the role allows a DNS name (possibly `*.`-prefixed).
    pub fn check_dns(&self, name: &str) -> Result<(), IdentifierRefusal> {
        let wildcard = name.contains('*');
        // What the hostname and bare-domain checks see: the name without
        // its wildcard label.
        let base = if wildcard {
            if !self.allow_wildcard_certificates {
                return Err(IdentifierRefusal::new(
                    name,
                    "the Vault role does not allow wildcard certificates",
                ));
            }
            match name.strip_prefix("*.").filter(|rest| !rest.contains('*')) {
                Some(rest) => rest,
                None => {
                    return Err(IdentifierRefusal::new(
                        name,
                        "a wildcard must be the whole leftmost label",
                    ))
                }
            }
        } else {
            name
        };
        if self.enforce_hostnames && !is_hostname(base) {
            return Err(IdentifierRefusal::new(
                name,
                "the Vault role enforces host names and this is not one",
            ));
        }
        if self.allow_any_name
            || (self.allow_localhost && (name == "localhost" || name == "localdomain"))
        {
            return Ok(());
        }
        let allowed = self
            .allowed_domains
            .iter()
            .filter(|domain| !domain.is_empty())
            .any(|domain| self.domain_allows(domain, name, wildcard.then_some(base)));
        if allowed {
            Ok(())
        } else {
            Err(IdentifierRefusal::new(
                name,
                "the Vault role's allowed domains do not include this name",
            ))
        }
    }

    /// One `allowed_domains` entry against `name`; `wildcard_base` is the
    /// name without `*.` when it is a wildcard.
    fn domain_allows(&self, domain: &str, name: &str, wildcard_base: Option<&str>) -> bool {
        let bare = self.allow_bare_domains && name.eq_ignore_ascii_case(domain);
        let subdomain = self.allow_subdomains
            && (name
                .strip_suffix(domain)
                .is_some_and(|head| head.ends_with('.'))
                || wildcard_base.is_some_and(|base| base.eq_ignore_ascii_case(domain)));
        let glob = self.allow_glob_domains && domain.contains('*') && glob_matches(domain, name);
        bare || subdomain || glob
    }

    /// Whether the role allows an IP address SAN.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), IdentifierRefusal> {
        if self.allow_ip_sans {
            Ok(())
        } else {
            Err(IdentifierRefusal::new(
                &ip.to_string(),
                "the Vault role does not allow IP addresses",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_stars_cross_dots() {
        assert!(glob_matches("*.lab.example", "a.b.lab.example"));
        assert!(glob_matches("web-*.example", "web-1.example"));
        assert!(glob_matches("a*b*c", "aXbYc"));
        assert!(!glob_matches("a*b*c", "aXcYb"));
        assert!(!glob_matches("*.lab.example", "lab.example"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
    }

    #[test]
    fn role_read_parses_lists_either_way_and_fills_defaults() {
        let rules: RoleRules = serde_json::from_str(
            r#"{"allowed_domains":"lab.example, example.test","allow_subdomains":true,"key_type":"ec"}"#,
        )
        .unwrap();
        assert_eq!(rules.allowed_domains, ["lab.example", "example.test"]);
        assert!(rules.allow_subdomains && rules.allow_localhost && rules.enforce_hostnames);
        let rules: RoleRules = serde_json::from_str(r#"{"allowed_domains":null}"#).unwrap();
        assert!(rules.allowed_domains.is_empty());
    }

    #[test]
    fn ip_addresses_need_allow_ip_sans() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(RoleRules::default().check_ip(ip).is_ok());
        let rules = RoleRules {
            allow_ip_sans: false,
            ..RoleRules::default()
        };
        assert_eq!(rules.check_ip(ip).unwrap_err().identifier, "10.0.0.1");
    }
}
