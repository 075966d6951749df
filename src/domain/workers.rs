//! The background work requests start and do not wait for: validating a
//! challenge, issuing an order's certificate. Each task runs on its own, so
//! a client that hangs up does not stop it, and holds only what it uses.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::audit::AuditLog;
use crate::domain::issuance::SigningGate;
use crate::domain::profiles::Profiles;
use crate::domain::validation_slots::ValidationSlots;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::util::clock::Clock;
use crate::validate::Validator;

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
}

impl Workers {
    /// Starts validating challenge `id` (already `processing`), as soon as
    /// its account has a turn.
    pub fn spawn_validation(&self, id: String) -> JoinHandle<()> {
        tokio::spawn(crate::domain::validation::run(
            self.store.clone(),
            self.validation_slots.clone(),
            self.validator.clone(),
            self.profiles.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            self.valid_authorization,
            id,
        ))
    }

    /// Starts issuing the certificate of order `id` (already `processing`).
    pub fn spawn_issuance(&self, id: String) -> JoinHandle<()> {
        tokio::spawn(crate::domain::issuance::run(
            self.store.clone(),
            self.profiles.clone(),
            self.signing.clone(),
            self.clock.clone(),
            self.audit.clone(),
            self.metrics.clone(),
            id,
        ))
    }
}
