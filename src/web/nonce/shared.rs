//! Nonces in the database, shared by every replica: issuing is one
//! `INSERT`, checking one `SELECT`, and spending one `DELETE` whose row
//! count says whether the nonce was live, so a nonce is good exactly once
//! whichever replicas its requests reach. Expired rows are purged in small
//! batches by every replica.

use std::sync::Arc;
use std::time::Duration;

use super::{decode, encode, random};
use crate::store::{Store, StoreResult};
use crate::util::clock::Clock;
use crate::util::periodic::{every, in_batches};

/// How often each replica purges expired nonces: their rows outlive their
/// lifetime by at most this.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Expired nonces one write deletes at most.
const PURGE_BATCH: u32 = 1000;

#[derive(Clone)]
pub struct SharedNonces {
    store: Store,
    clock: Arc<dyn Clock>,
    lifetime: Duration,
}

impl SharedNonces {
    /// Nonces in `store`, each live for `lifetime` by `clock`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, lifetime: Duration) -> Self {
        Self {
            store,
            clock,
            lifetime,
        }
    }

    /// Nonces issued at or before this instant are expired.
    fn cutoff(&self) -> i64 {
        self.clock
            .now()
            .saturating_sub(i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX))
    }

    pub async fn issue(&self) -> StoreResult<String> {
        let nonce = encode(random());
        self.store.insert_nonce(&nonce, self.clock.now()).await?;
        Ok(nonce)
    }

    /// A text that is no nonce of ours is refused without a query.
    pub async fn is_live(&self, nonce: &str) -> StoreResult<bool> {
        if decode(nonce).is_none() {
            return Ok(false);
        }
        self.store.nonce_is_live(nonce, self.cutoff()).await
    }

    pub async fn consume(&self, nonce: &str) -> StoreResult<bool> {
        if decode(nonce).is_none() {
            return Ok(false);
        }
        self.store.consume_nonce(nonce, self.cutoff()).await
    }

    /// Deletes every expired nonce, one bounded batch at a time, and says
    /// how many went.
    pub async fn purge(&self) -> StoreResult<u64> {
        let cutoff = self.cutoff();
        in_batches(PURGE_BATCH, || self.store.purge_nonces(cutoff, PURGE_BATCH)).await
    }

    /// Purges now and then every [`PURGE_EVERY`] for as long as certgate
    /// runs, whatever the retention setting; a failure is tried again next
    /// time.
    pub async fn keep_purging(self) {
        every(PURGE_EVERY, || async {
            match self.purge().await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "purged expired nonces"),
                Err(error) => {
                    tracing::warn!(%error, "purging expired nonces failed; trying again later")
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{on_both_backends, temporary};
    use crate::util::clock::SystemClock;

    on_both_backends! {
        /// Through the database, a nonce keeps the in-memory store's
        /// rules: accepted once, looked at without being spent, garbage
        /// and unknown nonces refused, an expired one refused and purged.
        async fn shared_nonces_keep_the_rules_of_the_memory_store() {
            let (_database, store) = temporary().await;
            let clock = Arc::new(SystemClock);
            let nonces = SharedNonces::new(store.clone(), clock.clone(), Duration::from_secs(7200));
            let n = nonces.issue().await.unwrap();
            assert!(nonces.is_live(&n).await.unwrap() && nonces.is_live(&n).await.unwrap());
            assert!(nonces.consume(&n).await.unwrap());
            assert!(!nonces.consume(&n).await.unwrap());
            assert!(!nonces.is_live(&n).await.unwrap());
            for other in ["AAAAAAAAAAAAAAAAAAAAAA", "not base64 !", ""] {
                assert!(!nonces.is_live(other).await.unwrap(), "{other:?}");
                assert!(!nonces.consume(other).await.unwrap(), "{other:?}");
            }

            let expiring = SharedNonces::new(store, clock, Duration::ZERO);
            let old = expiring.issue().await.unwrap();
            assert!(!expiring.is_live(&old).await.unwrap());
            assert!(!expiring.consume(&old).await.unwrap());
            assert_eq!(expiring.purge().await.unwrap(), 1);
            // The long-lived store's nonces were not expired: none went.
            assert_eq!(nonces.purge().await.unwrap(), 0);
        }
    }
}
