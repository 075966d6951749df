//! The embedded CA's certificate revocation list, served at [`CRL_PATH`].
//!
//! The revocation list is certgate's store: a certificate the embedded CA
//! issued and revokeCert revoked has `revoked_at` set. Each request builds
//! and signs a fresh CRL from it, so a revocation shows in the very next
//! fetch. Vault profiles are not covered: Vault publishes its own CRLs.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;

use super::local::{CrlEntry, EmbeddedCa, CRL_VALIDITY};
use super::RevocationReason;
use crate::acme::AcmeState;
use crate::store::Certificate;

/// Where the CRL is served, and what issued certificates name as their CRL
/// distribution point (after the external URL).
pub const CRL_PATH: &str = "/ca/crl.der";

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

/// `GET /ca/crl.der`: the embedded CA's CRL, DER, signed by its
/// intermediate. Certificates stay listed until they have been expired for
/// one CRL validity period, so every CRL current before their expiry lists
/// them (RFC 5280 §3.3). A 404 when no profile issues from the embedded CA.
pub async fn crl_der(State(state): State<AcmeState>) -> Response {
    let Some(ca) = state
        .profiles
        .iter()
        .find_map(|profile| profile.issuer.embedded_ca())
    else {
        return (
            StatusCode::NOT_FOUND,
            "no profile issues from the embedded CA, so it publishes no CRL\n",
        )
            .into_response();
    };
    let now = state.clock.now();
    let keep_from = now.saturating_sub(i64::try_from(CRL_VALIDITY.as_secs()).unwrap_or(i64::MAX));
    let revoked = match state.store.revoked_certificates(keep_from).await {
        Ok(revoked) => revoked,
        Err(e) => {
            tracing::error!(error = %e, "reading revoked certificates for the CRL");
            return (StatusCode::SERVICE_UNAVAILABLE, "database error\n").into_response();
        }
    };
    let entries: Vec<CrlEntry> = revoked.iter().filter_map(|c| entry(ca, c)).collect();
    let this_update = OffsetDateTime::from_unix_timestamp(now).unwrap_or(OffsetDateTime::now_utc());
    match ca.crl(&entries, this_update) {
        Ok(der) => (
            [
                (CONTENT_TYPE, "application/pkix-crl"),
                // Fresh on every request; a short cache spares the signing.
                (CACHE_CONTROL, "public, max-age=60"),
            ],
            der,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "signing the CRL");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "signing the CRL failed\n",
            )
                .into_response()
        }
    }
}
