//! Certificate download (RFC 8555 §7.4.2).

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use crate::acme::problem::Problem;
use crate::acme::request::SignedRequest;
use crate::acme::AcmeState;

pub async fn certificate(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    request.require_post_as_get()?;
    let account = request.account()?;
    let certificate = state
        .store
        .certificate(&id)
        .await?
        .ok_or_else(|| Problem::not_found("certificate"))?;
    if certificate.account_id != account.id {
        return Err(Problem::unauthorized(
            "this certificate belongs to another account",
        ));
    }
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/pem-certificate-chain"),
        )],
        certificate.chain_pem,
    )
        .into_response())
}
