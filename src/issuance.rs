//! Turning a `processing` order into a stored certificate.
//!
//! Runs as a task of its own so that a client that hangs up does not stop it,
//! and is started again for every `processing` order when certgate starts, so
//! a stop in the middle never strands an order. A CA that is unavailable and
//! a database that fails are both waited out, never given up on: a signed
//! certificate is stored before anything else happens to its order.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::acme::problem::{Problem, ProblemType};
use crate::acme::status::OrderStatus;
use crate::backoff::{until_ok, Backoff};
use crate::clock::Clock;
use crate::issuer::{IssueError, IssuedCertificate, Issuer, SignRequest};
use crate::store::{NewCertificate, Store};

/// Issues the certificate for order `order_id` if it is processing.
pub async fn run(
    store: Store,
    issuer: Arc<dyn Issuer>,
    clock: Arc<dyn Clock>,
    lifetime: Duration,
    order_id: String,
) {
    let span = tracing::info_span!("issuance", order = %order_id);
    async move {
        let order = until_ok("reading the order", || store.order(&order_id)).await;
        let Some((order, csr_der)) = order.and_then(|o| {
            let csr = o.csr.clone().filter(|_| o.status == OrderStatus::Processing)?;
            Some((o, csr))
        }) else {
            return;
        };
        let request = SignRequest {
            csr_der,
            names: order.identifiers.iter().map(|i| i.value.clone()).collect(),
            lifetime,
        };
        match sign(issuer.as_ref(), &request).await {
            Ok(issued) => {
                let certificate = NewCertificate {
                    id: crate::ids::resource_id(),
                    serial: issued.serial,
                    names: request.names.clone(),
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
/// the order fails with.
async fn sign(issuer: &dyn Issuer, request: &SignRequest) -> Result<IssuedCertificate, Problem> {
    let mut backoff = Backoff::new();
    loop {
        let started = std::time::Instant::now();
        match issuer.sign(request).await {
            Ok(issued) => {
                tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "signed");
                return Ok(issued);
            }
            Err(IssueError::Rejected(reason)) => {
                tracing::warn!(%reason, "the CA refused the CSR");
                return Err(Problem::bad_csr(reason));
            }
            Err(IssueError::Internal(reason)) => {
                tracing::error!(%reason, "issuing failed");
                return Err(Problem::new(
                    ProblemType::ServerInternal,
                    "the certificate could not be issued; the server log has details",
                ));
            }
            Err(IssueError::Unavailable(reason)) => {
                tracing::warn!(%reason, retry_in_s = backoff.next_delay().as_secs(), "CA unavailable; will retry");
                backoff.wait().await;
            }
        }
    }
}
