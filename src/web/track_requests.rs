//! Counting HTTP requests by route template and status code.
//!
//! The label is the template a request matched (`/acme/order/{id}`), which
//! the routes bound; a path that matched nothing counts under one fixed
//! label, so scanners probing random paths add no series.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::Metrics;

/// The endpoint label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Middleware for the whole application: counts each answered request.
pub async fn track_requests(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    metrics.request(endpoint, response.status().as_u16());
    response
}
