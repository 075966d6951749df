//! The leases this process holds on background work, so that replicas on
//! one database never run one piece of work at once and pick up the work
//! of one that died.
//!
//! Each process has an owner id of its own, random at every start. The
//! lease is taken with the transition to `processing`, renewed every third
//! of its length while the task works — waiting for its account's turn or
//! for a sealed Vault included, so a long wait never loses it — and
//! cleared with the transition out. A task whose lease another process
//! claimed (this one could not renew it for a whole lease: a database it
//! could not reach, a stall) stops renewing it: a validation stops at
//! once, and an issuance may no longer mark a signing attempt, while one
//! already out at the CA still hears its answer.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::store::{Lease, LeasedWork, Store};
use crate::util::clock::{seconds_after, Clock};

/// This process's identity and lease length, shared by every task.
pub struct WorkLeases {
    store: Store,
    clock: Arc<dyn Clock>,
    owner: String,
    length: Duration,
}

impl WorkLeases {
    /// Leases of `length` under a new random owner id.
    pub fn new(store: Store, clock: Arc<dyn Clock>, length: Duration) -> Self {
        Self {
            store,
            clock,
            owner: crate::util::ids::resource_id(),
            length,
        }
    }

    /// The owner id of this process's leases.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// How long a lease lasts without renewal.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// A lease of this process from now.
    pub fn fresh(&self) -> Lease {
        Lease {
            owner: self.owner.clone(),
            until: seconds_after(self.clock.now(), self.length),
        }
    }

    /// Runs `task` on `work` `id` while renewing its lease, and drops it
    /// when another process claimed the lease (`None`). Only for a task
    /// that writes nothing before it ends, so that stopping it anywhere
    /// leaves nothing half-done.
    pub async fn while_held<T>(
        &self,
        work: LeasedWork,
        id: &str,
        task: impl Future<Output = T>,
    ) -> Option<T> {
        tokio::select! {
            // The task first: one that has just finished is not dropped
            // because its lease ended with it.
            biased;
            done = task => Some(done),
            () = self.renew_until_lost(work, id) => None,
        }
    }

    /// Runs `task` on `work` `id` to its end while renewing its lease; when
    /// another process claims the lease, renewing stops and the task goes
    /// on (whatever it may still write is guarded by the lease itself).
    pub async fn renewed_during<T>(
        &self,
        work: LeasedWork,
        id: &str,
        task: impl Future<Output = T>,
    ) -> T {
        tokio::pin!(task);
        tokio::select! {
            biased;
            done = &mut task => done,
            () = self.renew_until_lost(work, id) => task.await,
        }
    }

    /// Renews the lease on `id` every third of its length; returns once
    /// it is lost. A renewal that fails (a database fault) is tried again
    /// at the next turn: the lease holds a whole length, so one failure
    /// loses nothing.
    async fn renew_until_lost(&self, work: LeasedWork, id: &str) {
        let every = self.length / 3;
        let mut turns = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        turns.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            turns.tick().await;
            match self.store.renew_lease(work, id, &self.fresh()).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(%work, id, "another process has claimed this work; leaving it to that one");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, %work, id, "renewing the lease failed; trying again")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{on_both_backends, with_account};
    use crate::util::clock::SystemClock;

    /// A lease of 3 s, renewed each second, on a challenge that this
    /// process started.
    async fn started(store: &Store) -> WorkLeases {
        let leases = WorkLeases::new(store.clone(), Arc::new(SystemClock), Duration::from_secs(3));
        crate::store::testing::pending_order(store, "o", SystemClock.now()).await;
        assert!(store
            .start_challenge("chall-o", SystemClock.now(), &leases.fresh())
            .await
            .unwrap());
        leases
    }

    on_both_backends! {
        /// A task that outlasts its lease keeps it by renewing it: another
        /// process sweeping all along claims nothing.
        async fn a_task_longer_than_its_lease_keeps_it() {
            let (_database, store) = with_account("acct", SystemClock.now()).await;
            let leases = started(&store).await;
            let other = WorkLeases::new(store.clone(), Arc::new(SystemClock), Duration::from_secs(3));
            let sweeping = async {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                while tokio::time::Instant::now() < deadline {
                    let claimed = store
                        .claim_expired(LeasedWork::Validation, &other.fresh(), SystemClock.now(), 10)
                        .await
                        .unwrap();
                    assert!(claimed.is_empty(), "a renewed lease was claimed");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            };
            let held = leases.while_held(LeasedWork::Validation, "chall-o", sweeping);
            assert_eq!(held.await, Some(()));
        }
    }

    on_both_backends! {
        /// Once another process has claimed the lease, the renewal finds
        /// it lost and the task is dropped.
        async fn a_task_whose_lease_was_claimed_stops() {
            let (_database, store) = with_account("acct", SystemClock.now()).await;
            let leases = started(&store).await;
            let later = SystemClock.now() + 10;
            let thief = Lease { owner: "another".into(), until: later + 30 };
            let claimed = store.claim_expired(LeasedWork::Validation, &thief, later, 10).await;
            assert_eq!(claimed.unwrap(), ["chall-o"]);
            let started = tokio::time::Instant::now();
            let never = std::future::pending::<()>();
            assert_eq!(leases.while_held(LeasedWork::Validation, "chall-o", never).await, None);
            assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
            // An issuance-like task is not cut short; it just ends.
            let finished = leases.renewed_during(LeasedWork::Validation, "chall-o", async {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                "done"
            });
            assert_eq!(finished.await, "done");
        }
    }
}
