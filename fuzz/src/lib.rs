//! What each fuzz target does with its input, kept apart from the
//! `fuzz_target!` entry points so that `tests/` replays every committed
//! corpus file through exactly the same code.
//!
//! Each target calls the function certgate calls in production on bytes a
//! stranger sent (a client, a DNS server, a TLS peer, Vault) and, where
//! there is one, checks a property that must hold whatever the input:
//! a problem document survives a round trip, a thumbprint does not depend
//! on how the JWK was written, a JWS signed as the header says verifies.

pub mod dns_records;
pub mod jws;
pub mod jws_structured;
pub mod payloads;
pub mod problem;
pub mod vault_responses;
pub mod x509;

/// The account every target acts for, where one is needed.
pub const ACCOUNT_URL: &str = "https://certgate.test/acme/acct/ours";
/// The issuer domain name certgate serves under, for CAA and dns-persist-01.
pub const ISSUER_DOMAIN: &str = "certgate.test";

/// `data` cut at its first NUL: the text before (lossy UTF-8) and the
/// bytes after; all of it as bytes when there is no NUL.
pub fn split_at_nul(data: &[u8]) -> (String, &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (
            String::from_utf8_lossy(&data[..at]).into_owned(),
            &data[at + 1..],
        ),
        None => (String::new(), data),
    }
}

/// Names listed in `text`, separated by commas, lower-cased as an order
/// keeps them.
pub fn names(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}
