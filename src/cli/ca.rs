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
    /// Print the root's SHA-256 fingerprint, as `openssl x509 -noout
    /// -fingerprint -sha256` does: what clients compare the root they
    /// fetched against.
    Fingerprint(CaDirFlags),
    /// Print the root certificate (PEM), the one clients must trust.
    Root(CaDirFlags),
    /// Read a PEM certificate on stdin (e.g. `curl -k
    /// https://host:8443/ca/root.pem`), and print it again if its SHA-256
    /// fingerprint is FINGERPRINT; exit 1 if it is not.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The root's SHA-256 fingerprint, as `certgate ca fingerprint` printed
    /// it on the server (hex; colons and case do not matter).
    #[arg(long, value_name = "HEX")]
    pub fingerprint: String,
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
        CaCommand::Fingerprint(flags) => {
            let ca = existing(flags)?;
            println!("{}", fingerprint(&ca.root_sha256()));
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Root(flags) => {
            print!("{}", existing(flags)?.root_pem());
            Ok(ExitCode::SUCCESS)
        }
        CaCommand::Verify(args) => verify(&args.fingerprint),
    }
}

/// The CA these flags name, which must be there: reading it never makes one.
fn existing(flags: CaDirFlags) -> anyhow::Result<EmbeddedCa> {
    let dir = flags.ca_dir()?;
    if !EmbeddedCa::exists_in(&dir)
        .with_context(|| format!("reading the embedded CA in {}", dir.display()))?
    {
        anyhow::bail!(
            "there is no embedded CA in {}: `certgate serve` makes it at its first start, `certgate ca create` ahead of it (or give --data-dir, --ca-dir or --config as serve has them)",
            dir.display()
        );
    }
    EmbeddedCa::load(&dir).with_context(|| format!("loading the embedded CA in {}", dir.display()))
}

/// The bootstrap check: the root read from stdin is passed on to stdout
/// only when its fingerprint is the one the operator gave.
fn verify(expected: &str) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let Some(expected) = crate::util::fingerprint::parse(expected) else {
        anyhow::bail!(
            "--fingerprint {expected:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)"
        );
    };
    let mut pem = Vec::new();
    std::io::stdin()
        .read_to_end(&mut pem)
        .context("reading the certificate from stdin")?;
    let Some(actual) = crate::util::fingerprint::of_first_pem_certificate(&pem) else {
        eprintln!("stdin holds no PEM certificate");
        return Ok(ExitCode::FAILURE);
    };
    if actual != expected {
        eprintln!(
            "MISMATCH: the certificate's SHA-256 is {}, not {}: do not trust it",
            fingerprint(&actual),
            fingerprint(&expected)
        );
        return Ok(ExitCode::FAILURE);
    }
    print!("{}", String::from_utf8_lossy(&pem));
    eprintln!("ok: SHA-256 {}", fingerprint(&actual));
    Ok(ExitCode::SUCCESS)
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
    crate::util::fingerprint::colon_hex(digest)
}
