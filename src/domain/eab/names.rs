//! `--names` patterns: the names an account bound with a key may order.

use crate::protocol::identifier::IdentifierKind;
use crate::protocol::identifiers::{parse_dns, OrderedIdentifier};
use crate::vault::role_rules::RoleRules;

/// The names a `--names` key lets its account order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesLimit {
    pub(super) patterns: Vec<String>,
}

/// Why one `--names` pattern is refused, or `None` if it is usable.
fn pattern_error(pattern: &str) -> Option<String> {
    if pattern.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    let Some(star) = pattern.rfind('*') else {
        return parse_dns(pattern).err();
    };
    let legal = pattern
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.*".contains(&b));
    if !legal {
        return Some(format!(
            "{pattern:?}: a pattern has letters, digits, '-', '.' and '*' only"
        ));
    }
    let anchored = pattern[star + 1..]
        .split_once('.')
        .is_some_and(|(_, domain)| parse_dns(domain).is_ok());
    if !anchored {
        return Some(format!(
            "{pattern:?}: after the last '*' a pattern needs '.' and a domain \
             (as in *.nas.lab.example), so it cannot match names of other domains"
        ));
    }
    None
}

impl NamesLimit {
    /// Comma-separated patterns (see the module documentation).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut patterns: Vec<String> = Vec::new();
        for raw in text.split(',') {
            let pattern = raw.trim().to_ascii_lowercase();
            if pattern.is_empty() {
                continue;
            }
            if let Some(why) = pattern_error(&pattern) {
                return Err(why);
            }
            let pattern = match pattern.parse::<std::net::IpAddr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => pattern,
            };
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        if patterns.is_empty() {
            return Err("--names lists no names; leave it out for a key without a limit".into());
        }
        Ok(Self { patterns })
    }

    /// Patterns as stored, already checked when the key was made.
    pub fn from_stored(patterns: Vec<String>) -> Self {
        Self { patterns }
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The DNS patterns as a Vault role would hold them.
    fn rules(&self) -> RoleRules {
        RoleRules {
            allowed_domains: self
                .patterns
                .iter()
                .filter(|p| p.parse::<std::net::IpAddr>().is_err())
                .cloned()
                .collect(),
            allow_subdomains: false,
            allow_bare_domains: true,
            allow_glob_domains: true,
            allow_wildcard_certificates: true,
            allow_any_name: false,
            allow_localhost: false,
            enforce_hostnames: true,
            allow_ip_sans: false,
            ..RoleRules::default()
        }
    }

    pub fn allows(&self, identifier: &OrderedIdentifier) -> bool {
        match identifier.kind {
            IdentifierKind::Ip => self.patterns.contains(&identifier.ordered),
            IdentifierKind::Dns => self.rules().check_dns(&identifier.ordered).is_ok(),
        }
    }
}
