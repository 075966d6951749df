//! The JSON shapes every Vault response takes: the success envelope that vaultrs
//! insists on (`request_id`, `lease_id`, `lease_duration`, `renewable` never null)
//! and the `{"errors":[…]}` bodies with the statuses Vault's HTTP layer uses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A refusal, rendered as Vault renders it: a status and an `errors` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultError {
    pub status: StatusCode,
    pub errors: Vec<String>,
}

/// Vault wraps errors raised inside request handling in a go-multierror, which
/// prints as this exact text; clients match on it, so it is reproduced byte for byte.
pub fn multierror(message: &str) -> String {
    format!("1 error occurred:\n\t* {message}\n\n")
}

impl VaultError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![message.into()],
        }
    }

    /// A 400 with the handler's plain message (role refusals, bad fields, bad CSRs).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// A read of something that does not exist: Vault answers 404 with an empty list.
    pub fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            errors: Vec::new(),
        }
    }

    /// The ACL refused the path (or no token was sent).
    pub fn permission_denied() -> Self {
        Self::new(StatusCode::FORBIDDEN, multierror("permission denied"))
    }

    /// The token is unknown, revoked or past its TTL.
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n",
        )
    }

    /// A path inside a mount that no handler serves.
    pub fn unsupported_path() -> Self {
        Self::new(StatusCode::NOT_FOUND, multierror("unsupported path"))
    }

    /// A known path used with a method it does not serve.
    pub fn unsupported_operation() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            multierror("unsupported operation"),
        )
    }

    /// A path that is under no mount at all.
    pub fn no_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no handler for route \"{path}\". route entry not found."),
        )
    }

    /// A PKI mount without an issuer cannot sign anything.
    pub fn no_ca() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            multierror(
                "could not fetch the CA certificate (was one set?): \
                 no default issuer currently configured",
            ),
        )
    }

    pub fn sealed() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "Vault is sealed")
    }

    pub fn rate_limited(path: &str) -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("request path \"{path}\": rate limit quota exceeded"),
        )
    }
}

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, axum::Json(json!({ "errors": self.errors }))).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A random version-4 UUID, the shape of Vault's `request_id`.
pub fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let variant = ["8", "9", "a", "b"][usize::from(b[8] >> 6)];
    format!(
        "{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        variant,
        &hex[17..20],
        &hex[20..32]
    )
}

/// The full success envelope; `data` and `auth` may each be null.
pub fn envelope(data: Value, auth: Value, warnings: &[String]) -> Response {
    let warnings = if warnings.is_empty() {
        Value::Null
    } else {
        json!(warnings)
    };
    let body = json!({
        "request_id": uuid(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": Value::Null,
        "warnings": warnings,
        "auth": auth,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// A 200 carrying `data`.
pub fn ok(data: Value) -> Response {
    envelope(data, Value::Null, &[])
}

/// A 200 carrying `data` and warnings.
pub fn ok_with_warnings(data: Value, warnings: &[String]) -> Response {
    envelope(data, Value::Null, warnings)
}

/// The result type of every handler: a response or a Vault error body.
pub type Reply = Result<Response, VaultError>;
