//! Turning a `processing` order into a stored certificate.
//!
//! Runs as a task of its own so that a client that hangs up does not stop it,
//! and is started again for every `processing` order when certgate starts, so
//! a stop in the middle never strands an order. A CA that is unavailable and
//! a database that fails are both waited out, never given up on: a signed
//! certificate is stored before anything else happens to its order.
//!
//! No order is signed twice. Each signing request is marked in the store
//! before it leaves; the mark is cleared only when the CA answers that it did
//! not sign. An order of a remote CA (Vault) found still marked after a
//! restart, or whose answer was lost, may already have a certificate there,
//! so it fails with a problem that says so instead of being sent again.

use std::sync::Arc;

use tracing::Instrument;

use crate::acme::problem::{Problem, ProblemType};
use crate::acme::status::OrderStatus;
use crate::acme::types::Identifier;
use crate::backoff::{until_ok, Backoff};
use crate::clock::Clock;
use crate::issuer::{IssueError, IssuedCertificate, Issuer, SignRequest};
use crate::profiles::Profiles;
use crate::store::{NewCertificate, Order, Store};

/// What the client reads when certgate cannot know whether the CA signed.
const ANSWER_LOST: &str = "certgate lost the CA's answer while this order was being signed; \
     to never issue twice it does not ask again: please create a new order";

/// Issues the certificate for order `order_id` if it is processing.
pub async fn run(store: Store, profiles: Arc<Profiles>, clock: Arc<dyn Clock>, order_id: String) {
    let span = tracing::info_span!("issuance", order = %order_id);
    async move {
        let order = until_ok("reading the order", || store.order(&order_id)).await;
        let Some((order, csr_der)) = order.and_then(|o| {
            let csr = o.csr.clone().filter(|_| o.status == OrderStatus::Processing)?;
            Some((o, csr))
        }) else {
            return;
        };
        let outcome = match profiles.get(&order.profile) {
            Some(profile) => {
                let request = SignRequest {
                    csr_der,
                    names: order.identifiers.iter().map(|i| i.value.clone()).collect(),
                    lifetime: profile.ttl,
                };
                sign_once(&store, clock.as_ref(), profile.issuer.as_ref(), &order, &request).await
            }
            None => {
                tracing::error!(profile = %order.profile, "the order's profile is no longer configured");
                Err(Problem::new(
                    ProblemType::ServerInternal,
                    format!("profile {:?} is no longer configured", order.profile),
                ))
            }
        };
        match outcome {
            Ok(issued) => {
                let certificate = NewCertificate {
                    id: crate::ids::resource_id(),
                    serial: issued.serial,
                    names: order.identifiers.iter().map(|i| i.value.clone()).collect(),
                    chain_pem: issued.chain_pem,
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                };
                let stored = until_ok("storing the certificate", || {
                    store.complete_order(&order_id, &certificate, clock.now())
                })
                .await;
                if stored {
                    tracing::info!(serial = %certificate.serial, names = ?certificate.names, "certificate issued");
                }
            }
            Err(problem) => {
                until_ok("recording the failed order", || {
                    store.fail_order(&order_id, &problem, clock.now())
                })
                .await;
            }
        }
    }
    .instrument(span)
    .await
}

/// Asks the issuer until it gives an answer: a certificate, or the problem
/// the order fails with. Each request is marked in the store first.
async fn sign_once(
    store: &Store,
    clock: &dyn Clock,
    issuer: &dyn Issuer,
    order: &Order,
    request: &SignRequest,
) -> Result<IssuedCertificate, Problem> {
    if order.sign_attempted_at.is_some() {
        if issuer.signs_remotely() {
            tracing::error!(
                attempted_at = order.sign_attempted_at,
                "certgate stopped while the CA was signing this order; not asking again"
            );
            return Err(Problem::new(ProblemType::ServerInternal, ANSWER_LOST));
        }
        // An in-process CA that was interrupted left no certificate anywhere.
        until_ok("clearing the signing mark", || store.clear_sign_attempt(&order.id)).await;
    }
    let mut backoff = Backoff::new();
    loop {
        let marked = until_ok("marking the signing attempt", || {
            store.mark_sign_attempt(&order.id, clock.now())
        })
        .await;
        if !marked {
            return Err(Problem::new(
                ProblemType::ServerInternal,
                "the order changed while it was being signed",
            ));
        }
        let started = std::time::Instant::now();
        let error = match issuer.sign(request).await {
            Ok(issued) => {
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "signed");
                return Ok(issued);
            }
            Err(error) => error,
        };
        match error {
            IssueError::Unavailable(reason) => {
                until_ok("clearing the signing mark", || store.clear_sign_attempt(&order.id)).await;
                tracing::warn!(%reason, retry_in_s = backoff.next_delay().as_secs(), "CA unavailable; will retry");
                backoff.wait().await;
            }
            other => return Err(failure_problem(other)),
        }
    }
}

/// The problem an order fails with when its CA gave a final answer.
fn failure_problem(error: IssueError) -> Problem {
    match error {
        IssueError::Rejected(reason) => {
            tracing::warn!(%reason, "the CA refused the CSR");
            Problem::bad_csr(reason)
        }
        IssueError::RefusedIdentifier { identifier, reason } => {
            tracing::warn!(%identifier, %reason, "the CA refused an identifier");
            let problem = Problem::new(ProblemType::RejectedIdentifier, reason);
            let sub = crate::acme::problem::Subproblem {
                kind: ProblemType::RejectedIdentifier,
                detail: problem.detail.clone(),
                identifier: Identifier::dns(&identifier),
            };
            problem.with_subproblems(vec![sub])
        }
        IssueError::AnswerLost(reason) => {
            tracing::error!(%reason, "the CA's answer was lost; not asking again");
            Problem::new(ProblemType::ServerInternal, ANSWER_LOST)
        }
        IssueError::Internal(reason) | IssueError::Unavailable(reason) => {
            tracing::error!(%reason, "issuing failed");
            Problem::new(
                ProblemType::ServerInternal,
                "the certificate could not be issued; the server log has details",
            )
        }
    }
}
