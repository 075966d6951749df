//! How a role decides whether it may certify one DNS name — the rules of
//! Vault's `ValidateNames`, in the order the contract lists them.

use super::role::Role;

/// True when `role` allows `name` as a common name or DNS SAN.
pub fn name_allowed(role: &Role, name: &str) -> bool {
    let is_wildcard = name.contains('*');
    // The name with a leading "*." removed: what hostname checks and the
    // "wildcard of a bare domain" rule look at.
    let rest = if is_wildcard {
        if !role.allow_wildcard_certificates {
            return false;
        }
        match wildcard_rest(name) {
            Some(rest) => rest,
            None => return false,
        }
    } else {
        name
    };

    if role.enforce_hostnames && !is_hostname(rest) {
        return false;
    }
    if role.allow_any_name {
        return true;
    }
    if role.allow_localhost && (name == "localhost" || name == "localdomain") {
        return true;
    }
    role.allowed_domains.iter().any(|domain| {
        (role.allow_bare_domains && name.eq_ignore_ascii_case(domain))
            || (role.allow_subdomains
                && (name.ends_with(&format!(".{domain}"))
                    || (is_wildcard && rest.eq_ignore_ascii_case(domain))))
            || (role.allow_glob_domains && domain.contains('*') && glob_match(domain, name))
    })
}

/// The part after `*.` when the name has exactly one `*` forming the whole
/// leftmost label; `None` for any other use of `*`.
fn wildcard_rest(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("*.")?;
    (!rest.contains('*') && !rest.is_empty()).then_some(rest)
}

/// Vault's hostname pattern: dot-separated labels of letters, digits and inner
/// hyphens (so `_` is refused).
pub fn is_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Glob match where `*` stands for any run of characters, dots included
/// (the behaviour of the glob library Vault uses).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut cursor = first.len();
    let end = text.len() - last.len();
    for middle in &parts[1..parts.len() - 1] {
        match text[cursor..end].find(middle) {
            Some(at) => cursor += at + middle.len(),
            None => return false,
        }
    }
    text.ends_with(last)
}
