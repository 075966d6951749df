//! ACME Renewal Information (RFC 9773).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::acme::problem::Problem;

pub async fn renewal_info(Path(_cert_id): Path<String>) -> Response {
    Problem::malformed("renewal information is not available yet")
        .with_status(StatusCode::NOT_IMPLEMENTED)
        .into_response()
}
