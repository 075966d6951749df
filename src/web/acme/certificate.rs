//! Certificate download (RFC 8555 §7.4.2).

use axum::extract::State;

use crate::web::extract::Path;
use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use super::owned;
use crate::protocol::problem::Problem;
use crate::store::Store;
use crate::web::request::SignedRequest;

pub async fn certificate(
    State(store): State<Store>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    request.require_post_as_get()?;
    let certificate = store.certificate(&id).await?;
    let certificate = owned(certificate, |c| &c.account_id, &request, "certificate")?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("application/pem-certificate-chain"),
        )],
        certificate.chain_pem,
    )
        .into_response())
}
