//! SQLite's one connection that writes, owned by a task of its own.
//!
//! A request that writes hands the writer a unit of work and awaits its
//! answer. The unit runs on the writer's task, inside `BEGIN IMMEDIATE …
//! COMMIT`, so a client that disconnects (dropping its request future, and
//! with it the wait for the answer) can neither interrupt a transaction
//! half-way nor leave the connection inside one; the caller hears `Ok` only
//! once the commit is done. One writer also means that the process's own
//! writes queue here instead of contending for SQLite's write lock.
//!
//! A connection that ends a unit in doubt (an I/O fault, a full disk, a
//! read-only file, a rollback that failed, a panic) is closed, and the next
//! unit opens a new one: a fault heals as soon as its cause is gone, without
//! a restart.

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::{in_transaction, Isolation, Work};
use crate::store::backend::{Backend, BUSY_TIMEOUT};
use crate::store::{StoreError, StoreResult};

/// Units that may wait for the writer; a caller past this waits for room,
/// and a caller that gives up while waiting has written nothing.
const QUEUE_LENGTH: usize = 256;

/// A unit with its answer erased, as the writer's queue holds it.
trait Unit: Send {
    /// Runs the unit in a transaction on `connection` and answers its
    /// caller. False when the connection must not be used again.
    fn run(self: Box<Self>, connection: &mut AnyConnection) -> BoxFuture<'_, bool>;

    /// Answers the caller without running: no connection could be had.
    fn refuse(self: Box<Self>, error: StoreError);
}

struct Pending<T, F> {
    work: F,
    answer: oneshot::Sender<StoreResult<T>>,
}

impl<T: Send + 'static, F: Work<T>> Unit for Pending<T, F> {
    fn run(self: Box<Self>, connection: &mut AnyConnection) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let Pending { work, answer } = *self;
            let (result, reusable) =
                in_transaction(Backend::Sqlite, Isolation::Serializable, connection, &work).await;
            // The caller may have gone; what was committed stays committed.
            let _ = answer.send(result);
            reusable
        })
    }

    fn refuse(self: Box<Self>, error: StoreError) {
        let _ = self.answer.send(Err(error));
    }
}

enum Message {
    Unit(Box<dyn Unit>),
    /// Close the connection and stop; answered once closed.
    Close(oneshot::Sender<()>),
}

/// The handle callers write through; cheap to clone.
#[derive(Clone, Debug)]
pub(in crate::store) struct Writer {
    queue: mpsc::Sender<Message>,
}

impl Writer {
    /// Starts the writer task on `connection`, reopening `url` after a
    /// connection had to be given up.
    pub(super) fn start(connection: AnyConnection, url: String) -> Self {
        let (queue, units) = mpsc::channel(QUEUE_LENGTH);
        tokio::spawn(serve(Some(connection), url, units));
        Self { queue }
    }

    /// Runs `work` in one write transaction and returns what it returned,
    /// once committed. Dropping the returned future before the unit was
    /// queued writes nothing; after, the unit runs to its end regardless.
    pub(super) async fn write<T: Send + 'static>(&self, work: impl Work<T>) -> StoreResult<T> {
        let (answer, answered) = oneshot::channel();
        let unit = Box::new(Pending { work, answer });
        // `reserve` waits without holding the unit, so giving up while the
        // queue is full leaves nothing behind.
        let slot = self.queue.reserve().await.map_err(|_| StoreError::Closed)?;
        slot.send(Message::Unit(unit));
        answered.await.map_err(|_| StoreError::Interrupted)?
    }

    /// Lets the units already queued finish, then closes the connection.
    pub(super) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Message::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

/// Units between two checkpoints that restart the WAL. SQLite's own
/// automatic checkpoint copies pages back but cannot start the log over
/// while readers keep arriving, so under steady reads the file would grow
/// with everything ever written.
const UNITS_PER_CHECKPOINT: u32 = 64;

/// How long a checkpoint waits for readers before it gives up until the
/// next time; readers are short, and writes wait behind it.
const CHECKPOINT_PATIENCE_MS: u32 = 1000;

/// Copies the WAL into the database and starts the log over (SQLite's
/// RESTART checkpoint), waiting at most [`CHECKPOINT_PATIENCE_MS`] for
/// readers. A checkpoint that cannot finish now is tried again later.
async fn restart_wal(connection: &mut AnyConnection) {
    let patient = format!("PRAGMA busy_timeout = {CHECKPOINT_PATIENCE_MS}");
    let usual = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
    if connection.execute(patient.as_str()).await.is_err() {
        return;
    }
    if let Err(error) = connection.execute("PRAGMA wal_checkpoint(RESTART)").await {
        tracing::debug!(%error, "WAL checkpoint not finished; trying again later");
    }
    let _ = connection.execute(usual.as_str()).await;
}

async fn serve(
    mut connection: Option<AnyConnection>,
    url: String,
    mut units: mpsc::Receiver<Message>,
) {
    let mut since_checkpoint = 0;
    while let Some(message) = units.recv().await {
        let unit = match message {
            Message::Unit(unit) => unit,
            Message::Close(done) => {
                if let Some(connection) = connection.take() {
                    let _ = connection.close().await;
                }
                let _ = done.send(());
                return;
            }
        };
        let mut current = match connection.take() {
            Some(current) => current,
            None => match Backend::Sqlite.connect(&url).await {
                Ok(fresh) => {
                    tracing::info!("database connection for writes opened again");
                    fresh
                }
                Err(error) => {
                    unit.refuse(error);
                    continue;
                }
            },
        };
        let reusable = unit.run(&mut current).await;
        if reusable {
            since_checkpoint += 1;
            if since_checkpoint >= UNITS_PER_CHECKPOINT {
                since_checkpoint = 0;
                restart_wal(&mut current).await;
            }
            connection = Some(current);
        } else {
            // Closing rolls back whatever the connection still held.
            tracing::warn!("closing the database connection for writes after a fault; the next write opens a new one");
            let _ = current.close().await;
        }
    }
}
