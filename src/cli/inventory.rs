//! `certgate certs list | show` and `certgate accounts list | deactivate`:
//! the inventory from the command line, on the server's data, also while
//! the server runs.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::audit::{Actor, AuditLog};
use crate::cli::offline::{OfflineContext, StoreFlags};
use crate::cli::output::print_json;
use crate::domain::accounts::{deactivate_account, Deactivation};
use crate::domain::inventory::export::{export, ExportFormat};
use crate::domain::inventory::export_dir::{export_current, Source};
use crate::domain::inventory::filter::certificate_filter;
use crate::domain::inventory::view::AccountListing;
use crate::store::Store;
use crate::util::clock::{Clock, SystemClock};

#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(flatten)]
    pub store: StoreFlags,
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// List issued certificates, soonest expiry first: serial, names,
    /// profile, account, not-after and status (valid, expired, revoked).
    List(ListArgs),
    /// Export one certificate as PEM or DER, to stdout or a file.
    Show(ShowArgs),
    /// Write the current certificate (neither revoked, expired nor
    /// superseded) of each set of names into a folder, as
    /// `<first name>.pem` (leaf and chain) or `<first name>.der` (leaf).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The folder to write into (made when missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = ExportFormat::Pem)]
    pub format: ExportFormat,
    /// Only certificates of this profile.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Only certgate's own (`acme`) or those found at Vault (`vault`).
    #[arg(long, value_enum)]
    pub source: Option<Source>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only certificates of this profile.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Only certificates still in use (neither revoked nor expired) that
    /// expire within this long, e.g. 30d, 12h.
    #[arg(
        long,
        value_name = "DURATION",
        conflicts_with = "revoked",
        allow_hyphen_values = true
    )]
    pub expiring_within: Option<String>,
    /// Only revoked certificates.
    #[arg(long)]
    pub revoked: bool,
    /// Superseded certificates too: those a newer certificate for the same
    /// names (of the same account) replaced.
    #[arg(long)]
    pub all: bool,
    /// Print a JSON array of objects (the admin API's shape) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The serial in hex, as `certs list` or `openssl x509 -serial` prints
    /// it (any case, `:` separators allowed).
    #[arg(value_name = "SERIAL")]
    pub serial: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Pem)]
    pub format: ExportFormat,
    /// The leaf followed by its chain, as ACME clients get it. PEM only:
    /// DER holds a single certificate.
    #[arg(long)]
    pub chain: bool,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AccountsArgs {
    #[command(flatten)]
    pub store: StoreFlags,
    #[command(subcommand)]
    pub command: AccountsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// List ACME accounts, oldest first: id, status, contact, created and
    /// how many certificates each was issued.
    List {
        /// Print a JSON array of objects (the admin API's shape) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Deactivate an account (RFC 8555 §7.3.6): it can no longer order
    /// certificates, and its unfinished orders become invalid. Its
    /// certificates stay valid; revoke them separately if needed.
    Deactivate {
        /// The account id, as `accounts list` prints it (the last segment
        /// of the account URL). Ids are base64url, so one may start with
        /// `-`: it is taken as the id, not as a flag.
        #[arg(value_name = "ID", allow_hyphen_values = true)]
        id: String,
    },
}

pub async fn run_certs(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let context = OfflineContext::open(args.store).await?;
    let now = SystemClock.now();
    let outcome = match args.command {
        CertsCommand::List(list_args) => list_certificates(&context.store, list_args, now).await,
        CertsCommand::Show(show_args) => show_certificate(&context.store, show_args).await,
        CertsCommand::Export(export_args) => export_folder(&context.store, export_args, now).await,
    };
    context.store.close().await;
    outcome
}

pub async fn run_accounts(args: AccountsArgs) -> anyhow::Result<ExitCode> {
    let context = OfflineContext::open(args.store).await?;
    let now = SystemClock.now();
    let outcome = match args.command {
        AccountsCommand::List { json } => list_accounts(&context.store, json).await,
        AccountsCommand::Deactivate { id } => {
            deactivate(&context.store, &context.audit, &id, now).await
        }
    };
    context.store.close().await;
    outcome
}

async fn list_certificates(store: &Store, args: ListArgs, now: i64) -> anyhow::Result<ExitCode> {
    let filter = certificate_filter(
        args.profile,
        args.expiring_within.as_deref(),
        args.revoked,
        args.all,
        now,
    )?;
    let certificates = crate::domain::inventory::certificate_views(store, &filter, now)
        .await
        .context("listing certificates")?;
    if args.json {
        print_json(&certificates)?;
    } else if certificates.is_empty() {
        eprintln!("no certificates match");
    } else {
        print_table(
            &[
                "SERIAL",
                "NAMES",
                "PROFILE",
                "ACCOUNT",
                "NOT-AFTER",
                "STATUS",
            ],
            certificates.into_iter().map(|c| {
                vec![
                    c.serial,
                    c.names.join(","),
                    c.profile,
                    c.account,
                    c.not_after,
                    c.status.as_str().to_owned(),
                ]
            }),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn show_certificate(store: &Store, args: ShowArgs) -> anyhow::Result<ExitCode> {
    let Some(certificate) = store
        .certificate_by_typed_serial(&args.serial)
        .await
        .context("looking up the certificate")?
    else {
        eprintln!("there is no certificate with serial {}", args.serial);
        return Ok(ExitCode::FAILURE);
    };
    let bytes = export(&certificate, args.format, args.chain)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None if args.format == ExportFormat::Der && std::io::stdout().is_terminal() => {
            anyhow::bail!("DER is binary: redirect stdout or pass --out FILE")
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&bytes).context("writing to stdout")?;
            stdout.flush().context("writing to stdout")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export_folder(store: &Store, args: ExportArgs, now: i64) -> anyhow::Result<ExitCode> {
    let written = export_current(
        store,
        &args.dir,
        args.format,
        args.profile,
        args.source,
        now,
    )
    .await
    .context("exporting certificates")?;
    for path in &written {
        println!("{}", path.display());
    }
    if written.is_empty() {
        eprintln!("no certificates match");
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_accounts(store: &Store, json: bool) -> anyhow::Result<ExitCode> {
    let accounts: Vec<AccountListing> = store
        .list_accounts()
        .await
        .context("listing accounts")?
        .iter()
        .map(|(account, certificates)| AccountListing::new(account, *certificates))
        .collect();
    if json {
        print_json(&accounts)?;
    } else if accounts.is_empty() {
        eprintln!("no accounts");
    } else {
        print_table(
            &["ID", "STATUS", "CONTACT", "CREATED", "CERTIFICATES"],
            accounts.into_iter().map(|a| {
                let contact = if a.contact.is_empty() {
                    "-".to_owned()
                } else {
                    a.contact.join(",")
                };
                vec![
                    a.id,
                    a.status.as_str().to_owned(),
                    contact,
                    a.created,
                    a.certificates.to_string(),
                ]
            }),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn deactivate(
    store: &Store,
    audit: &AuditLog,
    id: &str,
    now: i64,
) -> anyhow::Result<ExitCode> {
    let outcome = deactivate_account(store, audit, id, Actor::Cli, now)
        .await
        .context("deactivating the account")?;
    Ok(match outcome {
        Deactivation::Deactivated => {
            println!("deactivated account {id}");
            ExitCode::SUCCESS
        }
        Deactivation::AlreadyInactive(status) => {
            println!("account {id} is already {status}; nothing changed");
            ExitCode::SUCCESS
        }
        Deactivation::Unknown => {
            eprintln!("there is no account {id:?}");
            ExitCode::FAILURE
        }
    })
}

/// Columns padded to their widest cell, two spaces apart; the last column
/// is not padded, so lines carry no trailing blanks.
fn print_table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = rows.collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([headers[column].len()])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(&rows) {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[column] - cell.chars().count() + 2;
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(stdout, "{line}").context("writing to stdout")?;
    }
    Ok(())
}
