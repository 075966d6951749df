//! Switches that make the stand-in misbehave the way a real Vault (or the
//! network in front of it) does: sealed, slow, failing, dropping connections,
//! rate-limited, or a standby redirecting to the active node.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::envelope::{multierror, VaultError};

/// Non-default `sys/health` states (standby is set by `standby_redirect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthOverride {
    PerformanceStandby,
    DrSecondary,
    Uninitialized,
}

/// The current switches. Counters count requests still to be affected;
/// `u32::MAX` means "until switched off".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultState {
    pub sealed: bool,
    /// Added before every answer, health included.
    pub delay_ms: u64,
    pub fail_next: u32,
    /// The 5xx status used by `fail_next` (500 when 0).
    pub fail_status: u16,
    pub rate_limit_next: u32,
    /// Connections closed as the request arrives (never processed).
    pub drop_requests: u32,
    /// Connections closed instead of answering (processed, answer lost).
    pub drop_responses: u32,
    /// Active node address (`http://host:port`) this standby redirects to.
    pub standby_redirect: Option<String>,
    pub health: Option<HealthOverride>,
}

#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<FaultState>,
}

/// Uses up one unit of a counter; true when the fault applies.
fn take(counter: &mut u32) -> bool {
    match *counter {
        0 => false,
        u32::MAX => true,
        _ => {
            *counter -= 1;
            true
        }
    }
}

impl Faults {
    pub fn snapshot(&self) -> FaultState {
        self.state.lock().unwrap().clone()
    }

    pub fn set(&self, state: FaultState) {
        *self.state.lock().unwrap() = state;
    }

    pub fn update(&self, change: impl FnOnce(&mut FaultState)) {
        change(&mut self.state.lock().unwrap());
    }

    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.state.lock().unwrap().delay_ms)
    }

    pub fn take_drop_request(&self) -> bool {
        take(&mut self.state.lock().unwrap().drop_requests)
    }

    pub fn take_drop_response(&self) -> bool {
        take(&mut self.state.lock().unwrap().drop_responses)
    }

    /// The refusal an API request (not health) gets before reaching its
    /// handler, in Vault's order: sealed, standby, rate limit, then failure.
    pub fn gate(&self, path: &str, path_and_query: &str) -> Option<Response> {
        let mut state = self.state.lock().unwrap();
        if state.sealed {
            return Some(VaultError::sealed().into_response());
        }
        if let Some(active) = &state.standby_redirect {
            let location = format!("{}{}", active.trim_end_matches('/'), path_and_query);
            return Some(
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, location)],
                )
                    .into_response(),
            );
        }
        if take(&mut state.rate_limit_next) {
            return Some(VaultError::rate_limited(path).into_response());
        }
        if take(&mut state.fail_next) {
            let status = StatusCode::from_u16(state.fail_status)
                .ok()
                .filter(StatusCode::is_server_error)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some(VaultError::new(status, multierror("internal error")).into_response());
        }
        None
    }
}
