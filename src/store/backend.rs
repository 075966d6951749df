//! What differs between SQLite and PostgreSQL, and nothing else: every
//! statement of the store is one SQL text that both accept (sqlx's `Any`
//! driver, `$N` placeholders), so the differences left are how a write
//! transaction begins, what a new connection is told, which migrations
//! apply, how rows are picked for a claim, and which faults are worth a
//! retry or a `503`.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::error::DatabaseError;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, Connection, Executor};

use super::readers::{Readers, SqliteReaders};
use super::StoreResult;
pub use crate::config::database::DatabaseKind as Backend;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a write waits for another process's SQLite write lock (an
/// offline command) before it fails as unavailable.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite connections of the read pool; reads are short, writes go to the
/// one writer.
pub(super) const SQLITE_READ_POOL_SIZE: u32 = 8;

/// PostgreSQL connections of one process, reads and writes together. Each
/// replica holds at most this many, so a server's `max_connections` (100 by
/// default) leaves room for several replicas and the tools of its operators.
pub(super) const POSTGRES_POOL_SIZE: u32 = 16;

/// How long a request waits for a PostgreSQL connection before it is told
/// to come back (`503`): long enough for a burst, short enough that a lost
/// server is noticed while the client still waits.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages after which a SQLite commit copies the log back into the
/// database.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 1000;
/// The size the WAL file is cut back to after a checkpoint, so that a burst
/// of writes does not leave a large file behind for good.
pub const WAL_SIZE_LIMIT_BYTES: u64 = 8 * 1024 * 1024;

/// SQLSTATEs of PostgreSQL that say "this transaction lost a race; run it
/// again": a serialization failure and a deadlock.
const CONFLICT_STATES: [&str; 2] = ["40001", "40P01"];

/// SQLSTATE classes and codes of PostgreSQL faults outside certgate that
/// clear when their cause does: connection exceptions (08), insufficient
/// resources such as a full disk or too many connections (53), a server
/// shutting down or starting (57P01–57P03), a read-only standby after a
/// failover (25006), and a conflict that kept losing its retries.
const TRANSIENT_POSTGRES_STATES: [&str; 8] = [
    "08", "53", "57P01", "57P02", "57P03", "25006", "40001", "40P01",
];

/// SQLite's primary result codes of faults outside certgate, which clear
/// when their cause does: busy and locked (another process holds the write
/// lock past the busy timeout), read-only, I/O error, full, cannot open.
const TRANSIENT_SQLITE_CODES: [i64; 6] = [5, 6, 8, 10, 13, 14];

/// How a PostgreSQL unit is kept from seeing or making a state that units
/// run one after another could not (SQLite's one writer needs neither).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) enum Isolation {
    /// SERIALIZABLE: the database finds the unit that lost a race, which is
    /// run again. Right for units that touch few rows few others touch.
    Serializable,
    /// READ COMMITTED, the unit taking a lock on what it reads before it
    /// decides (`FOR UPDATE`, or a lock on a key): concurrent units on the
    /// same rows wait for each other instead of failing. Right for the hot
    /// rows many units share (a domain's rate-limit bucket), where
    /// SERIALIZABLE sends most of them back to run again, and for units
    /// whose reads it would lock whole tables for.
    RowLocks,
}

impl Backend {
    /// The migrations of this backend, kept in step with the other's.
    pub(super) fn migrations(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The statement that opens a write unit. SQLite's IMMEDIATE takes the
    /// write lock up front: the offline commands may write from another
    /// process, and a deferred transaction could then fail half-way with a
    /// busy snapshot. PostgreSQL runs units side by side; SERIALIZABLE
    /// makes each unit that reads and then writes (a compare-and-set, a
    /// rate-limit bucket, an EAB key bound once) behave as if the units had
    /// run one after another, as they do on SQLite, and a unit that lost
    /// is run again ([`Backend::is_conflict`]). A unit that takes its own
    /// locks first ([`Isolation::RowLocks`]) runs at READ COMMITTED instead.
    pub(super) fn begin(self, isolation: Isolation) -> &'static str {
        match (self, isolation) {
            (Self::Sqlite, _) => "BEGIN IMMEDIATE",
            (Self::Postgres, Isolation::Serializable) => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            (Self::Postgres, Isolation::RowLocks) => "BEGIN ISOLATION LEVEL READ COMMITTED",
        }
    }

    /// What a `SELECT` that locks the rows it reads until the unit ends
    /// ends with: `FOR UPDATE` on PostgreSQL, nothing on SQLite, whose one
    /// writer already runs units one at a time.
    pub(super) fn for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => "FOR UPDATE",
        }
    }

    /// A statement that holds a lock on `$1` (any text) until the unit
    /// ends, for what has no row to lock yet (a rate-limit bucket never
    /// stored): a transaction-scoped advisory lock on PostgreSQL; none on
    /// SQLite.
    pub(super) fn lock_key(self) -> Option<&'static str> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"),
        }
    }

    /// What a `SELECT` that picks rows for this process to claim ends
    /// with. PostgreSQL locks the rows it picks and passes over those a
    /// concurrent claim holds (`FOR UPDATE SKIP LOCKED`), so replicas
    /// sweeping at once each claim different rows instead of waiting for
    /// each other or failing; SQLite's one writer runs claims one at a time
    /// and needs (and knows) no such clause.
    pub(super) fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }

    /// The statement that opens a read of one moment (`db copy`'s source):
    /// SQLite's deferred transaction reads one snapshot of the WAL from its
    /// first SELECT; PostgreSQL needs REPEATABLE READ for one snapshot.
    pub(super) fn begin_snapshot(self) -> &'static str {
        match self {
            Self::Sqlite => "BEGIN",
            Self::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }

    /// True when a unit failed only because a concurrent one won: it may
    /// simply run again. Never on SQLite, whose units run one at a time.
    pub(super) fn is_conflict(self, error: &sqlx::Error) -> bool {
        match (self, error) {
            (Self::Postgres, sqlx::Error::Database(db)) => db
                .code()
                .is_some_and(|code| CONFLICT_STATES.contains(&code.as_ref())),
            _ => false,
        }
    }

    /// A new connection for writes (SQLite's writer, a migration); on
    /// SQLite with the writer's PRAGMAs.
    pub(super) async fn connect(self, url: &str) -> StoreResult<AnyConnection> {
        let mut connection = AnyConnection::connect(url).await?;
        if let Some(setup) = self.writer_setup() {
            connection.execute(setup.as_str()).await?;
        }
        Ok(connection)
    }

    /// Where reads go (and, on PostgreSQL, write units too).
    pub(super) async fn readers(self, url: &str) -> StoreResult<Readers> {
        Ok(match self {
            Self::Sqlite => Readers::Sqlite(
                SqliteReaders::open(url, SQLITE_READER_SETUP.clone(), SQLITE_READ_POOL_SIZE)
                    .await?,
            ),
            Self::Postgres => Readers::Pool(
                AnyPoolOptions::new()
                    .max_connections(POSTGRES_POOL_SIZE)
                    .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                    // A ping before every use would double the round trips;
                    // a connection the server dropped fails its one request
                    // as unavailable and is replaced.
                    .test_before_acquire(false)
                    .connect_lazy(url)?,
            ),
        })
    }

    /// The PRAGMAs of SQLite's write connection: WAL lets readers proceed
    /// while the writer commits; the busy timeout queues the writer behind
    /// another process's write instead of failing; the WAL is checkpointed
    /// and cut back to its limit.
    fn writer_setup(self) -> Option<String> {
        match self {
            Self::Sqlite => Some(format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {};
                 PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};
                 PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}",
                BUSY_TIMEOUT.as_millis()
            )),
            Self::Postgres => None,
        }
    }

    /// True for a fault of the disk, the file, the lock, the network or
    /// the server rather than of the data (see the constants above).
    pub(super) fn is_transient(error: &dyn DatabaseError) -> bool {
        if error
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some()
        {
            let code = error.code().unwrap_or_default();
            return TRANSIENT_POSTGRES_STATES
                .iter()
                .any(|state| code.starts_with(state));
        }
        error
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            // Extended codes keep the primary code in the low byte.
            .is_some_and(|code| TRANSIENT_SQLITE_CODES.contains(&(code & 0xff)))
    }
}

/// The SQLite file a `sqlite:` URL names (`None` for PostgreSQL, or a
/// database in memory).
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    if Backend::of_url(url) != Some(Backend::Sqlite)
        || url.contains(":memory:")
        || url.contains("mode=memory")
    {
        return None;
    }
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().ok()?;
    Some(options.get_filename().to_owned())
}

/// The PRAGMAs of SQLite's read connections: never a write (`query_only`),
/// so a dropped read cannot leave anything behind.
static SQLITE_READER_SETUP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = {}; PRAGMA query_only = ON",
        BUSY_TIMEOUT.as_millis()
    )
});

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use sqlx::{AnyConnection, Connection};

    use super::Backend;
    use crate::store::testing::{on, TestDatabase};
    use crate::store::Store;

    /// `table.column` of every column, and the name of every index, of a
    /// migrated database of the test's backend.
    async fn schema(backend: Backend) -> (BTreeSet<String>, BTreeSet<String>) {
        let database = TestDatabase::create().await;
        Store::migrate(database.url()).await.unwrap();
        let mut connection = AnyConnection::connect(database.url()).await.unwrap();
        let (columns, indexes) = match backend {
            Backend::Sqlite => (
                "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
                "SELECT name FROM sqlite_master
                 WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex_%'",
            ),
            Backend::Postgres => (
                // SQLite's implicit rowid is a column of its own here.
                "SELECT table_name || '.' || column_name FROM information_schema.columns
                 WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'
                   AND column_name <> 'rowid'",
                // Indexes behind PRIMARY KEY and UNIQUE are SQLite's autoindexes.
                "SELECT indexname::text FROM pg_indexes
                 WHERE schemaname = 'public' AND indexname NOT LIKE '%\\_pkey'
                   AND indexname NOT LIKE '%\\_key'",
            ),
        };
        let columns = names(&mut connection, columns).await;
        let indexes = names(&mut connection, indexes).await;
        connection.close().await.unwrap();
        (columns, indexes)
    }

    async fn names(connection: &mut AnyConnection, sql: &str) -> BTreeSet<String> {
        let names: Vec<String> = sqlx::query_scalar(sql).fetch_all(connection).await.unwrap();
        names.into_iter().collect()
    }

    /// The two sets of migrations make the same tables, columns and
    /// indexes.
    #[tokio::test]
    async fn the_migrations_of_both_backends_are_in_step() {
        let name = concat!(
            module_path!(),
            "::the_migrations_of_both_backends_are_in_step"
        );
        let (sqlite_columns, sqlite_indexes) = schema(Backend::Sqlite).await;
        let mut postgres = None;
        on(Backend::Postgres, name, async {
            postgres = Some(schema(Backend::Postgres).await);
        })
        .await;
        let Some((postgres_columns, postgres_indexes)) = postgres else {
            return;
        };
        assert!(
            sqlite_columns.contains("orders.replaces"),
            "{sqlite_columns:?}"
        );
        assert_eq!(sqlite_columns, postgres_columns);
        assert!(
            sqlite_indexes.contains("orders_by_expiry"),
            "{sqlite_indexes:?}"
        );
        assert_eq!(sqlite_indexes, postgres_indexes);
    }

    /// PostgreSQL's errors reach the store through the Any driver as
    /// PostgreSQL's own: a server shutting down (57P01) or out of disk
    /// (53100) is unavailable, a unique violation (23505) is not.
    #[tokio::test]
    async fn postgres_faults_are_sorted_by_their_sqlstate() {
        let name = concat!(
            module_path!(),
            "::postgres_faults_are_sorted_by_their_sqlstate"
        );
        on(Backend::Postgres, name, async {
            let (_database, store) = crate::store::testing::temporary().await;
            for (state, unavailable) in [("57P01", true), ("53100", true), ("23505", false)] {
                let error = store
                    .write(move |connection| {
                        Box::pin(async move {
                            let raise = format!(
                                "DO $$ BEGIN RAISE EXCEPTION 'planted' USING ERRCODE = '{state}'; END $$"
                            );
                            sqlx::query(&raise).execute(&mut *connection).await?;
                            Ok(())
                        })
                    })
                    .await
                    .unwrap_err();
                assert_eq!(error.is_unavailable(), unavailable, "{state}: {error:?}");
            }
        })
        .await
    }
}
