//! Where reads go: sqlx's pool on PostgreSQL, and on SQLite a set of
//! read-only connections kept here.
//!
//! Every statement on a SQLite connection is a hand-off to the thread sqlx
//! runs that connection on, and back. sqlx's pool adds a `ping`, one more
//! hand-off, each time it takes a connection back, which it cannot be told
//! not to do; with a read per signed request, those pings were a quarter of
//! the hand-offs of an issuance. A connection to a file opened by this
//! process has no other end that could have gone, so the set here hands a
//! connection out and takes it back with no statement at all.
//!
//! A read whose caller gave up part-way leaves its connection as fit as
//! before: read connections are `query_only`, never inside a transaction,
//! and sqlx's thread finishes or resets the statement before it runs the
//! next one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt};
use sqlx::any::{AnyQueryResult, AnyRow, AnyTypeInfo};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Describe, Either, Execute, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a read waits for a connection before it fails as unavailable,
/// as sqlx's pool would have.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// The connections reads use; cheap to clone.
#[derive(Clone, Debug)]
pub(super) enum Readers {
    /// PostgreSQL: the pool the write units share.
    Pool(AnyPool),
    /// SQLite: connections of this process's own.
    Sqlite(Arc<SqliteReaders>),
}

impl Readers {
    /// Lets the reads under way finish, then closes every connection.
    pub(super) async fn close(&self) {
        match self {
            Self::Pool(pool) => pool.close().await,
            Self::Sqlite(readers) => readers.close().await,
        }
    }
}

/// Up to `size` read-only connections to one SQLite file, opened when first
/// needed and kept.
#[derive(Debug)]
pub(super) struct SqliteReaders {
    url: String,
    /// What a new connection is told first (`query_only` among it).
    setup: String,
    /// One permit per connection that may be in use.
    permits: Arc<Semaphore>,
    size: u32,
    idle: Mutex<Vec<AnyConnection>>,
}

impl SqliteReaders {
    /// The set for `url`, with one connection opened now so that a file
    /// that cannot be read is found at start.
    pub(super) async fn open(url: &str, setup: String, size: u32) -> sqlx::Result<Arc<Self>> {
        let readers = Arc::new(Self {
            url: url.to_owned(),
            setup,
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            idle: Mutex::new(Vec::new()),
        });
        let first = readers.connect().await?;
        readers.idle().push(first);
        Ok(readers)
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<AnyConnection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn connect(&self) -> sqlx::Result<AnyConnection> {
        let mut connection = AnyConnection::connect(&self.url).await?;
        connection.execute(self.setup.as_str()).await?;
        Ok(connection)
    }

    /// A connection for one read, back in the set when dropped.
    async fn acquire(self: &Arc<Self>) -> sqlx::Result<ReadConnection> {
        let permit = tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        let idle = self.idle().pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        Ok(ReadConnection {
            connection: Some(connection),
            home: self.clone(),
            _permit: permit,
        })
    }

    /// Refuses new reads, waits for those under way, and closes the
    /// connections.
    async fn close(&self) {
        if let Ok(all) = self.permits.acquire_many(self.size).await {
            all.forget();
        }
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for connection in idle {
            let _ = connection.close().await;
        }
    }
}

/// One connection of a [`SqliteReaders`], lent for one read.
struct ReadConnection {
    connection: Option<AnyConnection>,
    home: Arc<SqliteReaders>,
    _permit: OwnedSemaphorePermit,
}

impl ReadConnection {
    /// Gives the connection up if `result` says it cannot serve another
    /// read (its thread is gone, or its file failed): the next read opens a
    /// new one, as a fault heals on the writer.
    fn check<T>(&mut self, result: &sqlx::Result<T>) {
        if let Err(sqlx::Error::WorkerCrashed | sqlx::Error::Io(_)) = result {
            self.connection = None;
        }
    }
}

impl std::ops::Deref for ReadConnection {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        self.connection.as_ref().expect("lent until dropped")
    }
}

impl std::ops::DerefMut for ReadConnection {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.connection.as_mut().expect("lent until dropped")
    }
}

impl Drop for ReadConnection {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            self.home.idle().push(connection);
        }
    }
}

/// Reads run on `&Readers` as on a pool: `fetch_optional(&self.pool)`.
impl<'p> Executor<'p> for &'_ Readers {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, sqlx::Result<Either<AnyQueryResult, AnyRow>>>
    where
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Readers::Pool(pool) => pool.fetch_many(query),
            // The stream would borrow the connection it owns; the rows are
            // gathered first instead (a caller of `fetch_all` gathers them
            // anyway, and no read of the store streams).
            Readers::Sqlite(readers) => {
                let readers = readers.clone();
                let gathered = async move {
                    match readers.acquire().await {
                        Ok(mut connection) => {
                            let mut gathered = Vec::new();
                            let mut rows = (&mut *connection).fetch_many(query);
                            while let Some(row) = rows.next().await {
                                gathered.push(row);
                            }
                            drop(rows);
                            // A read stops at its first error.
                            if let Some(last) = gathered.last() {
                                connection.check(last);
                            }
                            gathered
                        }
                        Err(error) => vec![Err(error)],
                    }
                };
                Box::pin(stream::once(gathered).flat_map(stream::iter))
            }
        }
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<AnyRow>>>
    where
        E: 'q + Execute<'q, Any>,
    {
        match self {
            Readers::Pool(pool) => pool.fetch_optional(query),
            Readers::Sqlite(readers) => {
                let readers = readers.clone();
                Box::pin(async move {
                    let mut connection = readers.acquire().await?;
                    let result = (&mut *connection).fetch_optional(query).await;
                    connection.check(&result);
                    result
                })
            }
        }
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<<Any as sqlx::Database>::Statement<'q>>> {
        match self {
            Readers::Pool(pool) => pool.prepare_with(sql, parameters),
            Readers::Sqlite(readers) => {
                let readers = readers.clone();
                Box::pin(async move {
                    let mut connection = readers.acquire().await?;
                    let result = (&mut *connection).prepare_with(sql, parameters).await;
                    connection.check(&result);
                    result
                })
            }
        }
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, sqlx::Result<Describe<Any>>> {
        match self {
            Readers::Pool(pool) => pool.describe(sql),
            Readers::Sqlite(readers) => {
                let readers = readers.clone();
                Box::pin(async move {
                    let mut connection = readers.acquire().await?;
                    let result = (&mut *connection).describe(sql).await;
                    connection.check(&result);
                    result
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read whose caller gave up while SQLite was still at it leaves the
    /// connection fit for the next read, which gets its own answer, and
    /// the connection stays read-only.
    #[tokio::test]
    async fn a_read_given_up_part_way_leaves_its_connection_fit_for_the_next() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        // One connection, so the second read runs on the first one's.
        let readers = Readers::Sqlite(
            SqliteReaders::open(&url, "PRAGMA query_only = ON".into(), 1)
                .await
                .unwrap(),
        );
        let long = sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000)
             SELECT COUNT(*) FROM n",
        )
        .fetch_one(&readers);
        let given_up = tokio::time::timeout(Duration::from_millis(50), long).await;
        assert!(given_up.is_err(), "the long read was still running");

        let (answer,): (i64,) = sqlx::query_as("SELECT 41 + 1")
            .fetch_one(&readers)
            .await
            .unwrap();
        assert_eq!(answer, 42);
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT 1 UNION ALL SELECT 2")
            .fetch_all(&readers)
            .await
            .unwrap();
        assert_eq!(rows, [(1,), (2,)]);
        let write = sqlx::query("CREATE TABLE t (x)").execute(&readers).await;
        assert!(write.is_err(), "{write:?}");
        readers.close().await;
    }
}
