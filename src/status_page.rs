//! `/status`: a read-only HTML page for people: profiles, Vault's state and
//! the certificates that expire soonest. Rendered on the server, no scripts.

use axum::Router;

use crate::acme::AcmeState;

pub fn routes() -> Router<AcmeState> {
    Router::new()
}
