//! Prometheus metrics: what certgate counts while it works, and what it
//! reads from the database when scraped.

use axum::Router;

use crate::acme::AcmeState;

/// Every metric certgate keeps; shared by the handlers, the background
/// tasks and the Vault client.
#[derive(Debug, Default)]
pub struct Metrics {}

/// `/metrics`.
pub fn routes() -> Router<AcmeState> {
    Router::new()
}
