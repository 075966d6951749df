//! certgate's SQLite database as a test reads it: with certgate stopped, or
//! beside it (WAL lets a reader in while the server writes).

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, SqliteConnection};

/// `<data-dir>/certgate.db`, read-only.
pub async fn open_read_only(data_dir: &Path) -> SqliteConnection {
    open(data_dir, true).await
}

/// `<data-dir>/certgate.db` for a test that changes it behind certgate's
/// back (ageing rows, planting a fault): only while certgate is stopped.
pub async fn open_writable(data_dir: &Path) -> SqliteConnection {
    open(data_dir, false).await
}

async fn open(data_dir: &Path, read_only: bool) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(data_dir.join("certgate.db"))
        .read_only(read_only)
        .connect()
        .await
        .expect("opening certgate.db")
}
