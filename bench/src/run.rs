//! `certgate-bench run`: one command for the figures of
//! docs/performance.md. It starts the release binary on a fresh data dir
//! (seeded first when asked), measures `/metrics` and memory at rest, runs
//! the load at each client count against that one process, and prints the
//! table; with `--pebble`, the same load against Pebble, for the ratio.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::load::{self, mib, Report};
use crate::server::{self, Server};
use crate::{process, seed, vault, Responders};

/// Scrapes of `/metrics` timed at rest (after one that warms up).
const SCRAPES: usize = 20;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Client counts to run, one load each, in this order.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    clients: Vec<usize>,
    /// How long each load starts new issuances.
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Certificates to seed the data dir with before certgate starts.
    #[arg(long, default_value_t = 0)]
    seed: usize,
    /// The certgate binary [default: `certgate` beside this one, i.e.
    /// target/release/certgate for a release build].
    #[arg(long)]
    certgate: Option<PathBuf>,
    /// The data dir [default: a fresh temporary one, removed at the end].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Also run the load against Pebble, this binary (Debian: /usr/bin/pebble).
    #[arg(long)]
    pebble: Option<PathBuf>,
    /// Also run the loads with certgate signing at Vault: the
    /// Vault-compatible PKI server of certgate's tests, in this process,
    /// answering at once, so that the server's CPU is certgate's alone.
    #[arg(long)]
    vault: bool,
}

/// `certgate` beside the running `certgate-bench`.
fn sibling_certgate() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    Ok(me.with_file_name("certgate"))
}

/// What `/proc/meminfo` calls the machine's memory, in GB.
fn memory_gb() -> String {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.map_or("?".into(), |k| format!("{:.0}", k * 1024.0 / 1e9))
}

/// Median and largest time of [`SCRAPES`] scrapes of `/metrics`.
async fn time_metrics(server: &Server) -> anyhow::Result<(Duration, Duration)> {
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&server.root_pem)?)
        .build()?;
    let url = format!("{}/metrics", server.base_url);
    let scrape = || async {
        let response = http.get(&url).send().await?.error_for_status()?;
        anyhow::Ok(response.bytes().await?)
    };
    scrape().await?;
    let mut times = Vec::with_capacity(SCRAPES);
    for _ in 0..SCRAPES {
        let started = Instant::now();
        scrape().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times[SCRAPES / 2], times[SCRAPES - 1]))
}

/// One row of the printed table.
fn row(server: &str, report: &Report) -> String {
    let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
    let failures: Vec<String> = report
        .failures
        .iter()
        .map(|(failure, count)| format!("{count} {}", failure.0))
        .collect();
    format!(
        "| {server} | {} | {:.0} | {} / {} / {} | {} | {} | {} |",
        report.clients,
        report.per_second(),
        ms(report.percentile(50.0)),
        ms(report.percentile(90.0)),
        ms(report.percentile(99.0)),
        report
            .cpu_per_issuance()
            .map_or("-".into(), |d| format!("{:.2}", d.as_secs_f64() * 1000.0)),
        report
            .server_peak_rss
            .map_or("-".into(), |b| format!("{:.0}", mib(b))),
        if failures.is_empty() {
            "0".to_owned()
        } else {
            failures.join(", ")
        },
    )
}

/// Runs the loads against `server`, printing a row as each ends.
async fn loads(
    name: &str,
    server: &Server,
    responders: &Responders,
    args: &RunArgs,
) -> anyhow::Result<()> {
    let target = load::Target {
        directory_url: &server.directory_url,
        root_pem: Some(&server.root_pem),
        http01: responders.http01.clone(),
        pid: Some(server.pid()?),
    };
    for &clients in &args.clients {
        let report = load::run(&target, clients, args.duration).await?;
        println!("{}", row(name, &report));
    }
    Ok(())
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let binary = match &args.certgate {
        Some(path) => path.clone(),
        None => sibling_certgate()?,
    };
    let temporary = tempfile::tempdir()?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().join("data"));
    println!(
        "machine: {} cores, {} GB; {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gb(),
        binary.display()
    );
    if args.seed > 0 {
        let took = seed::seed(
            &data_dir,
            certgate::config::profiles::DEFAULT_PROFILE,
            args.seed,
        )
        .await?;
        println!(
            "seeded {} certificates in {:.1} s",
            args.seed,
            took.as_secs_f64()
        );
    }
    let any = "127.0.0.1:0".parse()?;
    let responders = Responders::start(any, any).await;
    let via = server::Via {
        http01_port: responders.http01.port(),
        resolver: responders.dns.addr(),
    };
    let server = server::certgate(&binary, &data_dir, &via, None).await?;
    measured("certgate", server, &responders, &args).await?;

    if args.vault {
        let vault = vault::Vault::start(temporary.path()).await?;
        let data_dir = temporary.path().join("data-vault");
        let server = server::certgate(&binary, &data_dir, &via, Some(&vault.config)).await?;
        measured("certgate+vault", server, &responders, &args).await?;
        println!(
            "Vault stand-in: {} sign requests, {} signed",
            vault.standin.sign_count(),
            vault.standin.issued_count()
        );
    }

    if let Some(pebble) = &args.pebble {
        let dir = temporary.path().join("pebble");
        std::fs::create_dir_all(&dir)?;
        let server = server::pebble(pebble, &dir, &via).await?;
        print_header();
        loads("pebble", &server, &responders, &args).await?;
        server.stop().await?;
    }
    keep_note(&args, &data_dir);
    Ok(())
}

/// Memory and `/metrics` of `server` at rest, then the loads, then its
/// memory after them; stops it.
async fn measured(
    name: &str,
    server: Server,
    responders: &Responders,
    args: &RunArgs,
) -> anyhow::Result<()> {
    let pid = server.pid()?;
    let (median, max) = time_metrics(&server).await?;
    println!(
        "{name} at rest: RSS {:.1} MB; /metrics median {:.2} ms, max {:.2} ms ({SCRAPES} scrapes)",
        mib(process::rss(pid)?),
        median.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0
    );
    print_header();
    loads(name, &server, responders, args).await?;
    println!(
        "{name} after the loads: RSS {:.1} MB, peak {:.1} MB; log {}",
        mib(process::rss(pid)?),
        mib(process::peak_rss(pid)?),
        server.log.display()
    );
    server.stop().await
}

fn print_header() {
    println!("| server | clients | issuances/s | p50 / p90 / p99 ms | server CPU ms/issuance | peak RSS MB | failures |");
    println!("|---|---|---|---|---|---|---|");
}

fn keep_note(args: &RunArgs, data_dir: &Path) {
    if args.data_dir.is_some() {
        println!("data dir kept: {}", data_dir.display());
    }
}
