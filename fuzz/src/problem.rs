//! Problem documents: stored as an order's or a challenge's `error` and
//! read back, and sent to clients.

use axum::response::IntoResponse;
use certgate::protocol::problem::Problem;

/// A problem that parses survives being written and read again unchanged,
/// and becomes a response with its own status.
pub fn round_trip(data: &[u8]) {
    let Ok(problem) = serde_json::from_slice::<Problem>(data) else {
        return;
    };
    let written = serde_json::to_vec(&problem).expect("a problem serializes");
    let read: Problem = serde_json::from_slice(&written).expect("a written problem parses");
    assert_eq!(read, problem);
    let response = problem.clone().into_response();
    assert_eq!(response.status(), problem.status_code());
}
