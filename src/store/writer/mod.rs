//! How a write runs: every write is a unit of work, one transaction, that
//! runs where a dropped caller cannot cut it short, and whose caller hears
//! `Ok` only once it is committed.
//!
//! On SQLite the units queue for the one connection that writes
//! ([`serial`]); on PostgreSQL each runs on a task of its own with a
//! connection of the pool, side by side, and runs again when it lost a race
//! with another ([`concurrent`]). Callers see the same contract either way.

mod concurrent;
mod serial;

use std::panic::AssertUnwindSafe;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{AnyConnection, AnyPool, Executor};

use super::backend::Backend;
pub(super) use super::backend::Isolation;
use super::{StoreError, StoreResult};

/// Work to run inside one write transaction. It receives the connection
/// for the length of the unit; every statement goes through it. It may be
/// called more than once (on PostgreSQL, after losing a race), each time in
/// a fresh transaction, so it owns what it needs and clones it per call.
pub trait Work<T>:
    for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + Sync + 'static
{
}

impl<T, F> Work<T> for F where
    F: for<'c> Fn(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + Sync + 'static
{
}

/// Where write units run: the backend's way.
#[derive(Clone, Debug)]
pub(super) enum Writer {
    Serial(serial::Writer),
    Concurrent(concurrent::Writer),
}

impl Writer {
    /// SQLite: the one writer task, on `connection`, reopening from `url`
    /// after a fault.
    pub(super) fn serial(connection: AnyConnection, url: &str) -> Self {
        Self::Serial(serial::Writer::start(connection, url.to_owned()))
    }

    /// PostgreSQL: units on tasks of their own over `pool`.
    pub(super) fn concurrent(pool: AnyPool) -> Self {
        Self::Concurrent(concurrent::Writer::new(pool))
    }

    /// Runs `work` in one write transaction and returns what it returned,
    /// once committed. Dropping the returned future before the unit started
    /// writes nothing; after, the unit runs to its end regardless.
    pub(super) async fn write<T: Send + 'static>(&self, work: impl Work<T>) -> StoreResult<T> {
        match self {
            Self::Serial(writer) => writer.write(work).await,
            Self::Concurrent(writer) => writer.write(work).await,
        }
    }

    /// [`Writer::write`] for a unit that orders itself against concurrent
    /// ones with locks it takes first ([`Isolation::RowLocks`]).
    pub(super) async fn write_row_locked<T: Send + 'static>(
        &self,
        work: impl Work<T>,
    ) -> StoreResult<T> {
        match self {
            Self::Serial(writer) => writer.write(work).await,
            Self::Concurrent(writer) => writer.write_with(Isolation::RowLocks, work).await,
        }
    }

    /// Runs `work`, a single statement, as a unit on SQLite and as a
    /// statement of its own (no explicit transaction, no retry: one
    /// statement cannot lose a serialization race) on PostgreSQL. Like
    /// [`Writer::write`], a dropped caller cannot cut it short.
    pub(super) async fn write_statement<T: Send + 'static>(
        &self,
        work: impl Work<T>,
    ) -> StoreResult<T> {
        match self {
            Self::Serial(writer) => writer.write(work).await,
            Self::Concurrent(writer) => writer.write_statement(work).await,
        }
    }

    /// Lets the units already started finish, then refuses new ones.
    pub(super) async fn close(&self) {
        match self {
            Self::Serial(writer) => writer.close().await,
            Self::Concurrent(writer) => writer.close().await,
        }
    }
}

/// `work` between the backend's `BEGIN` and `COMMIT` (or `ROLLBACK` when it
/// fails), with whether the connection is known to be outside any
/// transaction and free of faults afterwards. A panic in `work` is a failed
/// unit on a connection that is not used again.
async fn in_transaction<T>(
    backend: Backend,
    isolation: Isolation,
    connection: &mut AnyConnection,
    work: &impl Work<T>,
) -> (StoreResult<T>, bool) {
    if let Err(error) = connection.execute(backend.begin(isolation)).await {
        let error = StoreError::from(error);
        let reusable = !error.is_unavailable();
        return (Err(error), reusable);
    }
    let outcome = match AssertUnwindSafe(work(connection)).catch_unwind().await {
        Ok(Ok(value)) => match connection.execute("COMMIT").await {
            Ok(_) => return (Ok(value), true),
            Err(error) => StoreError::from(error),
        },
        Ok(Err(error)) => error,
        Err(_panic) => return (Err(StoreError::Interrupted), false),
    };
    let rolled_back = connection.execute("ROLLBACK").await.is_ok();
    let reusable = rolled_back && !outcome.is_unavailable();
    (Err(outcome), reusable)
}
