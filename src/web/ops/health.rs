//! `/health` (the process serves) and `/ready` (it can do its work; see
//! [`crate::domain::readiness`]).

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::domain::readiness::ReadinessProbe;
use crate::web::AcmeState;
use std::sync::Arc;

/// Liveness: the process serves requests.
async fn health() -> impl IntoResponse {
    ([(CACHE_CONTROL, "no-store")], "ok\n")
}

/// Readiness: 200 or 503, with one line per check either way.
async fn ready(State(readiness): State<Arc<ReadinessProbe>>) -> impl IntoResponse {
    let readiness = readiness.current().await;
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body: String = readiness
        .checks
        .iter()
        .map(|check| format!("{check}\n"))
        .collect();
    (
        status,
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
        ],
        body,
    )
}

pub fn routes() -> Router<AcmeState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}
