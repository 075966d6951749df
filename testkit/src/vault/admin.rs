//! Control over HTTP for manual use (outside `/v1/`, so no Vault client can
//! reach it by accident): read and set the fault switches, expire tokens,
//! move the clock, read the record.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::faults::FaultState;
use super::record::snapshot;
use super::state::App;

pub const PREFIX: &str = "/_standin";

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/faults", get(faults).post(set_faults))
        .route("/expire-tokens", post(expire_tokens))
        .route("/advance-clock", post(advance_clock))
        .route("/record", get(record))
}

async fn faults(State(app): State<Arc<App>>) -> Json<FaultState> {
    Json(app.faults.snapshot())
}

/// Replaces every switch at once; fields left out are off.
async fn set_faults(
    State(app): State<Arc<App>>,
    Json(state): Json<FaultState>,
) -> Json<FaultState> {
    app.faults.set(state);
    Json(app.faults.snapshot())
}

async fn expire_tokens(State(app): State<Arc<App>>) -> Json<Value> {
    app.tokens.expire_all(app.clock.unix());
    Json(json!({ "expired": true }))
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance_clock(State(app): State<Arc<App>>, Json(by): Json<Advance>) -> Json<Value> {
    app.clock.advance(Duration::from_secs(by.seconds));
    Json(json!({ "now": app.clock.unix() }))
}

async fn record(State(app): State<Arc<App>>) -> Json<Value> {
    let record = &app.record;
    Json(json!({
        "signs": snapshot(&record.signs),
        "revocations": snapshot(&record.revocations),
        "logins": snapshot(&record.logins),
        "renewals": snapshot(&record.renewals),
    }))
}
