//! Finalize (RFC 8555 §7.4): the rules are [`Finalize`]'s; this reads the
//! signed request and answers with the order.

use axum::extract::State;

use crate::web::extract::Path;
use axum::response::Response;

use super::order::{order_response, owned_order};
use crate::domain::finalize::Finalize;
use crate::protocol::jwk::PublicJwk;
use crate::protocol::problem::Problem;
use crate::protocol::types::FinalizeRequest;
use crate::web::request::SignedRequest;

pub async fn finalize(
    State(finalize): State<Finalize>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let order = owned_order(&finalize.store, &request, &id).await?;
    finalize.check_ready(&order, request.account()?).await?;
    let body: FinalizeRequest = request.json()?;
    let account_key = PublicJwk::parse(&request.account()?.jwk)
        .map_err(|e| Problem::internal("stored account key does not parse", &e))?;
    let order = finalize.finalize(&order, &body.csr, &account_key).await?;
    Ok(order_response(&request, &order, finalize.clock.now()))
}
