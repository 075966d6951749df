//! The background work requests start and do not wait for: validating a
//! challenge, issuing an order's certificate. Each task runs on its own, so
//! a client that hangs up does not stop it, and holds only what it uses.
//!
//! Work runs under a lease in the database ([`WorkLeases`]), so that a
//! process that dies leaves nothing stranded: every process sweeps now and
//! then for `processing` work whose lease ran out and runs it as its own.
//! On SQLite, where one process serves the database, a start takes over at
//! once whatever the previous run left `processing`.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::task::JoinHandle;

use crate::audit::AuditLog;
use crate::domain::issuance::SigningGate;
use crate::domain::profiles::Profiles;
use crate::domain::validation_slots::ValidationSlots;
use crate::domain::work_leases::WorkLeases;
use crate::metrics::Metrics;
use crate::store::{LeasedWork, Store, StoreResult};
use crate::util::clock::Clock;
use crate::validate::Validator;

/// Pieces of work of each kind one sweep claims at most: a bounded write,
/// and the work of a replica that died spread over those that sweep next.
const SWEEP_BATCH: u32 = 32;

/// What validations and issuances need, shared by every task they start.
pub struct Workers {
    pub store: Store,
    pub profiles: Arc<Profiles>,
    pub validator: Arc<Validator>,
    /// Turns for validations: how many run at once, in all and per account.
    pub validation_slots: Arc<ValidationSlots>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub audit: AuditLog,
    /// How long an authorization stays valid once validated.
    pub valid_authorization: Duration,
    /// Closed when certgate stops, after signing requests in flight finish.
    pub signing: Arc<SigningGate>,
    /// This process's leases on the work it runs.
    pub leases: Arc<WorkLeases>,
}

impl Workers {
    /// Starts validating challenge `id` (already `processing` under this
    /// process's lease), as soon as its account has a turn.
    pub fn spawn_validation(&self, id: String) -> JoinHandle<()> {
        tokio::spawn(crate::domain::validation::run(
            self.store.clone(),
            self.validation_slots.clone(),
            self.validator.clone(),
            self.profiles.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            self.leases.clone(),
            self.valid_authorization,
            id,
        ))
    }

    /// Starts issuing the certificate of order `id` (already `processing`
    /// under this process's lease).
    pub fn spawn_issuance(&self, id: String) -> JoinHandle<()> {
        tokio::spawn(crate::domain::issuance::run(
            self.store.clone(),
            self.profiles.clone(),
            self.signing.clone(),
            self.clock.clone(),
            self.audit.clone(),
            self.metrics.clone(),
            self.leases.clone(),
            id,
        ))
    }

    /// SQLite at start: takes over every validation and issuance the
    /// previous run left `processing` and starts them, without waiting for
    /// its leases to run out (the data directory's lock proves it gone).
    pub async fn take_over_unfinished(&self) -> StoreResult<()> {
        let lease = self.leases.fresh();
        for work in [LeasedWork::Validation, LeasedWork::Issuance] {
            let ids = self.store.take_over_processing(work, &lease).await?;
            self.start(work, ids);
        }
        Ok(())
    }

    /// Claims the work whose lease ran out (its process died or lost the
    /// database for a whole lease) and starts it.
    pub async fn sweep(&self) -> StoreResult<()> {
        for work in [LeasedWork::Validation, LeasedWork::Issuance] {
            let lease = self.leases.fresh();
            let ids = self
                .store
                .claim_expired(work, &lease, self.clock.now(), SWEEP_BATCH)
                .await?;
            self.start(work, ids);
        }
        Ok(())
    }

    /// Sweeps now, then about every quarter of a lease for as long as
    /// certgate runs: work is picked up within a lease and a quarter of its
    /// last renewal. The pauses vary at random by a quarter either way, so
    /// that replicas started together do not sweep in step.
    pub async fn keep_sweeping(self: Arc<Self>) {
        let quarter = self.leases.length() / 4;
        loop {
            if let Err(error) = self.sweep().await {
                tracing::warn!(%error, "looking for work left by another process failed; trying again");
            }
            let pause = quarter.mul_f64(rand::thread_rng().gen_range(0.75..1.25));
            tokio::time::sleep(pause).await;
        }
    }

    /// Starts each piece of `work` in `ids`, now this process's.
    fn start(&self, work: LeasedWork, ids: Vec<String>) {
        for id in ids {
            match work {
                LeasedWork::Validation => {
                    tracing::info!(challenge = %id, "resuming validation");
                    self.spawn_validation(id);
                }
                LeasedWork::Issuance => {
                    tracing::info!(order = %id, "resuming issuance");
                    self.spawn_issuance(id);
                }
            }
        }
    }
}
