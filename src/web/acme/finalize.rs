//! Finalize (RFC 8555 §7.4): check the CSR, then issue exactly once.

use axum::extract::State;

use crate::web::extract::Path;
use axum::response::Response;

use super::order::{order_response, owned_order};
use crate::config::rate_limits::RateLimits;
use crate::domain::workers::Workers;
use crate::protocol::csr;
use crate::protocol::identifiers::check_order_identifiers;
use crate::protocol::jwk::PublicJwk;
use crate::protocol::problem::{Problem, ProblemType};
use crate::protocol::status::OrderStatus;
use crate::protocol::types::FinalizeRequest;
use crate::store::Store;
use crate::util::clock::Clock;
use crate::web::request::SignedRequest;
use crate::web::Lifetimes;
use std::sync::Arc;

fn not_ready(status: OrderStatus) -> Problem {
    Problem::new(
        ProblemType::OrderNotReady,
        format!("order is {status}; only a ready order can be finalized"),
    )
}

pub async fn finalize(
    State(store): State<Store>,
    State(workers): State<Arc<Workers>>,
    State(clock): State<Arc<dyn Clock>>,
    State(lifetimes): State<Lifetimes>,
    State(rate_limits): State<RateLimits>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let order = owned_order(&store, &request, &id).await?;
    let now = clock.now();
    let status = order.effective_status(now);
    if status != OrderStatus::Ready {
        return Err(not_ready(status));
    }
    crate::domain::eab::check_binding_in_force(&store, &order.account_id).await?;
    let body: FinalizeRequest = request.json()?;
    let account_key = PublicJwk::parse(&request.account()?.jwk)
        .map_err(|e| Problem::internal("stored account key does not parse", &e))?;
    let order_names: Vec<String> = order.identifiers.iter().map(|i| i.value.clone()).collect();
    let accepted = csr::check(&body.csr, &order_names, &account_key)?;

    // The certificate counts against its names' per-domain limits from
    // here, when they are validated, and not at newOrder.
    let names = check_order_identifiers(&order.identifiers)?;
    let buckets = rate_limits.certificate_buckets(&names);
    // Only one finalize can move the order from ready to processing; a
    // concurrent one sees the order already processing and is refused.
    let started = match store
        .begin_finalize(&id, &accepted.der, &buckets, now, &workers.leases.fresh())
        .await?
    {
        Ok(started) => started,
        Err(refusal) => {
            tracing::info!(bucket = %refusal.bucket.key, retry_after = refusal.retry_after, "finalize refused by a rate limit");
            return Err(refusal.problem());
        }
    };
    if !started {
        let current = store
            .order(&id)
            .await?
            .map_or(OrderStatus::Invalid, |o| o.effective_status(now));
        return Err(not_ready(current));
    }
    let task = workers.spawn_issuance(id.clone());
    let _ = tokio::time::timeout(lifetimes.answer_wait, task).await;

    let order = store
        .order(&id)
        .await?
        .ok_or_else(|| Problem::not_found("order"))?;
    Ok(order_response(&request, &order, clock.now()))
}
