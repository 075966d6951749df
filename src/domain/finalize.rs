//! Finalize (RFC 8555 §7.4): the rules an order must pass before its
//! certificate is signed, and the one write that starts the signing.
//!
//! Only a `ready` order of an account whose external binding is still in
//! force may be finalized; the CSR must name exactly the order's
//! identifiers and not reuse the account key. The order's per-domain
//! certificate tokens are taken here, when its names are validated, in the
//! same write that moves it from `ready` to `processing`, so only one
//! finalize can win; the issuance worker then signs it once, behind the
//! `SigningGate`. Nothing here knows HTTP or JWS.

use std::sync::Arc;
use std::time::Duration;

use super::error::{DomainError, DomainResult};
use super::workers::Workers;
use crate::config::rate_limits::RateLimits;
use crate::protocol::csr;
use crate::protocol::identifier::WireIdentifier;
use crate::protocol::identifiers::check_order_identifiers;
use crate::protocol::jwk::PublicJwk;
use crate::protocol::status::OrderStatus;
use crate::store::{Account, Order, Store};
use crate::util::clock::Clock;

/// What finalize needs, and nothing else.
#[derive(Clone)]
pub struct Finalize {
    pub store: Store,
    pub workers: Arc<Workers>,
    pub rate_limits: RateLimits,
    pub clock: Arc<dyn Clock>,
    /// How long to wait for the issuance before answering `processing`.
    pub answer_wait: Duration,
}

impl Finalize {
    /// Whether `order` may be finalized now: it is `ready` and its account's
    /// external binding, if any, is still in force. Checked before the
    /// request's payload is read.
    pub async fn check_ready(&self, order: &Order, account: &Account) -> DomainResult<()> {
        let status = order.effective_status(self.clock.now());
        if status != OrderStatus::Ready {
            return Err(DomainError::OrderNotReady(status));
        }
        super::eab::check_binding_in_force(account)?;
        Ok(())
    }

    /// Checks `csr` (base64url DER) against `order` and the account's key,
    /// moves the order to `processing` taking its certificate tokens, and
    /// starts its issuance. Returns the order as it is once the issuance
    /// finished or `answer_wait` passed.
    pub async fn finalize(
        &self,
        order: &Order,
        csr: &str,
        account_key: &PublicJwk,
    ) -> DomainResult<Order> {
        let now = self.clock.now();
        let order_names: Vec<String> = order.identifiers.iter().map(|i| i.value.clone()).collect();
        let accepted = csr::check(csr, &order_names, account_key)?;

        // The certificate counts against its names' per-domain limits from
        // here, when they are validated, and not at newOrder.
        let wire: Vec<WireIdentifier> = order.identifiers.iter().map(Into::into).collect();
        let names = check_order_identifiers(&wire)?;
        let buckets = self.rate_limits.certificate_buckets(&names);
        let id = &order.id;
        // Only one finalize can move the order from ready to processing; a
        // concurrent one sees the order already processing and is refused.
        let lease = self.workers.leases.fresh();
        let started = match self
            .store
            .begin_finalize(id, &accepted.der, &buckets, now, &lease)
            .await?
        {
            Ok(started) => started,
            Err(refusal) => {
                tracing::info!(bucket = %refusal.bucket.key, retry_after = refusal.retry_after, "finalize refused by a rate limit");
                return Err(DomainError::RateLimit(refusal));
            }
        };
        if !started {
            let current = self
                .store
                .order(id)
                .await?
                .map_or(OrderStatus::Invalid, |o| o.effective_status(now));
            return Err(DomainError::OrderNotReady(current));
        }
        let task = self.workers.spawn_issuance(id.clone());
        let _ = tokio::time::timeout(self.answer_wait, task).await;

        self.store
            .order(id)
            .await?
            .ok_or_else(|| DomainError::UnknownOrder(id.clone()))
    }
}
