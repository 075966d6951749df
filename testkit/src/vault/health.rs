//! `GET /v1/sys/health`: not wrapped in the envelope, the node's state is in
//! the status code (200 active, 429 standby, 473 performance standby, 472 DR
//! secondary, 503 sealed, 501 not initialised), overridable by query flags.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::faults::{FaultState, HealthOverride};

pub const VERSION: &str = "1.15.6";

/// Which code applies and which query flag overrides it, Vault's precedence.
fn status_for(state: &FaultState, query: &HashMap<String, String>) -> u16 {
    let code = |name: &str, default: u16| {
        query
            .get(name)
            .and_then(|v| v.parse::<u16>().ok())
            .unwrap_or(default)
    };
    let flag = |name: &str| query.get(name).is_some_and(|v| v.is_empty() || v == "true");
    match (state.health, state.sealed, state.standby_redirect.is_some()) {
        (Some(HealthOverride::Uninitialized), _, _) => code("uninitcode", 501),
        (_, true, _) => code("sealedcode", 503),
        (Some(HealthOverride::DrSecondary), _, _) => code("drsecondarycode", 472),
        (Some(HealthOverride::PerformanceStandby), _, _) if flag("perfstandbyok") => {
            code("activecode", 200)
        }
        (Some(HealthOverride::PerformanceStandby), _, _) => code("performancestandbycode", 473),
        (_, _, true) if flag("standbyok") => code("activecode", 200),
        (_, _, true) => code("standbycode", 429),
        _ => code("activecode", 200),
    }
}

pub fn health(state: &FaultState, now: i64, query: &HashMap<String, String>) -> Response {
    let uninitialized = state.health == Some(HealthOverride::Uninitialized);
    let perf = state.health == Some(HealthOverride::PerformanceStandby);
    let body = json!({
        "initialized": !uninitialized,
        "sealed": state.sealed || uninitialized,
        "standby": state.standby_redirect.is_some() || perf || state.sealed,
        "performance_standby": perf,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": if state.health == Some(HealthOverride::DrSecondary) { "secondary" } else { "disabled" },
        "server_time_utc": now,
        "version": VERSION,
        "cluster_name": "certgate-test-cluster",
        "cluster_id": "5d0ec6f8-0b35-4e4a-9c52-4c1f0e0a1c7e",
    });
    let status = StatusCode::from_u16(status_for(state, query)).unwrap_or(StatusCode::OK);
    (status, axum::Json(body)).into_response()
}
