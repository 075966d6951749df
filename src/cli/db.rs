//! `certgate db copy --from URL --to URL`: the documented way from SQLite
//! to PostgreSQL when one server becomes several replicas (and back). The
//! store copies (`store::copy`); here the source is kept from changing: a
//! SQLite source is copied only while this process holds its data dir's
//! `serve.lock`, so a running server makes the copy refuse instead of
//! racing it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use crate::config::database::redacted;
use crate::store::copy::copy;
use crate::store::sqlite_file;
use crate::util::serve_lock::{ServeLock, ServeLockError};

#[derive(Debug, Args)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every row of one database into an empty one (migrated first),
    /// in one transaction, and print each table's rows. Stop the servers
    /// of the source first.
    Copy(CopyArgs),
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The database to copy: sqlite://FILE or postgres://….
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The database to fill; it must hold no row.
    #[arg(long, value_name = "URL")]
    pub to: String,
    /// The data dir of the server of a SQLite source, whose serve.lock is
    /// held during the copy [default: the folder of the --from file].
    #[arg(long, env = "CERTGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

pub async fn run(args: DbArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        DbCommand::Copy(copy_args) => copy_database(copy_args).await,
    }
}

/// The lock of the data dir behind a SQLite source, held for the copy;
/// `None` for PostgreSQL, whose replicas take no lock.
fn lock_source(args: &CopyArgs) -> anyhow::Result<Option<ServeLock>> {
    // A missing file is for the copy to refuse, with its own words.
    let Some(file) = sqlite_file(&args.from).filter(|file| file.exists()) else {
        return Ok(None);
    };
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => match file.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
            _ => PathBuf::from("."),
        },
    };
    match ServeLock::acquire(&data_dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(ServeLockError::Held { data_dir, holder }) => bail!(
            "certgate ({holder}) is serving data dir {}: stop it before copying its \
             database, so that nothing is written to the source while it is copied",
            data_dir.display()
        ),
        Err(error) => Err(error).context("locking the source's data dir"),
    }
}

async fn copy_database(args: CopyArgs) -> anyhow::Result<ExitCode> {
    let _lock = lock_source(&args)?;
    let (from, to) = (redacted(&args.from), redacted(&args.to));
    let copied = copy(&args.from, &args.to)
        .await
        .with_context(|| format!("copying {from} to {to}"))?;
    println!("copied {from} to {to}");
    println!("{:<24} {:>10}", "table", "rows");
    for table in &copied {
        println!("{:<24} {:>10}", table.table, table.rows);
    }
    Ok(ExitCode::SUCCESS)
}
