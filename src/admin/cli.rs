//! `certgate certs ...` and `certgate accounts ...`.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::offline::StoreFlags;

#[derive(Debug, Args)]
pub struct CertsArgs {
    #[command(flatten)]
    pub store: StoreFlags,
    #[command(subcommand)]
    pub command: CertsCommand,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// List issued certificates.
    List,
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
    /// List ACME accounts.
    List,
}

pub async fn run_certs(args: CertsArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    Ok(ExitCode::SUCCESS)
}

pub async fn run_accounts(args: AccountsArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    Ok(ExitCode::SUCCESS)
}
