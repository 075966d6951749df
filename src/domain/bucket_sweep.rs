//! Rate-limit buckets that are full again read exactly like buckets never
//! stored, so their rows are deleted now and then to keep the table the
//! size of the recent traffic. This runs on its own schedule, never inside
//! a rate-limit decision: there a delete by `full_at` read the whole
//! table, and on PostgreSQL every newOrder and finalize then conflicted
//! with every other one.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Store, StoreResult};
use crate::util::clock::Clock;
use crate::util::periodic::{every, in_batches};

/// How often full buckets are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Rows one write deletes at most.
const BATCH: u32 = 500;

pub struct BucketSweep {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

impl BucketSweep {
    /// Deletes every bucket full again now, one batch at a time.
    pub async fn sweep(&self) -> StoreResult<u64> {
        let now = self.clock.now();
        in_batches(BATCH, || self.store.purge_full_buckets(now, BATCH)).await
    }

    /// Sweeps every [`SWEEP_EVERY`] for as long as certgate runs, whatever
    /// the retention setting; a failure is tried again next time.
    pub async fn run(self) {
        every(SWEEP_EVERY, || async {
            match self.sweep().await {
                Ok(0) => {}
                Ok(swept) => tracing::debug!(swept, "deleted rate-limit buckets full again"),
                Err(error) => {
                    tracing::warn!(%error, "deleting full rate-limit buckets failed; trying again later")
                }
            }
        })
        .await
    }
}
