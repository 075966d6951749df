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
//!
//! Units that are already waiting when the writer takes the next one run
//! together in one transaction, one after the other as they would alone,
//! and their callers hear `Ok` after its one commit: each statement is a
//! hand-off to SQLite's thread, and under load a `BEGIN` and a `COMMIT` per
//! unit were a fifth of them. If any unit of such a group fails, the group
//! is rolled back and each unit runs again alone (units may run more than
//! once; see [`Work`]), so a unit's failure never touches another's writes.

use std::panic::AssertUnwindSafe;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{AnyConnection, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use super::{in_transaction, Isolation, Work};
use crate::store::backend::{Backend, BUSY_TIMEOUT};
use crate::store::{StoreError, StoreResult};

/// Units that may wait for the writer; a caller past this waits for room,
/// and a caller that gives up while waiting has written nothing.
const QUEUE_LENGTH: usize = 256;

/// The most units one transaction takes: enough to spread a `BEGIN` and a
/// `COMMIT` thin, few enough that the first caller of a group does not
/// wait long for the last.
const GROUP_LENGTH: usize = 16;

/// A unit with its answer erased, as the writer's queue holds it.
trait Unit: Send {
    /// Runs the unit in a transaction on `connection` and answers its
    /// caller. False when the connection must not be used again.
    fn run(self: Box<Self>, connection: &mut AnyConnection) -> BoxFuture<'_, bool>;

    /// Runs the unit's work inside a transaction the writer opened for a
    /// group, keeping what it returned for [`Unit::answer_kept`].
    fn run_in_group<'a>(&'a mut self, connection: &'a mut AnyConnection) -> BoxFuture<'a, InGroup>;

    /// Answers the caller with what [`Unit::run_in_group`] kept, once the
    /// group is committed.
    fn answer_kept(self: Box<Self>);

    /// Answers the caller without running: no connection could be had.
    fn refuse(self: Box<Self>, error: StoreError);
}

/// How a unit's work ended inside a group's transaction.
enum InGroup {
    Done,
    /// It returned an error: the group is rolled back and run unit by unit,
    /// where this one fails on its own.
    Failed,
    /// It panicked: the connection is not used again.
    Panicked,
}

/// How a group's one transaction ended.
enum Together {
    /// Committed: every unit's kept answer stands.
    Committed,
    /// Not begun or rolled back: nothing of it was written, and the
    /// connection is fit for the units to run again alone.
    Undone,
    /// The connection is in doubt and must be closed; nothing was committed.
    InDoubt,
}

struct Pending<T, F> {
    work: F,
    answer: oneshot::Sender<StoreResult<T>>,
    /// What the work returned in a group not yet committed.
    kept: Option<T>,
}

impl<T: Send + 'static, F: Work<T>> Unit for Pending<T, F> {
    fn run(self: Box<Self>, connection: &mut AnyConnection) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let Pending { work, answer, .. } = *self;
            let (result, reusable) =
                in_transaction(Backend::Sqlite, Isolation::Serializable, connection, &work).await;
            // The caller may have gone; what was committed stays committed.
            let _ = answer.send(result);
            reusable
        })
    }

    fn run_in_group<'a>(&'a mut self, connection: &'a mut AnyConnection) -> BoxFuture<'a, InGroup> {
        Box::pin(async move {
            match AssertUnwindSafe((self.work)(connection))
                .catch_unwind()
                .await
            {
                Ok(Ok(value)) => {
                    self.kept = Some(value);
                    InGroup::Done
                }
                Ok(Err(_)) => InGroup::Failed,
                Err(_panic) => InGroup::Panicked,
            }
        })
    }

    fn answer_kept(self: Box<Self>) {
        if let Some(value) = self.kept {
            let _ = self.answer.send(Ok(value));
        }
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
        let unit = Box::new(Pending {
            work,
            answer,
            kept: None,
        });
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
    let mut closing = None;
    while closing.is_none() {
        let Some(first) = units.recv().await else {
            break;
        };
        let mut group = Vec::new();
        match first {
            Message::Unit(unit) => group.push(unit),
            Message::Close(done) => closing = Some(done),
        }
        // The units already waiting join the group; a close waits for it.
        while closing.is_none() && group.len() < GROUP_LENGTH {
            match units.try_recv() {
                Ok(Message::Unit(unit)) => group.push(unit),
                Ok(Message::Close(done)) => closing = Some(done),
                Err(_) => break,
            }
        }
        since_checkpoint += group.len() as u32;
        connection = run_units(group, connection, &url).await;
        if let Some(current) = connection.as_mut() {
            if since_checkpoint >= UNITS_PER_CHECKPOINT {
                since_checkpoint = 0;
                restart_wal(current).await;
            }
        }
    }
    if let Some(connection) = connection.take() {
        let _ = connection.close().await;
    }
    if let Some(done) = closing {
        let _ = done.send(());
    }
}

/// Runs `group`: in one transaction when it has several units and each
/// succeeds, else each unit alone. Returns the connection to keep using,
/// `None` after a fault closed it.
async fn run_units(
    mut group: Vec<Box<dyn Unit>>,
    mut connection: Option<AnyConnection>,
    url: &str,
) -> Option<AnyConnection> {
    if group.len() > 1 {
        if let Some(mut current) = connection.take() {
            match run_together(&mut group, &mut current).await {
                Together::Committed => {
                    for unit in group {
                        unit.answer_kept();
                    }
                    return Some(current);
                }
                Together::Undone => connection = Some(current),
                Together::InDoubt => closed_after_a_fault(current).await,
            }
        }
    }
    for unit in group {
        let mut current = match connection.take() {
            Some(current) => current,
            None => match Backend::Sqlite.connect(url).await {
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
        if unit.run(&mut current).await {
            connection = Some(current);
        } else {
            closed_after_a_fault(current).await;
        }
    }
    connection
}

/// Runs each unit of `group` in order inside one `BEGIN IMMEDIATE …
/// COMMIT`; the first that fails rolls it all back.
async fn run_together(group: &mut [Box<dyn Unit>], connection: &mut AnyConnection) -> Together {
    let begin = Backend::Sqlite.begin(Isolation::Serializable);
    if connection.execute(begin).await.is_err() {
        return Together::Undone;
    }
    for unit in group.iter_mut() {
        match unit.run_in_group(connection).await {
            InGroup::Done => {}
            InGroup::Failed => return roll_back(connection).await,
            InGroup::Panicked => return Together::InDoubt,
        }
    }
    match connection.execute("COMMIT").await {
        Ok(_) => Together::Committed,
        Err(_) => roll_back(connection).await,
    }
}

async fn roll_back(connection: &mut AnyConnection) -> Together {
    match connection.execute("ROLLBACK").await {
        Ok(_) => Together::Undone,
        Err(_) => Together::InDoubt,
    }
}

/// Closing rolls back whatever the connection still held.
async fn closed_after_a_fault(connection: AnyConnection) {
    tracing::warn!(
        "closing the database connection for writes after a fault; the next write opens a new one"
    );
    let _ = connection.close().await;
}
