//! keyChange: account key rollover (RFC 8555 §7.3.5).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::acme::problem::Problem;

pub async fn key_change() -> Response {
    Problem::malformed("this server does not implement key rollover yet")
        .with_status(StatusCode::NOT_IMPLEMENTED)
        .into_response()
}
