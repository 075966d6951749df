//! Retention: expired and invalid orders, and the authorizations and
//! challenges only they used, are deleted once they have been over for the
//! configured time (default 30 days), so that a client making orders it
//! never completes cannot grow the database without bound. Certificates and
//! the audit log are kept whatever their age: they are the record of what
//! certgate issued.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Pruned, Store, StoreResult};
use crate::util::clock::Clock;
use crate::util::periodic::every;

/// Rows of each kind one write deletes: small enough that a request's write
/// queued behind it waits milliseconds, not the length of a large purge.
const BATCH: u32 = 200;

/// How often retention looks for what has become old enough.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub struct Retention {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// How long an order is kept after it ended.
    pub keep: Duration,
}

impl Retention {
    /// Deletes everything older than the retention, one small batch at a
    /// time, and says how much went.
    pub async fn prune(&self) -> StoreResult<Pruned> {
        let keep = i64::try_from(self.keep.as_secs()).unwrap_or(i64::MAX);
        let cutoff = self.clock.now().saturating_sub(keep);
        let mut total = Pruned::default();
        loop {
            let batch = self.store.prune_batch(cutoff, BATCH).await?;
            total.add(batch);
            if batch.orders < u64::from(BATCH) && batch.authorizations < u64::from(BATCH) {
                return Ok(total);
            }
        }
    }

    /// Prunes now and then every [`PRUNE_EVERY`], for as long as certgate
    /// runs. A failure (a full disk) is logged and tried again next time.
    pub async fn run(self) {
        every(PRUNE_EVERY, || async {
            match self.prune().await {
                Ok(pruned) if pruned.is_empty() => {}
                Ok(pruned) => tracing::info!(
                    orders = pruned.orders,
                    authorizations = pruned.authorizations,
                    challenges = pruned.challenges,
                    kept_for = %humantime::format_duration(self.keep),
                    "pruned old orders"
                ),
                Err(error) => {
                    tracing::warn!(%error, "pruning old orders failed; trying again later")
                }
            }
        })
        .await
    }
}
