//! The embedded CA's certificate revocation list, served at
//! [`CRL_PATH`](super::local::CRL_PATH).
//!
//! The revocation list is certgate's store: a certificate the embedded CA
//! issued and revokeCert revoked has `revoked_at` set. Each request builds
//! and signs a fresh CRL from it, so a revocation shows in the very next
//! fetch. Vault profiles are not covered: Vault publishes its own CRLs.

use time::OffsetDateTime;

use super::local::{CaError, CrlEntry, EmbeddedCa, CRL_VALIDITY};
use super::RevocationReason;
use crate::store::Certificate;

/// The CRL entry of a stored certificate, if the embedded CA issued it.
fn entry(ca: &EmbeddedCa, certificate: &Certificate) -> Option<CrlEntry> {
    let revoked_at = certificate.revoked_at?;
    let leaf = pem::parse_many(&certificate.chain_pem)
        .ok()?
        .into_iter()
        .next()?;
    if !ca.issued(leaf.contents()) {
        return None;
    }
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.contents()).ok()?;
    Some(CrlEntry {
        serial: parsed.raw_serial().to_vec(),
        revoked_at,
        reason: certificate
            .revocation_reason
            .and_then(RevocationReason::from_code)
            .unwrap_or(RevocationReason::Unspecified),
    })
}

/// How far back (unix seconds) revoked certificates must still be listed
/// at `now`: until they have been expired for one CRL validity period, so
/// every CRL current before their expiry lists them (RFC 5280 §3.3).
pub fn listed_from(now: i64) -> i64 {
    now.saturating_sub(i64::try_from(CRL_VALIDITY.as_secs()).unwrap_or(i64::MAX))
}

/// The CRL of `ca` at `now` (DER, signed by its intermediate), listing those
/// of `revoked` that it issued.
pub fn revocation_list(
    ca: &EmbeddedCa,
    revoked: &[Certificate],
    now: i64,
) -> Result<Vec<u8>, CaError> {
    let entries: Vec<CrlEntry> = revoked.iter().filter_map(|c| entry(ca, c)).collect();
    let this_update = OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::now_utc());
    ca.crl(&entries, this_update)
}
