//! Turning a `processing` order into a stored certificate.
//!
//! Runs as a task of its own so that a client that hangs up does not stop it,
//! and is started again for every `processing` order when certgate starts, so
//! a stop in the middle never strands an order.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::acme::problem::{Problem, ProblemType};
use crate::acme::status::OrderStatus;
use crate::clock::Clock;
use crate::issuer::{IssueError, Issuer, SignRequest};
use crate::store::{NewCertificate, Store};

/// Longest pause between attempts while the CA is unavailable.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

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
        if let Err(e) = issue(&store, issuer.as_ref(), clock.as_ref(), lifetime, &order_id).await {
            tracing::error!(error = %e, "issuance stopped; the order stays processing until the next start");
        }
    }
    .instrument(span)
    .await
}

async fn issue(
    store: &Store,
    issuer: &dyn Issuer,
    clock: &dyn Clock,
    lifetime: Duration,
    order_id: &str,
) -> Result<(), crate::store::StoreError> {
    let Some(order) = store.order(order_id).await? else {
        return Ok(());
    };
    let Some(csr_der) = order
        .csr
        .clone()
        .filter(|_| order.status == OrderStatus::Processing)
    else {
        return Ok(());
    };
    let request = SignRequest {
        csr_der,
        names: order.identifiers.iter().map(|i| i.value.clone()).collect(),
        lifetime,
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        match issuer.sign(&request).await {
            Ok(issued) => {
                let certificate = NewCertificate {
                    id: crate::ids::resource_id(),
                    serial: issued.serial,
                    names: request.names.clone(),
                    chain_pem: issued.chain_pem,
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                };
                if store
                    .complete_order(order_id, &certificate, clock.now())
                    .await?
                {
                    tracing::info!(serial = %certificate.serial, names = ?certificate.names,
                        elapsed_ms = started.elapsed().as_millis() as u64, "certificate issued");
                }
                return Ok(());
            }
            Err(IssueError::Rejected(reason)) => {
                tracing::warn!(%reason, "the CA refused the CSR");
                store
                    .fail_order(order_id, &Problem::bad_csr(reason), clock.now())
                    .await?;
                return Ok(());
            }
            Err(IssueError::Internal(reason)) => {
                tracing::error!(%reason, "issuing failed");
                let problem = Problem::new(
                    ProblemType::ServerInternal,
                    "the certificate could not be issued; the server log has details",
                );
                store.fail_order(order_id, &problem, clock.now()).await?;
                return Ok(());
            }
            Err(IssueError::Unavailable(reason)) => {
                tracing::warn!(%reason, retry_in_s = backoff.as_secs(), "CA unavailable; will retry");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
