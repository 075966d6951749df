//! newOrder and the order resource (RFC 8555 §7.4).

use axum::extract::State;

use crate::web::extract::Path;
use axum::response::{IntoResponse, Response};

use super::{owned, views};
use crate::domain::orders::Orders;
use crate::protocol::problem::Problem;
use crate::protocol::status::OrderStatus;
use crate::protocol::types::NewOrderRequest;
use crate::store::{Order, Store};
use crate::util::clock::Clock;
use crate::web::request::SignedRequest;
use crate::web::response::Json;
use std::sync::Arc;

/// newOrder: the rules are [`Orders::place`]'s; this reads the signed
/// request and the directory it came through, and answers `201 Created`.
pub async fn new_order(
    State(orders): State<Arc<Orders>>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let account = request.account()?;
    let body: NewOrderRequest = request.json()?;
    let placed = orders.place(account, request.urls.profile(), &body).await?;
    let location = request.urls.order(&placed.order.id);
    let view = views::order(&request.urls, &placed.order, placed.at);
    Ok(Json::created(view, location).into_response())
}

/// Loads an order that belongs to the signing account.
pub async fn owned_order(
    store: &Store,
    request: &SignedRequest,
    id: &str,
) -> Result<Order, Problem> {
    tracing::Span::current().record("order", id);
    owned(store.order(id).await?, |o| &o.account_id, request, "order")
}

/// An order response, with `Retry-After` while the client must keep polling.
pub fn order_response(request: &SignedRequest, order: &Order, now: i64) -> Response {
    let view = views::order(&request.urls, order, now);
    let working = matches!(view.status, OrderStatus::Pending | OrderStatus::Processing);
    Json::ok(view)
        .location(request.urls.order(&order.id))
        .retry_after_if(working)
        .into_response()
}

pub async fn order(
    State(store): State<Store>,
    State(clock): State<Arc<dyn Clock>>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    request.require_post_as_get()?;
    let order = owned_order(&store, &request, &id).await?;
    Ok(order_response(&request, &order, clock.now()))
}
