//! revokeCert (RFC 8555 §7.6).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::acme::problem::Problem;

pub async fn revoke_cert() -> Response {
    Problem::malformed("this server does not implement revocation yet")
        .with_status(StatusCode::NOT_IMPLEMENTED)
        .into_response()
}
