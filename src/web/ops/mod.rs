//! The routes for operators and for what sits around certgate: health and
//! readiness, metrics, the status page, the embedded CA's root and CRL.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::domain::profiles::Profiles;
use crate::issuer::local::CRL_PATH;
use crate::protocol::paths;
use std::sync::Arc;

pub mod ca_metrics;
pub mod crl;
pub mod health;
pub mod metrics;
pub mod status_page;

/// The embedded root, which certgate's own TLS certificate chains to.
pub async fn root_pem(State(root_pem): State<Arc<str>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/x-pem-file")],
        root_pem.to_string(),
    )
}

/// A plain-text page saying where the directories are.
pub async fn index(
    State(profiles): State<Arc<Profiles>>,
    State(root_pem): State<Arc<str>>,
) -> String {
    let mut page = format!(
        "certgate {}: an ACME server (RFC 8555)\nACME directory: {} (profile {})\n",
        env!("CARGO_PKG_VERSION"),
        paths::directory(None),
        profiles.default_profile().name
    );
    for profile in profiles.iter() {
        page.push_str(&format!(
            "Profile {}: {}\n",
            profile.name,
            paths::directory(Some(&profile.name))
        ));
    }
    page.push_str("Root of certgate's own TLS and of the embedded CA: /ca/root.pem\n");
    if let Some(digest) = crate::util::fingerprint::of_first_pem_certificate(root_pem.as_bytes()) {
        page.push_str(&format!(
            "Its SHA-256 fingerprint: {} (compare it with `certgate ca fingerprint` on the server; this page alone proves nothing)\n",
            crate::util::fingerprint::colon_hex(&digest)
        ));
    }
    if profiles
        .iter()
        .any(|profile| profile.issuer.embedded_ca().is_some())
    {
        page.push_str(&format!(
            "Certificate revocation list of the embedded CA: {CRL_PATH}\n"
        ));
    }
    page.push_str(&format!(
        "ACME Renewal Information (RFC 9773): {}/<certID>\n",
        paths::resource("renewal-info")
    ));
    page
}
