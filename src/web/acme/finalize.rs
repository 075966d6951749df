//! Finalize (RFC 8555 §7.4): check the CSR, then issue exactly once.

use axum::extract::{Path, State};
use axum::response::Response;

use super::order::{order_response, owned_order};
use crate::protocol::csr;
use crate::protocol::jwk::PublicJwk;
use crate::protocol::problem::{Problem, ProblemType};
use crate::protocol::status::OrderStatus;
use crate::protocol::types::FinalizeRequest;
use crate::web::request::SignedRequest;
use crate::web::AcmeState;

fn not_ready(status: OrderStatus) -> Problem {
    Problem::new(
        ProblemType::OrderNotReady,
        format!("order is {status}; only a ready order can be finalized"),
    )
}

pub async fn finalize(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let order = owned_order(&state, &request, &id).await?;
    let now = state.clock.now();
    let status = order.effective_status(now);
    if status != OrderStatus::Ready {
        return Err(not_ready(status));
    }
    let body: FinalizeRequest = request.json()?;
    let account_key = PublicJwk::parse(&request.account()?.jwk)
        .map_err(|e| Problem::internal("stored account key does not parse", &e))?;
    let order_names: Vec<String> = order.identifiers.iter().map(|i| i.value.clone()).collect();
    let accepted = csr::check(&body.csr, &order_names, &account_key)?;

    // Only one finalize can move the order from ready to processing; a
    // concurrent one sees the order already processing and is refused.
    if !state.store.begin_finalize(&id, &accepted.der, now).await? {
        let current = state
            .store
            .order(&id)
            .await?
            .map_or(OrderStatus::Invalid, |o| o.effective_status(now));
        return Err(not_ready(current));
    }
    let task = state.workers.spawn_issuance(id.clone());
    let _ = tokio::time::timeout(state.lifetimes.answer_wait, task).await;

    let order = state
        .store
        .order(&id)
        .await?
        .ok_or_else(|| Problem::not_found("order"))?;
    Ok(order_response(&state, &request, &order))
}
