//! The `certgate` command line.

use std::io::IsTerminal;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use certgate::config::{Config, ServeFlags};

#[derive(Debug, Parser)]
#[command(
    name = "certgate",
    version,
    about = "An ACME server (RFC 8555) in front of HashiCorp Vault PKI, with an embedded CA"
)]
struct Cli {
    /// How log lines look on stderr: `text` for people, `json` (one object
    /// per line) for log collectors.
    #[arg(
        long,
        env = "CERTGATE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Logs go to stderr (stdout stays free for command output); text is
/// coloured only when a person is watching. `RUST_LOG` picks the levels
/// [default: info].
fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::stderr().is_terminal())
            .finish()
            .with(vault_library_errors_off())
            .init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(vault_library_errors_off())
            .init(),
    }
}

/// Drops the ERROR events of the Vault client libraries. vaultrs and
/// rustify log every error status at each of their layers (four or five
/// ERROR lines for one 503 from a sealed Vault, again at every retry);
/// certgate logs each failure itself, once, saying what it means. Their
/// warnings (Vault's own, such as a capped TTL) still come through.
fn vault_library_errors_off(
) -> tracing_subscriber::filter::FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool> {
    filter_fn(|metadata| {
        let library = ["vaultrs", "rustify"].iter().any(|crate_name| {
            metadata
                .target()
                .strip_prefix(crate_name)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        });
        !(library && *metadata.level() == tracing::Level::ERROR)
    })
}

/// With `--log-format json` a command that fails says why in one more JSON
/// line, so a log collector sees a failed start like any other event; text
/// keeps anyhow's report (`Error: …` and its causes).
fn failure_as_log_line(
    outcome: anyhow::Result<std::process::ExitCode>,
    format: LogFormat,
) -> anyhow::Result<std::process::ExitCode> {
    match (outcome, format) {
        (Err(e), LogFormat::Json) => {
            tracing::error!(error = %format!("{e:#}"), "certgate failed");
            Ok(std::process::ExitCode::FAILURE)
        }
        (outcome, _) => outcome,
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the ACME server. With no options: embedded CA and SQLite in
    /// ./certgate-data, HTTPS on 127.0.0.1:8443.
    Serve(ServeFlags),
    /// Check a configuration without serving: load it, reach Vault, log in,
    /// read each profile's role and its mount's CA chain (with --offline:
    /// only what needs no network). Prints one line per finding; exits 1 if
    /// any is a problem.
    CheckConfig(CheckConfigArgs),
    /// The config file: `certgate config example` prints a complete,
    /// commented one.
    Config(ConfigArgs),
    /// Write a short config for a new install (the embedded CA, or with
    /// --vault the Vault variant) and make its data directory, owned by the
    /// service user with --user.
    Init(certgate::cli::init::InitArgs),
    /// External account binding keys (RFC 8555 §7.3.4) for profiles with
    /// eab = "optional" or "required": create, list, revoke.
    Eab(certgate::cli::eab::EabArgs),
    /// The certificates certgate issued: list them (with expiry filters),
    /// show or export one as PEM or DER.
    Certs(certgate::cli::inventory::CertsArgs),
    /// ACME accounts: list them, deactivate one.
    Accounts(certgate::cli::inventory::AccountsArgs),
    /// dns-persist-01: print the TXT record an account publishes once to
    /// prove a name for as long as it stands.
    DnsPersist(certgate::cli::dns_persist::DnsPersistArgs),
    /// Apply the database's migrations and exit (serve applies them at
    /// start unless told `--migrate false`).
    Migrate(certgate::cli::migrate::MigrateArgs),
    /// The embedded CA: `certgate ca create` makes it ahead of the servers,
    /// for a folder several replicas mount.
    Ca(certgate::cli::ca::CaArgs),
    /// The database: `certgate db copy` copies every row into an empty
    /// database, e.g. from SQLite to PostgreSQL.
    Db(certgate::cli::db::DbArgs),
}

#[derive(Debug, clap::Args)]
struct CheckConfigArgs {
    /// Check only what needs no network: syntax, values, listeners, and the
    /// files the config names that are on this machine. Vault is not asked.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    flags: ServeFlags,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print a complete config file: every setting, with its default and
    /// what it does, commented (the same file as deploy/certgate.example.toml).
    Example,
}

/// The example config, compiled in so the printed file and the one in the
/// repository are the same file.
const EXAMPLE_CONFIG: &str = include_str!("../deploy/certgate.example.toml");

/// Resolves on SIGINT or SIGTERM. Both handlers are installed when this is
/// called, not when it is first polled: certgate says it is serving only
/// after they are, so a stop sent the moment it is up is a graceful one
/// rather than the default action's abrupt exit.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    }
}

async fn serve(flags: ServeFlags) -> anyhow::Result<()> {
    let config = Config::load(flags).context("configuration")?;
    let stop_requested = shutdown_signal();
    let server = certgate::app::start(config)
        .await
        .context("starting certgate")?;
    let stop = server.shutdown_handle();
    tokio::spawn(async move {
        stop_requested.await;
        tracing::info!("stopping: finishing open requests");
        stop.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    server.wait().await.context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

async fn check_config(args: CheckConfigArgs) -> anyhow::Result<std::process::ExitCode> {
    let config = match Config::load(args.flags) {
        Ok(config) => config,
        Err(e) => {
            println!("PROBLEM  configuration: {e}");
            return Ok(std::process::ExitCode::FAILURE);
        }
    };
    let findings = if args.offline {
        certgate::cli::check_config::offline(&config)
    } else {
        certgate::cli::check_config::check(&config).await
    };
    for finding in &findings {
        println!("{finding}");
    }
    Ok(if findings.iter().any(|f| f.is_problem()) {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let outcome = match cli.command {
        Command::Serve(flags) => serve(flags).await.map(|()| std::process::ExitCode::SUCCESS),
        Command::CheckConfig(args) => check_config(args).await,
        Command::Config(ConfigArgs {
            command: ConfigCommand::Example,
        }) => {
            print!("{EXAMPLE_CONFIG}");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Init(args) => certgate::cli::init::run(args),
        Command::Eab(args) => certgate::cli::eab::run(args).await,
        Command::Certs(args) => certgate::cli::inventory::run_certs(args).await,
        Command::Accounts(args) => certgate::cli::inventory::run_accounts(args).await,
        Command::DnsPersist(args) => certgate::cli::dns_persist::run(args).await,
        Command::Migrate(args) => certgate::cli::migrate::run(args).await,
        Command::Ca(args) => certgate::cli::ca::run(args),
        Command::Db(args) => certgate::cli::db::run(args).await,
    };
    failure_as_log_line(outcome, cli.log_format)
}
