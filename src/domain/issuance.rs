//! Turning a `processing` order into a stored certificate.
//!
//! Runs as a task of its own so that a client that hangs up does not stop it,
//! and is started again for every `processing` order when certgate starts, so
//! a stop in the middle never strands an order. A CA that is unavailable and
//! a database that fails are both waited out, never given up on: a signed
//! certificate is stored before anything else happens to its order.
//!
//! A CA known to be down is not sent requests: the order waits for the
//! issuer's health check to pass (see [`Issuer::ready_to_sign`]), and every
//! waiting order is released together when it does, so orders finish within
//! moments of the CA coming back rather than each on its own backoff.
//!
//! No order is signed twice. Each signing request is marked in the store
//! before it leaves; the mark is cleared only when the CA answers that it did
//! not sign. An order of a remote CA (Vault) found still marked after a
//! restart, or whose answer was lost, may already have a certificate there,
//! so it fails with a problem that says so instead of being sent again, and
//! the loss is recorded (audit event `issuance_answer_lost`, metric
//! `certgate_issuance_answers_lost_total`) so an operator can find that
//! certificate at the CA.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{RwLock, RwLockReadGuard};
use tracing::Instrument;

use crate::audit::{AuditEvent, AuditLog, SigningCa};
use crate::domain::profiles::Profiles;
use crate::domain::work_leases::WorkLeases;
use crate::issuer::{IssueError, IssuedCertificate, Issuer, SignRequest};
use crate::metrics::{IssuanceResult, Metrics};
use crate::protocol::csr::public_key_sha256;
use crate::protocol::identifier::Identifier;
use crate::protocol::problem::{Problem, ProblemType};
use crate::protocol::status::OrderStatus;
use crate::store::{LeasedWork, NewCertificate, Order, Store};
use crate::util::backoff::{until_ok, Backoff};
use crate::util::clock::rfc3339;
use crate::util::clock::Clock;

/// What the client reads when certgate cannot know whether the CA signed.
const ANSWER_LOST: &str = "certgate lost the CA's answer while this order was being signed; \
     to never issue twice it does not ask again: please create a new order";

/// Lets a stopping certgate wait for the signing requests in flight, and
/// keeps new ones from starting, so that a graceful stop never leaves an
/// order whose CA answer went unheard.
#[derive(Debug, Default)]
pub struct SigningGate {
    lock: RwLock<()>,
}

impl SigningGate {
    /// Held for one signing attempt; waits forever once the gate is closed.
    async fn enter(&self) -> RwLockReadGuard<'_, ()> {
        self.lock.read().await
    }

    /// Waits up to `timeout` for attempts in flight, then shuts the gate for
    /// good. False when some attempt was still in flight at the deadline.
    pub async fn close(&self, timeout: Duration) -> bool {
        match tokio::time::timeout(timeout, self.lock.write()).await {
            Ok(guard) => {
                // Never released: no attempt starts after this.
                std::mem::forget(guard);
                true
            }
            Err(_) => false,
        }
    }
}

/// Issues the certificate for order `order_id` if it is processing, and
/// records the outcome in the audit log. The issuance's lease is renewed
/// all along, waits for a CA that is down included; a signing request is
/// sent only while this process holds it.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    store: Store,
    profiles: Arc<Profiles>,
    gate: Arc<SigningGate>,
    clock: Arc<dyn Clock>,
    audit: AuditLog,
    metrics: Arc<Metrics>,
    leases: Arc<WorkLeases>,
    order_id: String,
) {
    let started_at = std::time::Instant::now();
    let span = tracing::info_span!("issuance", order = %order_id);
    let issuing = async {
        let order = until_ok("reading the order", || store.order(&order_id)).await;
        let Some((order, csr_der)) = order.and_then(|o| {
            let csr = o
                .csr
                .clone()
                .filter(|_| o.status == OrderStatus::Processing)?;
            Some((o, csr))
        }) else {
            return;
        };
        let Some(profile) = profiles.get(&order.profile) else {
            tracing::error!(profile = %order.profile, "the order's profile is no longer configured");
            let problem = Problem::new(
                ProblemType::ServerInternal,
                format!("profile {:?} is no longer configured", order.profile),
            );
            record_failure(&store, clock.as_ref(), &audit, &metrics, &order, problem).await;
            return;
        };
        let request = SignRequest {
            csr_der,
            names: order.identifiers.iter().map(|i| i.value.clone()).collect(),
            lifetime: profile.ttl,
        };
        let signer = Signing {
            store: &store,
            clock: clock.as_ref(),
            issuer: profile.issuer.as_ref(),
            gate: &gate,
            audit: &audit,
            metrics: &metrics,
            lease_owner: leases.owner(),
            started_at,
        };
        signer.issue(&order, &request).await
    };
    leases
        .renewed_during(LeasedWork::Issuance, &order_id, issuing)
        .instrument(span)
        .await
}

/// Turns the order invalid with `problem`, unless something else already
/// finished it; true when this call did.
async fn record_failure(
    store: &Store,
    clock: &dyn Clock,
    audit: &AuditLog,
    metrics: &Metrics,
    order: &Order,
    problem: Problem,
) -> bool {
    let failed = until_ok("recording the failed order", || {
        store.fail_order(&order.id, &problem, clock.now())
    })
    .await;
    if !failed {
        return false;
    }
    metrics.issuance(&order.profile, IssuanceResult::Failed);
    audit
        .record(AuditEvent::IssuanceFailed {
            order: order.id.clone(),
            account: order.account_id.clone(),
            profile: order.profile.clone(),
            problem,
        })
        .await;
    true
}

struct Signing<'a> {
    store: &'a Store,
    clock: &'a dyn Clock,
    issuer: &'a dyn Issuer,
    gate: &'a SigningGate,
    audit: &'a AuditLog,
    metrics: &'a Metrics,
    /// Whose lease a signing attempt must be marked under.
    lease_owner: &'a str,
    /// When the issuance began, for its latency.
    started_at: std::time::Instant,
}

impl Signing<'_> {
    /// Asks the issuer until it gives a final answer and records it: the
    /// certificate, or the problem the order fails with. Each request to a
    /// CA elsewhere is marked in the store first, and the gate is held from
    /// the mark until the answer is stored. While the CA is known to be
    /// down the order waits for it before marking anything, so a stop
    /// meanwhile leaves no open attempt behind.
    async fn issue(&self, order: &Order, request: &SignRequest) {
        if let Some(attempted_at) = order.sign_attempted_at {
            if self.issuer.signs_remotely() {
                let reason = "certgate stopped while the CA was signing this order";
                return self.answer_lost(order, request, attempted_at, reason).await;
            }
            // An in-process CA that was interrupted left no certificate anywhere.
            self.clear_mark(&order.id).await;
        }
        let mut backoff = Backoff::new();
        loop {
            let slot = self.issuer.ready_to_sign().await;
            let in_flight = self.gate.enter().await;
            let attempted_at = self.clock.now();
            // Only a CA elsewhere can sign without certgate hearing of it;
            // what the embedded CA signs and certgate does not store exists
            // nowhere, and the order's compare-and-set stores one answer.
            let marked = !self.issuer.signs_remotely()
                || until_ok("marking the signing attempt", || {
                    self.store
                        .mark_sign_attempt(&order.id, attempted_at, self.lease_owner)
                })
                .await;
            if !marked {
                tracing::info!("another worker is signing this order, or has claimed it");
                return;
            }
            let started = std::time::Instant::now();
            let signed = self.issuer.sign(request).await;
            drop(slot);
            match signed {
                Ok(issued) => {
                    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "signed");
                    return self.store_certificate(order, request, issued).await;
                }
                Err(IssueError::Unavailable(reason)) => {
                    if self.issuer.signs_remotely() {
                        self.clear_mark(&order.id).await;
                    }
                    drop(in_flight);
                    if self.issuer.is_known_down() {
                        // The issuer logged the outage once; this order
                        // waits with the others in `ready_to_sign`.
                        tracing::debug!(%reason, "CA unavailable; waiting for it to come back");
                    } else {
                        // Unavailable but answering (a rate limit): spread
                        // the retries out.
                        tracing::info!(%reason, retry_in_s = backoff.next_delay().as_secs(), "CA busy; will retry");
                        backoff.wait().await;
                    }
                }
                Err(IssueError::AnswerLost(reason)) => {
                    return self
                        .answer_lost(order, request, attempted_at, &reason)
                        .await;
                }
                Err(other) => {
                    self.fail(order, failure_problem(other)).await;
                    return;
                }
            }
        }
    }

    /// A request that may have been signed without certgate hearing of it:
    /// the order fails (asking again could sign twice), and the loss goes
    /// to the log, the audit log and the metrics, with what finds the
    /// certificate at the CA.
    async fn answer_lost(
        &self,
        order: &Order,
        request: &SignRequest,
        attempted_at: i64,
        reason: &str,
    ) {
        let problem = Problem::new(ProblemType::ServerInternal, ANSWER_LOST);
        if !self.fail(order, problem).await {
            return;
        }
        let key_sha256 = public_key_sha256(&request.csr_der).unwrap_or_default();
        tracing::error!(
            %reason,
            attempted_at = %rfc3339(attempted_at),
            csr_public_key_sha256 = %key_sha256,
            issuer = %self.issuer.describe(),
            "the CA's answer was lost; not asking again, the CA may hold a certificate for this order"
        );
        self.metrics.answer_lost(&order.profile);
        self.audit
            .record(AuditEvent::IssuanceAnswerLost {
                order: order.id.clone(),
                account: order.account_id.clone(),
                profile: order.profile.clone(),
                names: request.names.clone(),
                attempted_at: rfc3339(attempted_at),
                csr_public_key_sha256: key_sha256,
                ca: signing_ca(self.issuer),
            })
            .await;
    }

    async fn store_certificate(
        &self,
        order: &Order,
        request: &SignRequest,
        issued: IssuedCertificate,
    ) {
        let certificate = NewCertificate {
            id: crate::util::ids::resource_id(),
            serial: issued.serial,
            names: request.names.clone(),
            chain_pem: issued.chain_pem,
            not_before: issued.not_before,
            not_after: issued.not_after,
        };
        let stored = until_ok("storing the certificate", || {
            self.store
                .complete_order(&order.id, &certificate, self.clock.now())
        })
        .await;
        if stored {
            tracing::info!(serial = %certificate.serial, names = ?certificate.names, "certificate issued");
            self.metrics.issuance(
                &order.profile,
                IssuanceResult::Issued(self.started_at.elapsed()),
            );
            self.audit
                .record(AuditEvent::CertificateIssued {
                    serial: certificate.serial,
                    names: certificate.names,
                    profile: order.profile.clone(),
                    account: order.account_id.clone(),
                    order: order.id.clone(),
                    not_after: rfc3339(certificate.not_after),
                    ca: signing_ca(self.issuer),
                })
                .await;
        }
    }

    /// True when this call failed the order (nothing else finished it).
    async fn fail(&self, order: &Order, problem: Problem) -> bool {
        record_failure(
            self.store,
            self.clock,
            self.audit,
            self.metrics,
            order,
            problem,
        )
        .await
    }

    async fn clear_mark(&self, order_id: &str) {
        until_ok("clearing the signing mark", || {
            self.store.clear_sign_attempt(order_id)
        })
        .await
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
            let sub = crate::protocol::problem::Subproblem {
                kind: ProblemType::RejectedIdentifier,
                detail: problem.detail.clone(),
                identifier: Identifier::from_value(&identifier).into(),
            };
            problem.with_subproblems(vec![sub])
        }
        IssueError::AnswerLost(reason) => {
            // Handled before this; kept so the match needs no catch-all.
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

/// The CA behind `issuer`, as an audit line names it.
fn signing_ca(issuer: &dyn Issuer) -> SigningCa {
    match issuer.vault_role() {
        Some(role) => SigningCa::Vault {
            vault_mount: role.mount.clone(),
            vault_role: role.role.clone(),
            vault_issuer_ref: role.issuer_ref.clone(),
        },
        None => SigningCa::Embedded,
    }
}
