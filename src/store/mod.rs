//! Persistence of ACME resources in SQLite through sqlx.
//!
//! This is the only module that writes SQL. Every status change is a
//! compare-and-set (`UPDATE … WHERE status = …`) so that concurrent requests
//! and background tasks cannot both win a transition, and every write runs
//! as one `BEGIN IMMEDIATE` transaction on the [`writer`] task, so a crash
//! leaves either the old state or the new one and a dropped request never
//! leaves a write half-done. Reads go to a pool of read-only connections.

mod accounts;
mod audit;
mod certificates;
pub mod eab;
pub mod inventory;
mod models;
mod orders;
mod rate_limits;
mod retention;
mod reuse;
mod signing;
pub mod stats;
mod writer;

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, SqlitePool};

pub use models::*;
pub use retention::Pruned;
pub use writer::Work;
use writer::Writer;

/// Errors of the persistence layer. Callers turn them into `serverInternal`,
/// or into `503` with `Retry-After` when [`StoreError::is_unavailable`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON column: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored row is inconsistent: {0}")]
    Corrupt(String),
    /// The writer has stopped: certgate is shutting down.
    #[error("database: closed for writes")]
    Closed,
    /// The writer stopped while running this write (a bug); it was rolled
    /// back.
    #[error("database: the write was interrupted and rolled back")]
    Interrupted,
}

/// SQLite's primary result codes of faults outside certgate, which clear
/// when their cause does: busy and locked (another process holds the write
/// lock past the busy timeout), read-only, I/O error, full, cannot open.
const TRANSIENT_SQLITE_CODES: [i64; 6] = [5, 6, 8, 10, 13, 14];

impl StoreError {
    /// Seconds a client is asked to wait after an [unavailable](Self::is_unavailable)
    /// fault: short, so that a client retrying on its own gets through soon
    /// after the cause is gone.
    pub const RETRY_AFTER_SECS: u64 = 5;

    /// True for a fault of the disk, the file or the lock rather than of
    /// the data: a full disk, an I/O error, a read-only file, a database
    /// locked by another process, or the writer closed by a shutdown. The
    /// same write may succeed later, so the client is told to retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(error)) => error
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                // Extended codes keep the primary code in the low byte.
                .is_some_and(|code| TRANSIENT_SQLITE_CODES.contains(&(code & 0xff))),
            Self::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed,
            ) => true,
            Self::Closed => true,
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long a write probe's outcome answers for readiness before the
/// database is written again: probes are cheap but not free, and an
/// unauthenticated burst of `/ready` must not become a burst of writes.
const WRITE_PROBE_FRESH_FOR: Duration = Duration::from_secs(3);

/// The last write probe: when it ran and what it found.
type WriteProbe = Option<(Instant, Result<(), String>)>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    /// Read-only connections (`query_only`): a dropped read cannot leave
    /// anything behind.
    pool: SqlitePool,
    writer: Writer,
    write_probe: std::sync::Arc<tokio::sync::Mutex<WriteProbe>>,
}

/// Connections of the read pool; reads are short, writes go to the writer.
const READ_POOL_SIZE: u32 = 8;
/// How long a write waits for another process's write lock (an offline
/// command) before it fails as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// WAL pages after which a commit copies the log back into the database.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 1000;
/// The size the WAL file is cut back to after a checkpoint, so that a burst
/// of writes does not leave a large file behind for good.
pub const WAL_SIZE_LIMIT_BYTES: u64 = 8 * 1024 * 1024;

impl Store {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    ///
    /// WAL lets readers proceed while the writer commits; the busy timeout
    /// makes the writer queue behind another process's write (an offline
    /// command) instead of failing.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // SQLite would create the file with the umask's mode (often 0644).
        if !(url.contains(":memory:") || url.contains("mode=memory")) {
            crate::util::data_dir::create_private_file(options.get_filename())
                .map_err(sqlx::Error::Io)?;
        }
        let write_options = options
            .clone()
            .create_if_missing(true)
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES.to_string());
        let mut connection = write_options.connect().await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut connection)
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(READ_POOL_SIZE)
            .connect_with(options.pragma("query_only", "ON"))
            .await?;
        Ok(Self {
            pool,
            writer: Writer::start(connection, write_options),
            write_probe: Default::default(),
        })
    }

    /// File descriptors the store holds at most: each connection (the read
    /// pool and the writer) has the database, its WAL and its shared-memory
    /// file open.
    pub const OPEN_FILES: u64 = (READ_POOL_SIZE as u64 + 1) * 3;

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Runs `work` as one write transaction on the writer task; see
    /// [`writer`] for why a dropped caller cannot interrupt it.
    pub async fn write<T: Send + 'static>(&self, work: impl Work<T>) -> StoreResult<T> {
        self.writer.write(work).await
    }

    /// Whether the database takes writes, proven by one small write at most
    /// every few seconds; concurrent callers share one probe. `Err` says
    /// why not, in SQLite's words (`database or disk is full`).
    pub async fn probe_writable(&self, now: i64) -> Result<(), String> {
        let mut last = self.write_probe.lock().await;
        if let Some((at, outcome)) = last.as_ref() {
            if at.elapsed() < WRITE_PROBE_FRESH_FOR {
                return outcome.clone();
            }
        }
        let outcome = self
            .write(move |connection| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO write_probe (id, at) VALUES (1, ?)
                         ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                    )
                    .bind(now)
                    .execute(&mut *connection)
                    .await?;
                    Ok(())
                })
            })
            .await
            .map_err(|error| match error {
                StoreError::Database(sqlx::Error::Database(db)) => db.message().to_owned(),
                other => other.to_string(),
            });
        *last = Some((Instant::now(), outcome.clone()));
        outcome
    }

    /// Lets queued writes finish, then closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Stores for the unit tests of the layers above: a real SQLite file in a
/// temporary directory (removed when the returned directory is dropped).
#[cfg(test)]
pub(crate) mod testing {
    use super::{NewAccount, Store};

    pub(crate) async fn temporary() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (dir, Store::open(&url).await.unwrap())
    }

    /// [`temporary`] with one valid account, `id`, created at `now`.
    pub(crate) async fn with_account(id: &str, now: i64) -> (tempfile::TempDir, Store) {
        let (dir, store) = temporary().await;
        let new = NewAccount {
            key_thumbprint: format!("thumbprint of {id}"),
            jwk: serde_json::json!({"kty": "OKP"}),
            contact: Vec::new(),
            tos_agreed: Some(true),
        };
        store.create_account(id, &new, now).await.unwrap();
        (dir, store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steady writes with readers always about: the WAL file stays within
    /// its limit instead of growing with everything ever written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_wal_stays_bounded_under_steady_writes_and_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("certgate.db");
        let store = Store::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (store, stop) = (store.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        sqlx::query("SELECT COUNT(*), MAX(length(record)) FROM audit_events")
                            .fetch_one(&store.pool)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        // 3,000 records of 4 KiB: more than the WAL's limit in all.
        let record = "x".repeat(4096);
        let wal = dir.path().join("certgate.db-wal");
        let mut largest = 0;
        for n in 0..3_000 {
            store.append_audit_event(n, "test", &record).await.unwrap();
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            reader.await.unwrap();
        }
        let written = std::fs::metadata(&path).unwrap().len();
        println!("wal: largest {largest} bytes, database {written} bytes");
        assert!(written > WAL_SIZE_LIMIT_BYTES, "{written}");
        assert!(
            largest <= WAL_SIZE_LIMIT_BYTES,
            "the WAL grew to {largest} bytes"
        );
    }
}
