//! `certgate-bench`: full ACME issuances against any directory URL, with
//! real HTTP-01 served from this process, and the figures of
//! docs/performance.md.
//!
//! - `load`: N accounts issuing for T seconds against a running server.
//! - `seed`: many certificates written into a data dir, for scale figures.
//! - `run`: starts certgate (and Pebble, if asked) itself and prints the
//!   whole table in one command.

mod client;
mod load;
mod process;
mod run;
mod seed;
mod server;
mod vault;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;

#[derive(Debug, Parser)]
#[command(
    name = "certgate-bench",
    about = "Load and scale figures for ACME servers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive full issuances (newOrder, HTTP-01, finalize, download) against
    /// a running server and print the figures.
    Load(LoadArgs),
    /// Write COUNT issued certificates into a certgate data dir (SQLite),
    /// through certgate's store, signed by its embedded CA.
    Seed(SeedArgs),
    /// Start certgate on a fresh data dir (seeded if asked), measure
    /// /metrics and memory at rest, run the load at each client count, and
    /// print one table; with --pebble, the same load against Pebble.
    Run(run::RunArgs),
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// The server's directory URL.
    #[arg(long)]
    directory: String,
    /// PEM root the server's TLS certificate chains to.
    #[arg(long, conflicts_with = "insecure")]
    root: Option<PathBuf>,
    /// Do not check the server's TLS certificate.
    #[arg(long)]
    insecure: bool,
    /// Concurrent accounts, each issuing one certificate after another.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// How long new issuances are started.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Where HTTP-01 answers are served: the server's HTTP-01 port.
    #[arg(long, default_value = "127.0.0.1:5002")]
    http01_listen: SocketAddr,
    /// Where the DNS stub answers 127.0.0.1 for every name: the server's
    /// resolver (certgate --resolver, pebble -dnsserver).
    #[arg(long, default_value = "127.0.0.1:8053")]
    dns_listen: SocketAddr,
    /// The server's process id, for its CPU time per issuance and peak RSS.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Debug, clap::Args)]
struct SeedArgs {
    /// The data dir (created if missing, with its embedded CA).
    #[arg(long)]
    data_dir: PathBuf,
    /// Certificates to add.
    #[arg(long)]
    certificates: usize,
    /// The profile they are issued under.
    #[arg(long, default_value = "default")]
    profile: String,
}

/// The HTTP-01 responder and DNS stub a load needs, on the given addresses.
pub struct Responders {
    pub http01: Arc<Http01Responder>,
    pub dns: DnsStub,
}

impl Responders {
    pub async fn start(http01: SocketAddr, dns: SocketAddr) -> Self {
        Self {
            http01: Arc::new(Http01Responder::start_on(http01).await),
            dns: DnsStub::start_on(dns).await,
        }
    }
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let responders = Responders::start(args.http01_listen, args.dns_listen).await;
    let root = match (&args.root, args.insecure) {
        (Some(path), _) => Some(std::fs::read(path)?),
        (None, true) => None,
        (None, false) => anyhow::bail!("give --root PEM, or --insecure"),
    };
    let target = load::Target {
        directory_url: &args.directory,
        root_pem: root.as_deref(),
        http01: responders.http01.clone(),
        pid: args.pid,
    };
    let report = load::run(&target, args.clients, args.duration).await?;
    for line in report.lines() {
        println!("{line}");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Load(args) => load(args).await,
        Command::Seed(args) => {
            let took = seed::seed(&args.data_dir, &args.profile, args.certificates).await?;
            println!(
                "seeded {} certificates in {:.1} s",
                args.certificates,
                took.as_secs_f64()
            );
            Ok(())
        }
        Command::Run(args) => run::run(args).await,
    }
}
