//! Which identifiers an order may name, written the one way we store them.

use super::identifier::{Identifier, IdentifierKind, WireIdentifier};
use super::problem::{Problem, ProblemType, Subproblem};

/// Most identifiers in one order; more is a mistake or an attack.
pub const MAX_IDENTIFIERS: usize = 100;

/// An identifier after checking, written the one way it is stored: a DNS
/// name in lower case, an IP address in its canonical text (RFC 5952 for v6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderedIdentifier {
    pub kind: IdentifierKind,
    /// As ordered, e.g. `*.lab.example`, `nas.lab.example` or `10.0.0.5`.
    pub ordered: String,
    /// What is validated: `lab.example` for `*.lab.example`.
    pub base: String,
    pub wildcard: bool,
}

impl OrderedIdentifier {
    /// The identifier as the order lists it.
    pub fn as_ordered(&self) -> Identifier {
        Identifier::new(self.kind, &self.ordered)
    }

    /// The identifier its authorization proves (no wildcard label).
    pub fn as_authorized(&self) -> Identifier {
        Identifier::new(self.kind, &self.base)
    }
}

/// An IP identifier's value in canonical form.
pub fn parse_ip(value: &str) -> Result<OrderedIdentifier, String> {
    let ip: std::net::IpAddr = value
        .parse()
        .map_err(|_| format!("{value:?} is not an IPv4 or IPv6 address"))?;
    let canonical = ip.to_string();
    Ok(OrderedIdentifier {
        kind: IdentifierKind::Ip,
        ordered: canonical.clone(),
        base: canonical,
        wildcard: false,
    })
}

/// Why a DNS name is not acceptable, or `None` when it is a valid host name.
fn hostname_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > 253 {
        return Some("is longer than 253 characters");
    }
    if name.ends_with('.') {
        return Some("ends with a dot");
    }
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Some("is an IP address; use an identifier of type ip");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some("has an empty label");
        }
        if label.len() > 63 {
            return Some("has a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Some("has characters other than letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some("has a label that starts or ends with '-'");
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some("ends in an all-numeric label");
    }
    None
}

/// True for an address that stands for "this host" or "any address" rather
/// than one host: `0.0.0.0/8` (RFC 1122 §3.2.1.3), `::` and `::ffff:0.0.0.0/104`.
/// Connecting to one reaches the connecting machine itself, so no deny list
/// could keep it out; such an address is never an identifier and never
/// connected to.
pub fn is_unspecified(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.octets()[0] == 0,
        std::net::IpAddr::V6(v6) => {
            v6.is_unspecified() || v6.to_ipv4_mapped().is_some_and(|v4| v4.octets()[0] == 0)
        }
    }
}

/// Checks one DNS identifier value.
pub fn parse_dns(value: &str) -> Result<OrderedIdentifier, String> {
    let ordered = value.to_ascii_lowercase();
    let (base, wildcard) = match ordered.strip_prefix("*.") {
        Some(rest) => (rest.to_owned(), true),
        None => (ordered.clone(), false),
    };
    if base.contains('*') {
        return Err(format!(
            "{value:?}: a wildcard must be the whole leftmost label, as in *.example.test"
        ));
    }
    if let Some(why) = hostname_error(&base) {
        return Err(format!("{value:?} {why}"));
    }
    Ok(OrderedIdentifier {
        kind: IdentifierKind::Dns,
        ordered,
        base,
        wildcard,
    })
}

/// Checks and normalises the identifiers of a newOrder: at least one, at
/// most [`MAX_IDENTIFIERS`], duplicates (ignoring case) merged. All problems
/// are reported at once, one subproblem per identifier (RFC 8555 §6.7.1).
pub fn check_order_identifiers(
    identifiers: &[WireIdentifier],
) -> Result<Vec<OrderedIdentifier>, Problem> {
    if identifiers.is_empty() {
        return Err(Problem::malformed("an order needs at least one identifier"));
    }
    if identifiers.len() > MAX_IDENTIFIERS {
        return Err(Problem::new(
            ProblemType::RejectedIdentifier,
            format!("an order may have at most {MAX_IDENTIFIERS} identifiers"),
        ));
    }
    let mut names: Vec<OrderedIdentifier> = Vec::new();
    let mut subproblems = Vec::new();
    for identifier in identifiers {
        let outcome = match identifier.known_kind() {
            Some(IdentifierKind::Dns) => {
                parse_dns(&identifier.value).map_err(|e| (ProblemType::RejectedIdentifier, e))
            }
            Some(IdentifierKind::Ip) => match parse_ip(&identifier.value) {
                Ok(ip) if ip.ordered.parse().is_ok_and(is_unspecified) => Err((
                    ProblemType::RejectedIdentifier,
                    format!(
                        "{} is an unspecified address, not the address of a host",
                        ip.ordered
                    ),
                )),
                parsed => parsed.map_err(|e| (ProblemType::Malformed, e)),
            },
            None => Err((
                ProblemType::UnsupportedIdentifier,
                format!(
                    "identifier type {:?} is not supported; use dns or ip",
                    identifier.kind
                ),
            )),
        };
        match outcome {
            Ok(name)
                if names
                    .iter()
                    .any(|n| n.kind == name.kind && n.ordered == name.ordered) => {}
            Ok(name) => names.push(name),
            Err((kind, detail)) => subproblems.push(Subproblem {
                kind,
                detail,
                identifier: identifier.clone(),
            }),
        }
    }
    match subproblems.len() {
        0 => Ok(names),
        1 => {
            let only = subproblems.remove(0);
            Err(Problem::new(only.kind, only.detail.clone()).with_subproblems(vec![only]))
        }
        n => Err(Problem::new(
            ProblemType::RejectedIdentifier,
            format!("{n} identifiers cannot be issued for"),
        )
        .with_subproblems(subproblems)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_host_names_and_leftmost_wildcards() {
        for (value, base, wildcard) in [
            ("nas.lab.example", "nas.lab.example", false),
            ("NAS.Lab.Example", "nas.lab.example", false),
            ("*.home.test", "home.test", true),
            ("localhost", "localhost", false),
            ("xn--bcher-kva.example", "xn--bcher-kva.example", false),
        ] {
            let name = parse_dns(value).unwrap();
            assert_eq!(
                (name.base.as_str(), name.wildcard),
                (base, wildcard),
                "{value}"
            );
        }
    }

    #[test]
    fn refuses_malformed_names() {
        for value in [
            "",
            "a..b",
            "-a.test",
            "a-.test",
            "a_b.test",
            "*.*.test",
            "a.*.test",
            "*",
            "*.",
            "x.test.",
            "127.0.0.1",
            "a.123",
            "ünicode.test",
        ] {
            assert!(parse_dns(value).is_err(), "{value:?} accepted");
        }
        assert!(parse_dns(&format!("{}.test", "a".repeat(64))).is_err());
    }

    #[test]
    fn ip_identifiers_are_written_canonically() {
        assert_eq!(parse_ip("127.0.0.1").unwrap().ordered, "127.0.0.1");
        assert_eq!(parse_ip("2001:DB8:0:0::1").unwrap().ordered, "2001:db8::1");
        for bad in ["127.0.0.01", "localhost", "10.0.0.0/8", "::ffff:zz"] {
            assert!(parse_ip(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unspecified_addresses_are_rejected_identifiers() {
        for value in ["0.0.0.0", "0.1.2.3", "::", "::ffff:0.0.0.0", "0:0::0"] {
            let problem =
                check_order_identifiers(&[Identifier::new(IdentifierKind::Ip, value).into()])
                    .unwrap_err();
            assert_eq!(problem.kind, ProblemType::RejectedIdentifier, "{value}");
        }
        for value in ["1.0.0.0", "127.0.0.1", "::1", "10.0.0.5", "::ffff:1.2.3.4"] {
            assert!(
                check_order_identifiers(&[Identifier::new(IdentifierKind::Ip, value).into()])
                    .is_ok(),
                "{value}"
            );
        }
    }

    #[test]
    fn merges_duplicates_and_reports_every_bad_identifier() {
        let ids = [
            Identifier::dns("a.test").into(),
            Identifier::dns("A.TEST").into(),
            Identifier::dns("b.test").into(),
        ];
        assert_eq!(check_order_identifiers(&ids).unwrap().len(), 2);

        let bad = [
            Identifier::dns("ok.test").into(),
            Identifier::dns("bad_name.test").into(),
            WireIdentifier {
                kind: "email".into(),
                value: "a@b.test".into(),
            },
        ];
        let problem = check_order_identifiers(&bad).unwrap_err();
        assert_eq!(problem.kind, ProblemType::RejectedIdentifier);
        assert_eq!(problem.subproblems.len(), 2);
        assert_eq!(
            problem.subproblems[1].kind,
            ProblemType::UnsupportedIdentifier
        );
    }
}
