//! Writing ACME responses: JSON bodies, problem documents, and the headers
//! RFC 8555 asks for.

use axum::http::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::protocol::problem::Problem;

/// Seconds a client should wait before polling a resource that is still
/// being worked on. Short, because validation and local issuance take well
/// under a second; lego and certbot honour it instead of their longer default.
pub const POLL_AFTER_SECS: u64 = 1;

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = serde_json::to_vec(&self).expect("a problem serializes");
        let mut response = (
            status,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A JSON resource response.
pub struct Json<T> {
    status: StatusCode,
    body: T,
    location: Option<String>,
    retry_after: bool,
}

impl<T: Serialize> Json<T> {
    pub fn ok(body: T) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            location: None,
            retry_after: false,
        }
    }

    pub fn created(body: T, location: String) -> Self {
        Self {
            status: StatusCode::CREATED,
            body,
            location: Some(location),
            retry_after: false,
        }
    }

    pub fn location(mut self, location: String) -> Self {
        self.location = Some(location);
        self
    }

    /// Adds `Retry-After` when `still_working` (RFC 8555 §7.4, §8.2).
    pub fn retry_after_if(mut self, still_working: bool) -> Self {
        self.retry_after = still_working;
        self
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let body = match serde_json::to_vec(&self.body) {
            Ok(body) => body,
            Err(e) => return Problem::internal("serializing a response", &e).into_response(),
        };
        let mut response = (
            self.status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(LOCATION, location);
        }
        if self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from(POLL_AFTER_SECS));
        }
        response
    }
}
