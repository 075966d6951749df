//! Persistence of ACME resources in SQLite or PostgreSQL through sqlx.
//!
//! This is the only module that writes SQL, and each statement is one text
//! both databases run (sqlx's `Any` driver; what differs is in [`backend`]).
//! Every status change is a compare-and-set (`UPDATE … WHERE status = …`)
//! so that concurrent requests and background tasks cannot both win a
//! transition, and every write runs as one transaction on the [`writer`],
//! so a crash leaves either the old state or the new one and a dropped
//! request never leaves a write half-done. Reads go to a pool.

mod accounts;
mod admission;
mod audit;
mod backend;
mod certificates;
pub mod copy;
pub mod eab;
pub mod inventory;
mod leases;
mod models;
mod nonces;
mod orders;
#[cfg(test)]
mod races;
mod rate_limits;
mod readers;
mod retention;
mod reuse;
mod signing;
pub mod stats;
pub mod superseded;
#[cfg(test)]
pub(crate) mod testing;
pub mod vault_certificates;
mod writer;

use std::time::{Duration, Instant};

use readers::Readers;
use sqlx::Connection;

pub use backend::{sqlite_file, Backend, WAL_SIZE_LIMIT_BYTES};
pub use leases::{Lease, LeasedWork};
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
    #[error("database URL {0:?}: only sqlite: and postgres:// URLs are supported")]
    UnsupportedUrl(String),
    /// `serve` was told not to migrate and the database is behind.
    #[error("database: migrations {0:?} are not applied yet; run `certgate migrate` first")]
    NotMigrated(Vec<i64>),
}

impl StoreError {
    /// Seconds a client is asked to wait after an [unavailable](Self::is_unavailable)
    /// fault: short, so that a client retrying on its own gets through soon
    /// after the cause is gone.
    pub const RETRY_AFTER_SECS: u64 = 5;

    /// True for a fault of the disk, the file, the lock, the network or the
    /// database server rather than of the data: a full disk, an I/O error,
    /// a read-only file, a database locked by another process, a server
    /// that cannot be reached or is shutting down, or the writer closed by
    /// a shutdown. The same write may succeed later, so the client is told
    /// to retry.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(error)) => Backend::is_transient(error.as_ref()),
            Self::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed,
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
    /// Reads (on SQLite, read-only connections: a dropped read cannot leave
    /// anything behind).
    pool: Readers,
    writer: Writer,
    /// Which database this is, for the few statements whose text differs.
    backend: Backend,
    write_probe: std::sync::Arc<tokio::sync::Mutex<WriteProbe>>,
}

/// Whether [`Store::open_with`] brings the schema up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrations {
    /// Apply what is missing (two processes doing so at once take turns).
    Apply,
    /// Apply nothing; refuse a database that is behind.
    Require,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(url, Migrations::Apply).await
    }

    /// Opens the database at `url`; `migrations` says whether to bring its
    /// schema up to date or to require that it is.
    pub async fn open_with(url: &str, migrations: Migrations) -> StoreResult<Self> {
        let backend = Self::backend_of(url)?;
        let mut connection = backend.connect(url).await?;
        match migrations {
            Migrations::Apply => backend.migrations().run(&mut connection).await?,
            Migrations::Require => require_migrated(backend, &mut connection).await?,
        }
        let pool = backend.readers(url).await?;
        let writer = match &pool {
            Readers::Pool(shared) => {
                let _ = connection.close().await;
                Writer::concurrent(shared.clone())
            }
            Readers::Sqlite(_) => Writer::serial(connection, url),
        };
        Ok(Self {
            pool,
            writer,
            backend,
            write_probe: Default::default(),
        })
    }

    /// Applies the migrations `url` lacks and closes it (`certgate
    /// migrate`). sqlx's migrator holds PostgreSQL's advisory lock for the
    /// database while it works, so two processes migrating at once take
    /// turns, and the second finds nothing left to do.
    pub async fn migrate(url: &str) -> StoreResult<()> {
        Self::open(url).await?.close().await;
        Ok(())
    }

    /// The backend `url` names, ready to be connected to: sqlx's drivers
    /// installed and, for SQLite, the file created private to its owner.
    fn backend_of(url: &str) -> StoreResult<Backend> {
        let backend = Backend::of_url(url)
            .ok_or_else(|| StoreError::UnsupportedUrl(crate::config::database::redacted(url)))?;
        sqlx::any::install_default_drivers();
        if let Some(file) = sqlite_file(url) {
            // SQLite would create the file with the umask's mode (often 0644).
            crate::util::data_dir::create_private_file(&file).map_err(sqlx::Error::Io)?;
        }
        Ok(backend)
    }

    /// File descriptors the store holds at most, on either backend: on
    /// SQLite each connection (the read pool and the writer) has the
    /// database, its WAL and its shared-memory file open; on PostgreSQL each
    /// connection of the pool is one socket.
    pub const OPEN_FILES: u64 = {
        let sqlite = (backend::SQLITE_READ_POOL_SIZE as u64 + 1) * 3;
        let postgres = backend::POSTGRES_POOL_SIZE as u64;
        if sqlite > postgres {
            sqlite
        } else {
            postgres
        }
    };

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Runs `work` as one write transaction on the writer; see [`writer`]
    /// for why a dropped caller cannot interrupt it.
    pub async fn write<T: Send + 'static>(&self, work: impl Work<T>) -> StoreResult<T> {
        self.writer.write(work).await
    }

    /// [`Store::write`] for a unit that takes its locks before it reads
    /// what it decides on (see [`backend::Isolation::RowLocks`]).
    pub(super) async fn write_row_locked<T: Send + 'static>(
        &self,
        work: impl Work<T>,
    ) -> StoreResult<T> {
        self.writer.write_row_locked(work).await
    }

    /// Runs `work`, one statement, as a write of its own: on SQLite a unit
    /// like any other, on PostgreSQL without `BEGIN` and `COMMIT` around
    /// it (a statement alone is a transaction), which spares the round
    /// trips of a write made on every request (a nonce).
    async fn write_statement<T: Send + 'static>(&self, work: impl Work<T>) -> StoreResult<T> {
        self.writer.write_statement(work).await
    }

    /// Whether the database takes writes, proven by one small write at most
    /// every few seconds; concurrent callers share one probe. `Err` says
    /// why not, in the database's words (`database or disk is full`).
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
                        "INSERT INTO write_probe (id, at) VALUES (1, $1)
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

    /// Lets the writes under way finish, then closes every connection.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// The versions of the migrations applied to the database; none when it
/// has no table of migrations yet.
async fn applied_migrations(connection: &mut sqlx::AnyConnection) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
        .fetch_all(&mut *connection)
        .await
        .unwrap_or_default()
}

/// Refuses a database whose schema lacks any of `backend`'s migrations.
async fn require_migrated(
    backend: Backend,
    connection: &mut sqlx::AnyConnection,
) -> StoreResult<()> {
    let applied = applied_migrations(connection).await;
    let missing: Vec<i64> = backend
        .migrations()
        .iter()
        .map(|migration| migration.version)
        .filter(|version| !applied.contains(version))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::NotMigrated(missing))
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
