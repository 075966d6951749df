//! The one place where certgate's typed errors become the problem documents
//! a client reads (RFC 8555 §6.7): the store's errors, the refusals of the
//! rules in `domain` and the rate limits' refusals. The layers below return
//! these types and never word them for HTTP; handlers use `?`.

use axum::http::StatusCode;

use crate::config::rate_limits::{Bucket, OrderRefusal, RateLimitRefusal, PENDING_RETRY_AFTER_MAX};
use crate::domain::error::DomainError;
use crate::protocol::identifier::Identifier;
use crate::protocol::problem::{Problem, ProblemType, Subproblem};
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

impl From<&RateLimitRefusal> for Problem {
    /// The `rateLimited` problem (HTTP 429) with its `Retry-After`.
    fn from(refusal: &RateLimitRefusal) -> Self {
        let Bucket { key, limit, kind } = &refusal.bucket;
        let what = match key.split_once(':') {
            Some(("account", _)) => "this account".to_owned(),
            Some(("domain", domain)) => format!("registered domain {domain}"),
            Some(("ip", address)) => format!("IP address {address}"),
            Some(("client", address)) => format!("client address {address}"),
            _ => key.clone(),
        };
        Problem::new(
            ProblemType::RateLimited,
            format!(
                "too many {} for {what}: limit {} = {limit} (bucket {key}); retry after {} s",
                kind.counts(),
                kind.setting(),
                refusal.retry_after
            ),
        )
        .with_retry_after(refusal.retry_after)
    }
}

impl From<RateLimitRefusal> for Problem {
    fn from(refusal: RateLimitRefusal) -> Self {
        Self::from(&refusal)
    }
}

impl From<&OrderRefusal> for Problem {
    /// The `rateLimited` problem (HTTP 429) with its `Retry-After`.
    fn from(refusal: &OrderRefusal) -> Self {
        match refusal {
            OrderRefusal::RateLimit(refusal) => refusal.into(),
            OrderRefusal::PendingAuthorizations { limit, expires_in } => {
                let retry_after = (*expires_in).clamp(1, PENDING_RETRY_AFTER_MAX);
                Problem::new(
                    ProblemType::RateLimited,
                    format!(
                        "this order would leave the account with more than {limit} pending \
                         authorizations (limit pending-authorizations-per-account); complete \
                         or deactivate some, or retry after {retry_after} s"
                    ),
                )
                .with_retry_after(retry_after)
            }
        }
    }
}

impl From<DomainError> for Problem {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Malformed(detail) => Problem::malformed(detail),
            DomainError::Unauthorized(detail) => Problem::unauthorized(detail),
            DomainError::Protocol(problem) => *problem,
            DomainError::UnknownProfile(name) => Problem::new(
                ProblemType::InvalidProfile,
                format!("there is no profile {name:?}; the directory's meta.profiles lists them"),
            ),
            DomainError::UnknownDirectoryProfile(name) => {
                Problem::not_found(&format!("profile {name:?}"))
            }
            DomainError::RefusedIdentifiers(refusals) => {
                let subproblems: Vec<Subproblem> = refusals
                    .iter()
                    .map(|r| Subproblem {
                        kind: ProblemType::RejectedIdentifier,
                        detail: format!("{}: {}", r.identifier, r.reason),
                        identifier: Identifier::from_value(&r.identifier).into(),
                    })
                    .collect();
                let detail = match subproblems.as_slice() {
                    [only] => only.detail.clone(),
                    many => format!("{} identifiers are refused by this profile", many.len()),
                };
                Problem::new(ProblemType::RejectedIdentifier, detail).with_subproblems(subproblems)
            }
            DomainError::IssuerUnavailable(reason) => {
                tracing::warn!(%reason, "cannot read the profile's rules now");
                Problem::new(
                    ProblemType::ServerInternal,
                    "the CA behind this profile cannot be reached; try again shortly",
                )
                .with_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            DomainError::UnknownReplaced(text) => {
                Problem::malformed(format!("replaces: no certificate {text} was issued here"))
            }
            DomainError::ReplacedNotOwned => {
                Problem::unauthorized("replaces: the certificate belongs to another account")
            }
            DomainError::ReplacedSharesNoIdentifier => Problem::malformed(
                "replaces: the new order shares no identifier with the certificate it replaces",
            ),
            DomainError::AlreadyReplaced { certificate, order } => Problem::new(
                ProblemType::AlreadyReplaced,
                format!("certificate {certificate} is already replaced by order {order}"),
            ),
            DomainError::UnknownOrder(_) => Problem::not_found("order"),
            DomainError::OrderNotReady(status) => Problem::new(
                ProblemType::OrderNotReady,
                format!("order is {status}; only a ready order can be finalized"),
            ),
            DomainError::OrderLimit(refusal) => (&refusal).into(),
            DomainError::RateLimit(refusal) => (&refusal).into(),
            DomainError::Store(e) => e.into(),
            DomainError::Internal { context, cause } => Problem::internal(&context, &cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;
    use crate::config::rate_limits::{BucketKind, Limit};

    #[test]
    fn a_refusal_is_rate_limited_with_retry_after() {
        let refusal = RateLimitRefusal {
            bucket: Bucket {
                key: "domain:lab.example".into(),
                limit: Limit::parse("2/1h").unwrap().unwrap(),
                kind: BucketKind::CertificatesPerDomain,
            },
            retry_after: 1800,
        };
        let problem = Problem::from(&refusal);
        assert_eq!(problem.kind, ProblemType::RateLimited);
        assert_eq!(problem.status, 429);
        assert!(problem.detail.contains("domain:lab.example"), "{problem}");
        assert!(problem.detail.contains("2/1h"), "{problem}");
        assert!(problem.detail.contains("certificates issued"), "{problem}");
        let response = problem.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1800");
    }

    #[test]
    fn the_pending_authorization_cap_waits_at_most_an_hour() {
        for (expires_in, retry_after) in [(0, 1), (90, 90), (7 * 86_400, 3600)] {
            let problem = Problem::from(&OrderRefusal::PendingAuthorizations {
                limit: 300,
                expires_in,
            });
            assert_eq!(problem.kind, ProblemType::RateLimited);
            assert!(problem.detail.contains("300 pending"), "{problem}");
            let response = problem.into_response();
            assert_eq!(response.status(), 429);
            assert_eq!(
                response.headers()["retry-after"],
                retry_after.to_string().as_str()
            );
        }
    }
}
