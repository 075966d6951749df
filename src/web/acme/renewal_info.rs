//! ACME Renewal Information (RFC 9773 §4): `GET /acme/renewal-info/<certID>`
//! tells a client when to renew, without authentication.

use axum::extract::State;

use crate::web::extract::Path;
use axum::http::header::RETRY_AFTER;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::profiles::Profiles;
use crate::protocol::ari::{suggested_window, CertId, RETRY_AFTER_SECS};
use crate::protocol::problem::Problem;
use crate::store::Store;
use crate::util::clock::rfc3339;
use crate::util::clock::Clock;
use std::sync::Arc;

pub async fn renewal_info(
    State(store): State<Store>,
    State(profiles): State<Arc<Profiles>>,
    State(clock): State<Arc<dyn Clock>>,
    Path(text): Path<String>,
) -> Result<Response, Problem> {
    let cert_id = CertId::parse(&text)?;
    let certificate = store
        .certificate_named_by(&cert_id)
        .await?
        .ok_or_else(|| Problem::not_found("certificate"))?;
    let start_fraction = profiles
        .get(&certificate.profile)
        .unwrap_or_else(|| profiles.default_profile())
        .renewal_window_start;
    let (start, end) = suggested_window(
        certificate.not_before,
        certificate.not_after,
        start_fraction,
        certificate.revoked_at.is_some(),
        clock.now(),
    );
    let mut response = axum::Json(json!({
        "suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}
    }))
    .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    Ok(response)
}
