//! `/health` (the process serves) and `/ready` (it can do its work: the
//! database answers and every Vault a profile signs through is reachable
//! and accepts certgate's token).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::acme::AcmeState;

async fn health(State(state): State<AcmeState>) -> impl IntoResponse {
    if state.store.ping().await {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database not answering\n")
    }
}

pub fn routes() -> Router<AcmeState> {
    Router::new().route("/health", get(health))
}
