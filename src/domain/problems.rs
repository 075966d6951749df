//! Where a store error becomes the problem document a client reads: the
//! one conversion every layer above the store relies on through `?`.

use axum::http::StatusCode;

use crate::protocol::problem::{Problem, ProblemType};
use crate::store::StoreError;

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(error = %e, "the database cannot take this write now");
            return Problem::new(
                ProblemType::ServerInternal,
                "certgate cannot store this right now; please retry shortly",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_retry_after(StoreError::RETRY_AFTER_SECS);
        }
        Problem::internal("database error", &e)
    }
}
