//! `certgate ca`: the embedded CA's folder, for an operator who makes it
//! ahead of the servers: several replicas sign with one CA by mounting one
//! folder, read-only, from a secret (`certgate ca create --ca-dir ./ca &&
//! kubectl create secret generic certgate-ca --from-file=./ca`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::{Config, ServeFlags};
use crate::issuer::local::{CaFiles, EmbeddedCa};

#[derive(Debug, Args)]
pub struct CaArgs {
    #[command(subcommand)]
    pub command: CaCommand,
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Generate the embedded CA into its folder unless one is there, and
    /// print its files and the root's SHA-256 fingerprint.
    Create(CaDirFlags),
}

/// Where the CA is: the settings `certgate serve` reads it by.
#[derive(Debug, Clone, Args)]
pub struct CaDirFlags {
    /// The server's TOML config file.
    #[arg(long, env = "CERTGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The server's data directory [default: ./certgate-data].
    #[arg(long, env = "CERTGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The CA's folder [default: <data-dir>/ca].
    #[arg(long, env = "CERTGATE_CA_DIR", value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
}

impl CaDirFlags {
    /// The folder these flags (and the config file) name. Nothing else is
    /// made: not the data directory, not the database.
    fn ca_dir(self) -> anyhow::Result<PathBuf> {
        let config = Config::load_with_env(
            ServeFlags {
                config: self.config,
                data_dir: self.data_dir,
                ca_dir: self.ca_dir,
                ..Default::default()
            },
            &super::offline::env_without_vault_credentials,
        )
        .context("configuration")?;
        Ok(config.ca_dir)
    }
}

pub fn run(args: CaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CaCommand::Create(flags) => create(flags),
    }
}

fn create(flags: CaDirFlags) -> anyhow::Result<ExitCode> {
    let dir = flags.ca_dir()?;
    let made = EmbeddedCa::create_unless_present(&dir)
        .with_context(|| format!("creating the embedded CA in {}", dir.display()))?;
    let ca = EmbeddedCa::load(&dir)
        .with_context(|| format!("loading the embedded CA in {}", dir.display()))?;
    if made {
        println!("created the embedded CA in {}", dir.display());
    } else {
        println!(
            "the embedded CA in {} exists; it was left as it is",
            dir.display()
        );
    }
    print_files(&CaFiles::in_dir(&dir));
    println!("root SHA-256  {}", fingerprint(&ca.root_sha256()));
    Ok(ExitCode::SUCCESS)
}

/// Each file of the CA and what it is for.
fn print_files(files: &CaFiles) {
    for (path, what) in [
        (&files.root_pem, "the root clients trust"),
        (
            &files.root_key,
            "the root's key: serve never reads it, keep it offline",
        ),
        (
            &files.intermediate_pem,
            "the intermediate, sent with each certificate",
        ),
        (
            &files.intermediate_key,
            "the intermediate's key, which signs",
        ),
    ] {
        println!("{:<40}  {what}", path.display());
    }
}

/// `AB:CD:…`, as `openssl x509 -noout -fingerprint -sha256` prints it.
pub(super) fn fingerprint(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
