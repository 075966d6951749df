//! Why a rule of `domain` refused a request, as a type: each variant is one
//! refusal a caller may act on. `domain` never words these for HTTP; the
//! one place that turns them into the problem documents clients read is
//! `web::problems`.

use crate::config::rate_limits::{OrderRefusal, RateLimitRefusal};
use crate::issuer::IdentifierRefusal;
use crate::protocol::problem::Problem;
use crate::protocol::status::OrderStatus;
use crate::store::StoreError;

/// A refusal or failure of a rule in `domain`.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The request asks for something RFC 8555 does not allow or certgate
    /// does not offer (`malformed`).
    #[error("{0}")]
    Malformed(String),
    /// The account may not do this (`unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// A rule of the protocol layer (identifiers, CSR, ARI certificate id,
    /// external binding) refused the request with this problem, already
    /// worded there.
    #[error("{0}")]
    Protocol(Box<Problem>),
    /// newOrder named a profile that does not exist.
    #[error("there is no profile {0:?}")]
    UnknownProfile(String),
    /// The request came through the directory of a profile that does not
    /// exist (any more).
    #[error("profile {0:?} not found")]
    UnknownDirectoryProfile(String),
    /// The profile's CA refuses these identifiers.
    #[error("{} identifiers refused by the profile's CA", .0.len())]
    RefusedIdentifiers(Vec<IdentifierRefusal>),
    /// The profile's CA cannot be asked now.
    #[error("the profile's CA cannot be reached: {0}")]
    IssuerUnavailable(String),
    /// `replaces` names a certificate this server did not issue.
    #[error("no certificate {0} was issued here")]
    UnknownReplaced(String),
    /// `replaces` names another account's certificate.
    #[error("the replaced certificate belongs to another account")]
    ReplacedNotOwned,
    /// `replaces` names a certificate without any of the order's names.
    #[error("the new order shares no identifier with the certificate it replaces")]
    ReplacedSharesNoIdentifier,
    /// `replaces` names a certificate another order replaces already.
    #[error("certificate {certificate} is already replaced by order {order}")]
    AlreadyReplaced { certificate: String, order: String },
    /// The order is gone.
    #[error("order {0} not found")]
    UnknownOrder(String),
    /// An order that is not `ready` cannot be finalized.
    #[error("order is {0}")]
    OrderNotReady(OrderStatus),
    /// A rate limit of newOrder.
    #[error("refused by a rate limit: {0:?}")]
    OrderLimit(OrderRefusal),
    /// A rate limit of another request (newAccount, finalize).
    #[error("refused by rate limit bucket {}", .0.bucket.key)]
    RateLimit(RateLimitRefusal),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something on the server's side that the client cannot act on.
    #[error("{context}: {cause}")]
    Internal { context: String, cause: String },
}

impl DomainError {
    /// A failure on the server's side: `context` is what was being done.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        Self::Internal {
            context: context.to_owned(),
            cause: cause.to_string(),
        }
    }
}

impl From<Problem> for DomainError {
    fn from(problem: Problem) -> Self {
        Self::Protocol(Box::new(problem))
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
