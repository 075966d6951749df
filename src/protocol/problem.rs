//! RFC 7807 problem documents with the ACME error types of RFC 8555 §6.7.
//!
//! Every failure a client can see goes through [`Problem`], so the wire format,
//! the status code and the `urn:ietf:params:acme:error:` prefix live in one
//! place. Internal detail (database errors, stack of causes) is logged by the
//! code that turns an internal error into `serverInternal`, never sent.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::identifier::WireIdentifier;

/// The ACME error types certgate emits (RFC 8555 §6.7 and later documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    AccountDoesNotExist,
    /// RFC 9773: the certificate named in `replaces` already has a replacement.
    AlreadyReplaced,
    AlreadyRevoked,
    BadCsr,
    BadNonce,
    BadPublicKey,
    BadRevocationReason,
    BadSignatureAlgorithm,
    Caa,
    Connection,
    Dns,
    ExternalAccountRequired,
    IncorrectResponse,
    InvalidContact,
    /// draft-ietf-acme-profiles: newOrder named a profile the server lacks.
    InvalidProfile,
    Malformed,
    OrderNotReady,
    RateLimited,
    RejectedIdentifier,
    ServerInternal,
    Tls,
    Unauthorized,
    UnsupportedContact,
    UnsupportedIdentifier,
}

impl ProblemType {
    pub const ALL: [ProblemType; 24] = [
        Self::AccountDoesNotExist,
        Self::AlreadyReplaced,
        Self::AlreadyRevoked,
        Self::BadCsr,
        Self::BadNonce,
        Self::BadPublicKey,
        Self::BadRevocationReason,
        Self::BadSignatureAlgorithm,
        Self::Caa,
        Self::Connection,
        Self::Dns,
        Self::ExternalAccountRequired,
        Self::IncorrectResponse,
        Self::InvalidContact,
        Self::InvalidProfile,
        Self::Malformed,
        Self::OrderNotReady,
        Self::RateLimited,
        Self::RejectedIdentifier,
        Self::ServerInternal,
        Self::Tls,
        Self::Unauthorized,
        Self::UnsupportedContact,
        Self::UnsupportedIdentifier,
    ];

    /// The type whose [`name`](Self::name) is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The name after `urn:ietf:params:acme:error:`.
    pub fn name(self) -> &'static str {
        match self {
            Self::AccountDoesNotExist => "accountDoesNotExist",
            Self::AlreadyReplaced => "alreadyReplaced",
            Self::AlreadyRevoked => "alreadyRevoked",
            Self::BadCsr => "badCSR",
            Self::BadNonce => "badNonce",
            Self::BadPublicKey => "badPublicKey",
            Self::BadRevocationReason => "badRevocationReason",
            Self::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Self::Caa => "caa",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::ExternalAccountRequired => "externalAccountRequired",
            Self::IncorrectResponse => "incorrectResponse",
            Self::InvalidContact => "invalidContact",
            Self::InvalidProfile => "invalidProfile",
            Self::Malformed => "malformed",
            Self::OrderNotReady => "orderNotReady",
            Self::RateLimited => "rateLimited",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::ServerInternal => "serverInternal",
            Self::Tls => "tls",
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedContact => "unsupportedContact",
            Self::UnsupportedIdentifier => "unsupportedIdentifier",
        }
    }

    /// The full URN sent as the problem's `type`.
    pub fn urn(self) -> String {
        format!("urn:ietf:params:acme:error:{}", self.name())
    }

    /// The HTTP status RFC 8555 (and Boulder/Pebble practice) pairs with the type.
    pub fn default_status(self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::OrderNotReady => StatusCode::FORBIDDEN,
            Self::ServerInternal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::AlreadyReplaced => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// A problem document, ready to be sent or stored (order and challenge `error`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", with = "problem_type_urn")]
    pub kind: ProblemType,
    pub detail: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub subproblems: Vec<Subproblem>,
    /// For `badSignatureAlgorithm`: the algorithms the server accepts.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub algorithms: Option<Vec<String>>,
    /// Seconds to send as `Retry-After` with the response (`rateLimited`,
    /// RFC 8555 §6.6); a header, not part of the document.
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// One identifier's part of a compound problem (RFC 8555 §6.7.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subproblem {
    #[serde(rename = "type", with = "problem_type_urn")]
    pub kind: ProblemType,
    pub detail: String,
    pub identifier: WireIdentifier,
}

impl Problem {
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: kind.default_status().as_u16(),
            subproblems: Vec::new(),
            algorithms: None,
            retry_after: None,
        }
    }

    /// The same problem with a different HTTP status (404, 405, 413, 415, …).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status.as_u16();
        self
    }

    pub fn with_subproblems(mut self, subproblems: Vec<Subproblem>) -> Self {
        self.subproblems = subproblems;
        self
    }

    /// The same problem, sent with `Retry-After: seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Malformed, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Unauthorized, detail)
    }

    /// A request signed by an account that is deactivated or revoked:
    /// `unauthorized` with 401, as RFC 8555 §7.3.6 asks of a server that
    /// receives one from a deactivated account.
    pub fn account_not_valid(status: impl std::fmt::Display) -> Self {
        Self::unauthorized(format!("account is {status}")).with_status(StatusCode::UNAUTHORIZED)
    }

    pub fn bad_csr(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::BadCsr, detail)
    }

    pub fn not_found(what: &str) -> Self {
        Self::malformed(format!("{what} not found")).with_status(StatusCode::NOT_FOUND)
    }

    /// A server-side failure. The cause is logged here, once, with the request
    /// span; the client only learns that something went wrong on our side.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{context}");
        Self::new(
            ProblemType::ServerInternal,
            format!("{context}; the server log has details"),
        )
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.detail)
    }
}

impl std::error::Error for Problem {}

mod problem_type_urn {
    use super::ProblemType;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &ProblemType, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&kind.urn())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ProblemType, D::Error> {
        let urn = String::deserialize(d)?;
        let name = urn
            .strip_prefix("urn:ietf:params:acme:error:")
            .ok_or_else(|| D::Error::custom(format!("not an ACME error type: {urn}")))?;
        ProblemType::from_name(name)
            .ok_or_else(|| D::Error::custom(format!("unknown ACME error type: {urn}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_urn_and_status() {
        let p = Problem::bad_csr("CSR names differ");
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:ietf:params:acme:error:badCSR");
        assert_eq!(v["status"], 400);
        assert!(v.get("subproblems").is_none());
        let back: Problem = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn every_type_round_trips_through_its_urn() {
        for kind in ProblemType::ALL {
            let p = Problem::new(kind, "x");
            let back: Problem = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            assert_eq!(back.kind, kind, "{}", kind.name());
        }
    }
}
