//! PostgreSQL's write units: each runs on a task of its own with a
//! connection of the pool, side by side with the others.
//!
//! The task, not the caller, owns the unit: a client that disconnects drops
//! only its wait for the answer, and the unit still ends in `COMMIT` or
//! `ROLLBACK`. Units run at SERIALIZABLE, or at READ COMMITTED behind locks
//! they take first (see [`Isolation`]); one that
//! loses a race with another (a serialization failure or a deadlock) is run
//! again from the start, a bounded number of times, after a short random
//! pause so that the losers do not collide again in step.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sqlx::AnyPool;
use tokio::sync::Semaphore;

use super::{in_transaction, Isolation, Work};
use crate::store::backend::Backend;
use crate::store::{StoreError, StoreResult};

/// Units started and not finished, at most: past this a caller waits for
/// one to finish, and a caller that gives up while waiting has written
/// nothing. Matches the SQLite writer's queue.
const UNITS_IN_FLIGHT: u32 = 256;

/// Runs of one unit at most before its last conflict is answered as
/// unavailable (`503`, try again): enough for the contention of one hot row
/// among many replicas, bounded so that a pathological one cannot spin.
const ATTEMPTS: u32 = 10;

/// The longest pause before a run again, doubled per attempt from 2 ms and
/// capped here; each pause is random up to its bound.
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

#[derive(Clone, Debug)]
pub(in crate::store) struct Writer {
    pool: AnyPool,
    /// One permit per unit in flight; closed by [`Writer::close`].
    in_flight: Arc<Semaphore>,
}

impl Writer {
    pub(super) fn new(pool: AnyPool) -> Self {
        Self {
            pool,
            in_flight: Arc::new(Semaphore::new(UNITS_IN_FLIGHT as usize)),
        }
    }

    pub(super) async fn write<T: Send + 'static>(&self, work: impl Work<T>) -> StoreResult<T> {
        self.write_with(Isolation::Serializable, work).await
    }

    pub(super) async fn write_with<T: Send + 'static>(
        &self,
        isolation: Isolation,
        work: impl Work<T>,
    ) -> StoreResult<T> {
        self.on_a_task(|pool| async move { run(&pool, isolation, &work).await })
            .await
    }

    /// `work`, one statement, on a connection of the pool without `BEGIN`
    /// and `COMMIT`: PostgreSQL runs a statement alone as a transaction of
    /// its own, at READ COMMITTED, where a `DELETE` that finds its row
    /// already deleted by a concurrent one simply deletes nothing.
    pub(super) async fn write_statement<T: Send + 'static>(
        &self,
        work: impl Work<T>,
    ) -> StoreResult<T> {
        self.on_a_task(|pool| async move {
            let mut connection = pool.acquire().await?;
            let outcome = work(&mut connection).await;
            if outcome.as_ref().is_err_and(StoreError::is_unavailable) {
                // Broken, most likely: do not hand it to the next caller.
                let _ = connection.close().await;
            }
            outcome
        })
        .await
    }

    /// Runs `unit` on a task of its own, once a place among the units in
    /// flight is free, and returns what it returned.
    async fn on_a_task<T, F, U>(&self, unit: U) -> StoreResult<T>
    where
        T: Send + 'static,
        F: std::future::Future<Output = StoreResult<T>> + Send + 'static,
        U: FnOnce(AnyPool) -> F,
    {
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let unit = unit(self.pool.clone());
        let task = tokio::spawn(async move {
            let outcome = unit.await;
            drop(permit);
            outcome
        });
        task.await.map_err(|_| StoreError::Interrupted)?
    }

    /// Waits for the units in flight, then refuses new ones.
    pub(super) async fn close(&self) {
        if let Ok(all) = self.in_flight.acquire_many(UNITS_IN_FLIGHT).await {
            all.forget();
        }
        self.in_flight.close();
    }
}

/// `work` in a transaction on a connection of `pool`, again after each
/// conflict until [`ATTEMPTS`] runs.
async fn run<T>(pool: &AnyPool, isolation: Isolation, work: &impl Work<T>) -> StoreResult<T> {
    let mut attempt = 1;
    loop {
        let mut connection = pool.acquire().await?;
        let (outcome, reusable) =
            in_transaction(Backend::Postgres, isolation, &mut connection, work).await;
        if !reusable {
            // It may still be inside a transaction or broken; closing it
            // makes the server roll back whatever it held.
            let _ = connection.close().await;
        }
        match outcome {
            Err(StoreError::Database(error))
                if Backend::Postgres.is_conflict(&error) && attempt < ATTEMPTS =>
            {
                tracing::debug!(%error, attempt, "write lost a race; running it again");
                tokio::time::sleep(pause(attempt)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A random pause before run `attempt + 1`.
fn pause(attempt: u32) -> Duration {
    let bound = Duration::from_millis(2 << attempt.min(16)).min(LONGEST_PAUSE);
    rand::thread_rng().gen_range(Duration::ZERO..=bound)
}
