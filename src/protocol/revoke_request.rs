//! The revokeCert payload (RFC 8555 §7.6) read as far as it can be without
//! state: the certificate must be one DER X.509 certificate, in base64url.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::problem::Problem;

/// The revokeCert payload.
#[derive(Debug, Deserialize)]
pub struct RevokePayload {
    /// base64url DER of the certificate (the leaf).
    pub certificate: String,
    /// A CRLReason code (RFC 5280 §5.3.1); absent means unspecified.
    #[serde(default)]
    pub reason: Option<i64>,
}

/// The certificate asked to be revoked, as DER that parses as exactly one
/// X.509 certificate.
pub fn certificate_der(payload: &RevokePayload) -> Result<Vec<u8>, Problem> {
    let der = URL_SAFE_NO_PAD
        .decode(payload.certificate.trim_end_matches('='))
        .map_err(|_| Problem::malformed("certificate is not base64url"))?;
    parse_certificate(&der)?;
    Ok(der)
}

/// `der` parsed, with nothing after it.
pub fn parse_certificate(der: &[u8]) -> Result<X509Certificate<'_>, Problem> {
    let (rest, leaf) = X509Certificate::from_der(der)
        .map_err(|e| Problem::malformed(format!("certificate does not parse as X.509: {e}")))?;
    if !rest.is_empty() {
        return Err(Problem::malformed(
            "certificate has trailing bytes after its DER encoding",
        ));
    }
    Ok(leaf)
}
