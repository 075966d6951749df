//! Persistence of ACME resources in SQLite through sqlx.
//!
//! This is the only module that writes SQL. Every status change is a
//! compare-and-set (`UPDATE … WHERE status = …`) so that concurrent requests
//! and background tasks cannot both win a transition, and every multi-row
//! change runs in one `BEGIN IMMEDIATE` transaction so a crash leaves either
//! the old state or the new one.

mod accounts;
mod audit;
mod certificates;
pub mod eab;
pub mod inventory;
mod models;
mod orders;
mod rate_limits;
mod reuse;
mod signing;
pub mod stats;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlitePool, Transaction};

pub use models::*;

/// Errors of the persistence layer. Callers turn them into `serverInternal`.
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
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    ///
    /// WAL lets readers proceed while one writer commits; the busy timeout
    /// makes concurrent writers queue instead of failing.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// A write transaction that takes the write lock up front, so it never
    /// fails half-way with a busy snapshot when another writer got there first.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
