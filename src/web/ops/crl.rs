//! `GET /ca/crl.der`: the embedded CA's certificate revocation list.

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::domain::profiles::Profiles;
use crate::issuer::crl;
use crate::store::Store;
use crate::util::clock::Clock;
use std::sync::Arc;

/// `GET /ca/crl.der`: the embedded CA's CRL, built anew for each request
/// (see [`crl`]). A 404 when no profile issues from the embedded CA.
pub async fn crl_der(
    State(store): State<Store>,
    State(profiles): State<Arc<Profiles>>,
    State(clock): State<Arc<dyn Clock>>,
) -> Response {
    let Some(ca) = profiles
        .iter()
        .find_map(|profile| profile.issuer.embedded_ca())
    else {
        return (
            StatusCode::NOT_FOUND,
            "no profile issues from the embedded CA, so it publishes no CRL\n",
        )
            .into_response();
    };
    let now = clock.now();
    let revoked = match store.revoked_certificates(crl::listed_from(now)).await {
        Ok(revoked) => revoked,
        Err(e) => {
            tracing::error!(error = %e, "reading revoked certificates for the CRL");
            return (StatusCode::SERVICE_UNAVAILABLE, "database error\n").into_response();
        }
    };
    match crl::revocation_list(ca, &revoked, now) {
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
