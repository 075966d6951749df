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

/// How often full buckets are deleted.
const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// Rows one write deletes at most, so a request queued behind it waits
/// milliseconds.
const BATCH: u32 = 500;

pub struct BucketSweep {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

impl BucketSweep {
    /// Deletes every bucket full again now, one batch at a time.
    pub async fn sweep(&self) -> StoreResult<u64> {
        let now = self.clock.now();
        let mut swept = 0;
        loop {
            let batch = self.store.purge_full_buckets(now, BATCH).await?;
            swept += batch;
            if batch < u64::from(BATCH) {
                return Ok(swept);
            }
        }
    }

    /// Sweeps every [`SWEEP_EVERY`] for as long as certgate runs, whatever
    /// the retention setting; a failure is tried again next time.
    pub async fn run(self) {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match self.sweep().await {
                Ok(0) => {}
                Ok(swept) => tracing::debug!(swept, "deleted rate-limit buckets full again"),
                Err(error) => {
                    tracing::warn!(%error, "deleting full rate-limit buckets failed; trying again later")
                }
            }
        }
    }
}
