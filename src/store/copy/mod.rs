//! Every row of one database into another (`certgate db copy`): SQLite to
//! PostgreSQL when one server becomes several replicas, and back.
//!
//! The source is read inside one snapshot (a read transaction on SQLite, a
//! `REPEATABLE READ READ ONLY` one on PostgreSQL), so the copy is of one
//! moment even if something writes meanwhile; keeping writers away (the
//! SQLite data dir's `serve.lock`) is the caller's part. The target is
//! migrated first, then filled in one transaction on a connection of its
//! own: a target that already holds a row is refused before anything is
//! written, and a copy that fails or is killed half-way leaves the target
//! as empty as it was.
//!
//! Rows travel column by column with the types the migrations give them
//! ([`TABLES`]): text, 64-bit integers (times are unix seconds, flags 0 or
//! 1), doubles and blobs, each possibly NULL, all of which both databases
//! store exactly. Tables go parents first, so every foreign key finds its
//! row. Two columns are numbered by the target instead: `orders.rowid` and
//! `audit_events.id` only order rows (an account's order list, the audit
//! log), and rows are inserted in that order, so the order is kept. The
//! `write_probe` row is readiness's own and is not copied, nor are the
//! outstanding nonces of the replicas that were stopped for the copy
//! (a client holding one is told `badNonce` with a fresh one, and retries).
//! Leases travel with their work: a lease nobody renews runs out, and a
//! SQLite start takes its data's `processing` work over at once. Last, each
//! table's rows are counted on both sides.

use futures_util::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Connection, Executor, Row};

use super::backend::Isolation;
use super::{sqlite_file, Backend, Store, StoreError};
use crate::config::database::redacted;

/// How a column is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Real,
    Blob,
}

use Kind::{Blob, Integer, Real, Text};

/// A table as the copy sees it.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    /// The order rows are read and inserted in.
    order_by: &'static str,
}

/// Every table that holds data, each before the tables whose foreign keys
/// name it (`orders.replaces` names a certificate; a certificate's order
/// is no foreign key). `copies_every_column_of_the_schema` keeps this in
/// step with the migrations.
const TABLES: &[Table] = &[
    Table {
        name: "accounts",
        columns: &[
            ("id", Text),
            ("key_thumbprint", Text),
            ("jwk", Text),
            ("contact", Text),
            ("tos_agreed", Integer),
            ("status", Text),
            ("created_at", Integer),
        ],
        order_by: "id",
    },
    Table {
        name: "certificates",
        columns: &[
            ("id", Text),
            ("order_id", Text),
            ("account_id", Text),
            ("profile", Text),
            ("serial", Text),
            ("names", Text),
            ("chain_pem", Text),
            ("not_before", Integer),
            ("not_after", Integer),
            ("revoked_at", Integer),
            ("revocation_reason", Integer),
            ("created_at", Integer),
            ("superseded_by", Text),
        ],
        order_by: "id",
    },
    Table {
        name: "orders",
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("profile", Text),
            ("status", Text),
            ("identifiers", Text),
            ("expires_at", Integer),
            ("csr", Blob),
            ("error", Text),
            ("created_at", Integer),
            ("updated_at", Integer),
            ("sign_attempted_at", Integer),
            ("replaces", Text),
            ("lease_owner", Text),
            ("lease_until", Integer),
        ],
        order_by: "rowid",
    },
    Table {
        name: "authorizations",
        columns: &[
            ("id", Text),
            ("account_id", Text),
            ("identifier_type", Text),
            ("identifier_value", Text),
            ("wildcard", Integer),
            ("status", Text),
            ("expires_at", Integer),
            ("created_at", Integer),
        ],
        order_by: "id",
    },
    Table {
        name: "order_authorizations",
        columns: &[
            ("order_id", Text),
            ("authorization_id", Text),
            ("position", Integer),
        ],
        order_by: "order_id, authorization_id",
    },
    Table {
        name: "challenges",
        columns: &[
            ("id", Text),
            ("authorization_id", Text),
            ("type", Text),
            ("token", Text),
            ("status", Text),
            ("validated_at", Integer),
            ("error", Text),
            ("position", Integer),
            ("lease_owner", Text),
            ("lease_until", Integer),
        ],
        order_by: "id",
    },
    Table {
        name: "eab_keys",
        columns: &[
            ("kid", Text),
            ("profile", Text),
            ("key_ciphertext", Blob),
            ("key_nonce", Blob),
            ("names", Text),
            ("note", Text),
            ("created_at", Integer),
            ("expires_at", Integer),
            ("revoked_at", Integer),
            ("account_id", Text),
            ("bound_at", Integer),
        ],
        order_by: "kid",
    },
    Table {
        name: "rate_limit_buckets",
        columns: &[
            ("key", Text),
            ("tokens", Real),
            ("updated_at", Integer),
            ("full_at", Integer),
        ],
        order_by: "key",
    },
    Table {
        name: "vault_certificates",
        columns: &[
            ("mount", Text),
            ("serial", Text),
            ("role", Text),
            ("names", Text),
            ("chain_pem", Text),
            ("not_before", Integer),
            ("not_after", Integer),
            ("revoked_at", Integer),
            ("public_key_sha256", Text),
            ("is_ca", Integer),
            ("order_id", Text),
            ("account_id", Text),
            ("profile", Text),
            ("superseded_by", Text),
            ("synced_at", Integer),
        ],
        order_by: "mount, serial",
    },
    Table {
        name: "audit_events",
        columns: &[("at", Integer), ("event", Text), ("record", Text)],
        order_by: "id",
    },
];

/// Columns of the schema that are not copied, as `table.column` (see the
/// module's documentation).
#[cfg(test)]
const NOT_COPIED: &[&str] = &[
    "audit_events.id",
    "write_probe.id",
    "write_probe.at",
    "nonces.nonce",
    "nonces.issued_at",
];

/// Parameters one INSERT binds at most: below SQLite's oldest limit (999).
const PARAMETERS_PER_INSERT: usize = 900;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("the source {url}: {source}")]
    Source { url: String, source: StoreError },
    #[error("the target {url}: {source}")]
    Target { url: String, source: StoreError },
    #[error("the source {0} does not exist")]
    NoSource(String),
    #[error(
        "the source {url} has migrations {versions:?}, which this certgate does not know: \
         copy it with the certgate that made them"
    )]
    NewerSource { url: String, versions: Vec<i64> },
    #[error("copying table {table}: {source}")]
    Copying {
        table: &'static str,
        source: sqlx::Error,
    },
    #[error(
        "the target {url} already holds rows ({tables}): db copy only fills an empty \
         database, and changed nothing"
    )]
    TargetNotEmpty { url: String, tables: String },
    #[error(
        "table {table}: {read} rows read from the source, which counts {source_rows}, \
         and {target} in the target; nothing was committed"
    )]
    Miscounted {
        table: &'static str,
        read: u64,
        source_rows: u64,
        target: u64,
    },
}

/// One table, copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    pub table: &'static str,
    pub rows: u64,
}

/// One value of a row, as its column's kind reads it.
#[derive(Debug)]
enum Value {
    Text(Option<String>),
    Integer(Option<i64>),
    Real(Option<f64>),
    Blob(Option<Vec<u8>>),
}

impl Value {
    fn read(row: &AnyRow, index: usize, kind: Kind) -> Result<Self, sqlx::Error> {
        Ok(match kind {
            Text => Self::Text(row.try_get(index)?),
            Integer => Self::Integer(row.try_get(index)?),
            Real => Self::Real(row.try_get(index)?),
            Blob => Self::Blob(row.try_get(index)?),
        })
    }

    fn bind(self, query: AnyQuery<'_>) -> AnyQuery<'_> {
        match self {
            Self::Text(v) => query.bind(v),
            Self::Integer(v) => query.bind(v),
            Self::Real(v) => query.bind(v),
            Self::Blob(v) => query.bind(v),
        }
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

impl Table {
    fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }

    fn select(&self) -> String {
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            self.column_list(),
            self.name,
            self.order_by
        )
    }

    /// `INSERT … VALUES ($1, $2), ($3, $4)…` for `rows` rows.
    fn insert(&self, rows: usize) -> String {
        let width = self.columns.len();
        let tuples: Vec<String> = (0..rows)
            .map(|row| {
                let places: Vec<String> = (1..=width)
                    .map(|column| format!("${}", row * width + column))
                    .collect();
                format!("({})", places.join(", "))
            })
            .collect();
        format!(
            "INSERT INTO {} ({}) VALUES {}",
            self.name,
            self.column_list(),
            tuples.join(", ")
        )
    }

    fn rows_per_insert(&self) -> usize {
        (PARAMETERS_PER_INSERT / self.columns.len()).max(1)
    }
}

async fn count(connection: &mut AnyConnection, table: &str) -> Result<u64, sqlx::Error> {
    let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(connection)
        .await?;
    Ok(rows as u64)
}

/// Inserts `rows` (each a value per column of `table`) with one statement.
async fn insert(
    target: &mut AnyConnection,
    table: &Table,
    rows: Vec<Vec<Value>>,
) -> Result<(), sqlx::Error> {
    let sql = table.insert(rows.len());
    let query = rows
        .into_iter()
        .flatten()
        .fold(sqlx::query(&sql), |query, value| value.bind(query));
    query.execute(target).await?;
    Ok(())
}

/// Copies `table`'s rows in order; returns how many were read.
async fn copy_table(
    source: &mut AnyConnection,
    target: &mut AnyConnection,
    table: &Table,
) -> Result<u64, sqlx::Error> {
    let select = table.select();
    let mut rows = source.fetch(select.as_str());
    let mut batch = Vec::with_capacity(table.rows_per_insert());
    let mut read = 0;
    while let Some(row) = rows.try_next().await? {
        let values = table
            .columns
            .iter()
            .enumerate()
            .map(|(index, (_, kind))| Value::read(&row, index, *kind))
            .collect::<Result<Vec<_>, _>>()?;
        batch.push(values);
        read += 1;
        if batch.len() == table.rows_per_insert() {
            insert(target, table, std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        insert(target, table, batch).await?;
    }
    Ok(read)
}

/// Opens the source for reading inside one snapshot, refusing one whose
/// schema is not this certgate's.
async fn open_source(url: &str) -> Result<(Backend, AnyConnection), CopyError> {
    let shown = redacted(url);
    let failed = |source: StoreError| CopyError::Source {
        url: shown.clone(),
        source,
    };
    let backend =
        Backend::of_url(url).ok_or_else(|| failed(StoreError::UnsupportedUrl(shown.clone())))?;
    if sqlite_file(url).is_some_and(|file| !file.exists()) {
        return Err(CopyError::NoSource(shown));
    }
    sqlx::any::install_default_drivers();
    let mut connection = AnyConnection::connect(url)
        .await
        .map_err(|e| failed(e.into()))?;
    super::require_migrated(backend, &mut connection)
        .await
        .map_err(failed)?;
    // Columns of a newer schema would be left behind.
    let unknown: Vec<i64> = super::applied_migrations(&mut connection)
        .await
        .into_iter()
        .filter(|version| {
            !backend
                .migrations()
                .iter()
                .any(|migration| migration.version == *version)
        })
        .collect();
    if !unknown.is_empty() {
        return Err(CopyError::NewerSource {
            url: shown,
            versions: unknown,
        });
    }
    connection
        .execute(backend.begin_snapshot())
        .await
        .map_err(|e| failed(e.into()))?;
    Ok((backend, connection))
}

/// Copies every row of `from` into `to`, which is migrated first and must
/// hold no row. Returns each table's rows, in the order they were copied.
pub async fn copy(from: &str, to: &str) -> Result<Vec<CopiedTable>, CopyError> {
    let (_, mut source) = open_source(from).await?;
    let target_url = redacted(to);
    let on_target = |source: StoreError| CopyError::Target {
        url: target_url.clone(),
        source,
    };
    Store::migrate(to).await.map_err(on_target)?;
    let backend = Backend::of_url(to).expect("Store::migrate took the URL");
    let mut target = backend.connect(to).await.map_err(on_target)?;
    target
        .execute(backend.begin(Isolation::Serializable))
        .await
        .map_err(|e| on_target(e.into()))?;
    let outcome = fill(&mut source, &mut target, &target_url).await;
    let _ = source.close().await;
    match outcome {
        Ok(copied) => {
            target
                .execute("COMMIT")
                .await
                .map_err(|e| on_target(e.into()))?;
            let _ = target.close().await;
            Ok(copied)
        }
        // Dropping the connection unfinished would roll back as well.
        Err(error) => {
            let _ = target.execute("ROLLBACK").await;
            let _ = target.close().await;
            Err(error)
        }
    }
}

/// Refuses a target with rows, then copies and counts every table.
async fn fill(
    source: &mut AnyConnection,
    target: &mut AnyConnection,
    target_url: &str,
) -> Result<Vec<CopiedTable>, CopyError> {
    let on_target = |e: sqlx::Error| CopyError::Target {
        url: target_url.to_owned(),
        source: e.into(),
    };
    let mut held = Vec::new();
    for table in TABLES {
        let rows = count(target, table.name).await.map_err(on_target)?;
        if rows > 0 {
            held.push(format!("{}: {rows}", table.name));
        }
    }
    if !held.is_empty() {
        return Err(CopyError::TargetNotEmpty {
            url: target_url.to_owned(),
            tables: held.join(", "),
        });
    }
    let mut copied = Vec::new();
    for table in TABLES {
        let copying = |source| CopyError::Copying {
            table: table.name,
            source,
        };
        let read = copy_table(source, target, table).await.map_err(copying)?;
        let source_rows = count(source, table.name).await.map_err(copying)?;
        let target_rows = count(target, table.name).await.map_err(copying)?;
        if read != source_rows || read != target_rows {
            return Err(CopyError::Miscounted {
                table: table.name,
                read,
                source_rows,
                target: target_rows,
            });
        }
        tracing::debug!(table = table.name, rows = read, "copied");
        copied.push(CopiedTable {
            table: table.name,
            rows: read,
        });
    }
    Ok(copied)
}

#[cfg(test)]
mod tests;
