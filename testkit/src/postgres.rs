//! A PostgreSQL database of its own for each test that wants one, created
//! on the server named by `CERTGATE_TEST_POSTGRES_URL` (by default the
//! local one, `postgres://postgres@127.0.0.1:5432/postgres`) and dropped
//! when the test ends.
//!
//! Where no server answers, the test cannot run on PostgreSQL: it says so
//! on stderr and, when `CERTGATE_TESTS_NOT_RUN` names a file, adds a line
//! there, so that a run without PostgreSQL lists what it did not test
//! instead of passing quietly.

use std::io::Write;

use rand::Rng;
use sqlx::{Connection, Executor, PgConnection};

/// The server's maintenance database, where databases are created and
/// dropped.
fn admin_url() -> String {
    std::env::var("CERTGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether a PostgreSQL server answers; when not, `test` is noted as not
/// run.
pub async fn available(test: &str) -> bool {
    match PgConnection::connect(&admin_url()).await {
        Ok(connection) => {
            let _ = connection.close().await;
            true
        }
        Err(error) => {
            note_not_run(test, &error.to_string());
            false
        }
    }
}

/// A database that exists for as long as this value.
#[derive(Debug)]
pub struct TemporaryDatabase {
    name: String,
    url: String,
}

impl TemporaryDatabase {
    /// A new empty database for `test`, or `None` (noted as not run) when
    /// no PostgreSQL server answers.
    pub async fn create(test: &str) -> Option<Self> {
        let admin = admin_url();
        let mut connection = match PgConnection::connect(&admin).await {
            Ok(connection) => connection,
            Err(error) => {
                note_not_run(test, &error.to_string());
                return None;
            }
        };
        let name = format!(
            "certgate_test_{}_{:016x}",
            std::process::id(),
            rand::thread_rng().gen::<u64>()
        );
        connection
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .expect("creating a test database");
        let _ = connection.close().await;
        let mut url = reqwest::Url::parse(&admin).expect("CERTGATE_TEST_POSTGRES_URL");
        url.set_path(&name);
        Some(Self {
            name,
            url: url.into(),
        })
    }

    /// `postgres://…/<the database>`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TemporaryDatabase {
    /// Drops the database, ending whatever connections still use it. Drop
    /// cannot await, so this runs on a thread with a runtime of its own.
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async move {
                let mut connection = PgConnection::connect(&admin_url()).await?;
                connection.execute(statement.as_str()).await?;
                connection.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("test database {} was not dropped: {dropped:?}", self.name);
        }
    }
}

/// Says loudly that `test` did not run on PostgreSQL, and why.
pub fn note_not_run(test: &str, why: &str) {
    eprintln!("NOT RUN ON POSTGRESQL: {test} ({why})");
    if let Ok(path) = std::env::var("CERTGATE_TESTS_NOT_RUN") {
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{test} (PostgreSQL: {why})");
        }
    }
}
