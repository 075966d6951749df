//! `certgate migrate`: brings the database's schema up to date without
//! serving, for deployments that start `serve` with `migrate = false` and
//! migrate as a step of their own (a job before the rollout of replicas).
//! Two of them at once take turns (see `Store::migrate`).

use anyhow::Context;
use clap::Args;

use super::offline::StoreFlags;
use crate::config::database::redacted;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: StoreFlags,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<std::process::ExitCode> {
    let config = args.store.load()?;
    let url = redacted(&config.database_url);
    Store::migrate(&config.database_url)
        .await
        .with_context(|| format!("migrating the database {url}"))?;
    println!("database {url}: schema up to date");
    Ok(std::process::ExitCode::SUCCESS)
}
