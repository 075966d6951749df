//! certgate's configuration: one [`Config`], filled from command-line flags,
//! then `CERTGATE_*` environment variables, then the TOML file named by
//! `--config`, then defaults — the first that says something wins. The
//! `[profiles.<name>]` and `[vault]` tables exist only in the file.

pub mod connections;
pub mod database;
pub mod inventory;
mod limit_settings;
pub mod networks;
pub mod profiles;
pub mod rate_limits;
mod token_bucket;
pub mod validation_limits;
pub mod values;
pub mod vault;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

pub use profiles::{EabPolicy, ProfileIssuer, ProfileSettings};
pub use values::{parse_duration, parse_resolver};
pub use vault::{VaultAuth, VaultSettings};

use connections::{ConnectionLimits, ConnectionSettings};
use rate_limits::RateLimits;
use validation_limits::ValidationLimits;
use values::{parse_retention, parse_work_lease};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// The settings `certgate serve` runs with, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// The embedded CA's folder: made on first start when missing, or
    /// mounted read-only, the same on every replica.
    pub ca_dir: PathBuf,
    /// The key that encrypts EAB keys at rest, shared like `ca_dir`.
    pub eab_key_file: PathBuf,
    /// Whether `serve` applies the database's migrations at start (else
    /// `certgate migrate` does, and `serve` refuses a database behind it).
    pub migrate: bool,
    pub http01_port: u16,
    pub tls_alpn01_port: u16,
    /// DNS servers for every validation lookup; empty means the system's.
    pub resolvers: Vec<SocketAddr>,
    pub cert_lifetime: Duration,
    /// How long a valid authorization stays valid, and so reusable by new
    /// orders of the same account and profile.
    pub authorization_reuse: Duration,
    /// Extra names for certgate's own HTTPS certificate.
    pub tls_names: Vec<String>,
    /// Public base URL when certgate sits behind a proxy or a fixed name.
    pub external_url: Option<String>,
    /// Every profile, in name order.
    pub profiles: Vec<ProfileSettings>,
    /// The profile served at `/acme/directory`.
    pub default_profile: String,
    /// Set when at least one profile signs through Vault.
    pub vault: Option<VaultSettings>,
    /// Limits on newOrder, finalize and newAccount.
    pub rate_limits: RateLimits,
    /// How many validations run at once, in all and per account.
    pub validation_limits: ValidationLimits,
    /// How long a process's hold on a validation or issuance lasts without
    /// renewal; another process takes over work whose lease ran out.
    pub work_lease: Duration,
    /// Extra plain-HTTP listener for /metrics.
    pub metrics_listen: Option<SocketAddr>,
    /// The admin API listener and the file with its bearer token; both or neither.
    pub admin: Option<AdminSettings>,
    /// Where audit lines are written besides the database.
    pub audit_log: AuditLogTarget,
    /// How long orders (and the authorizations and challenges only they
    /// use) are kept after they ended; `None` keeps them for ever.
    pub retention: Option<Duration>,
    /// Timeouts and caps of every listener's connections.
    pub connections: ConnectionLimits,
    /// Whether the public `/status` lists certificates (names and serials);
    /// the admin API always does.
    pub status_page_certificates: bool,
    /// The `[inventory]` table: Vault mounts listed, the export folder.
    pub inventory: inventory::InventorySettings,
}

/// The admin API: off unless both an address and a token file are given.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    pub token_file: PathBuf,
}

/// Where the audit log's JSON lines go (the database table always has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditLogTarget {
    File(PathBuf),
    Stdout,
    Off,
}

impl AuditLogTarget {
    fn parse(text: Option<String>, data_dir: &Path) -> Self {
        match text.as_deref().map(str::trim) {
            None | Some("") => Self::File(data_dir.join("audit.log")),
            Some("-") => Self::Stdout,
            Some("off") => Self::Off,
            Some(path) => Self::File(PathBuf::from(path)),
        }
    }
}

/// Settings of `certgate serve`: each is a flag, reads `CERTGATE_<NAME>`,
/// and is a key of the config file (the flag's name with `_`). One struct
/// serves all three so they cannot drift apart.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeFlags {
    /// TOML file with any of the settings below (keys as the flags, with `_`).
    #[arg(long, env = "CERTGATE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address and port of the HTTPS listener [default: 127.0.0.1:8443].
    #[arg(long, env = "CERTGATE_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Folder for the database and the embedded CA [default: ./certgate-data].
    #[arg(long, env = "CERTGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: sqlite://FILE, or postgres://USER@HOST/DB for a
    /// PostgreSQL server [default: sqlite://<data-dir>/certgate.db].
    #[arg(long, env = "CERTGATE_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// Folder of the embedded CA, made on first start if missing; replicas
    /// mount one read-only [default: <data-dir>/ca].
    #[arg(long, env = "CERTGATE_CA_DIR", value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,

    /// Key that encrypts external account keys, made by the first `eab
    /// create` if missing; replicas mount one read-only [default:
    /// <data-dir>/eab.key].
    #[arg(long, env = "CERTGATE_EAB_KEY_FILE", value_name = "FILE")]
    pub eab_key_file: Option<PathBuf>,

    /// Apply the database's migrations at start; with false, run
    /// `certgate migrate` first [default: true].
    #[arg(long, env = "CERTGATE_MIGRATE", value_name = "BOOL")]
    pub migrate: Option<bool>,

    /// Port on which HTTP-01 challenges are fetched from clients [default: 80].
    #[arg(
        long = "http01-port",
        env = "CERTGATE_HTTP01_PORT",
        value_name = "PORT"
    )]
    pub http01_port: Option<u16>,

    /// Port on which TLS-ALPN-01 challenges are checked [default: 443].
    #[arg(
        long = "tls-alpn01-port",
        env = "CERTGATE_TLS_ALPN01_PORT",
        value_name = "PORT"
    )]
    pub tls_alpn01_port: Option<u16>,

    /// DNS server for validation lookups; repeat for several (env: comma-separated)
    /// [default: the system's resolvers].
    #[arg(
        long = "resolver",
        env = "CERTGATE_RESOLVER",
        value_name = "ADDR:PORT",
        value_delimiter = ','
    )]
    #[serde(rename = "resolver", alias = "resolvers")]
    pub resolvers: Vec<String>,

    /// Lifetime of issued certificates, e.g. 90d, 24h, 1h [default: 90d].
    #[arg(long, env = "CERTGATE_CERT_LIFETIME", value_name = "DURATION")]
    #[arg(allow_hyphen_values = true)]
    pub cert_lifetime: Option<String>,

    /// How long a validated authorization stays valid and is reused by new
    /// orders of the same account and profile, so renewals skip validation
    /// [default: 30d].
    #[arg(long, env = "CERTGATE_AUTHORIZATION_REUSE", value_name = "DURATION")]
    #[arg(allow_hyphen_values = true)]
    pub authorization_reuse: Option<String>,

    /// Extra name for certgate's own HTTPS certificate, besides localhost and
    /// 127.0.0.1; repeat for several (env: comma-separated).
    #[arg(
        long = "tls-name",
        env = "CERTGATE_TLS_NAME",
        value_name = "NAME",
        value_delimiter = ','
    )]
    #[serde(rename = "tls_name", alias = "tls_names")]
    pub tls_names: Vec<String>,

    /// Public base URL of this server (e.g. https://acme.lab.example), when
    /// the Host header clients send should not be trusted to build URLs.
    #[arg(long, env = "CERTGATE_EXTERNAL_URL", value_name = "URL")]
    pub external_url: Option<String>,

    /// Profile served at /acme/directory [default: the profile called
    /// "default", or the only one].
    #[arg(long, env = "CERTGATE_DEFAULT_PROFILE", value_name = "NAME")]
    pub default_profile: Option<String>,

    /// New orders one account may create: BURST/PERIOD, a bucket of BURST
    /// refilled evenly over PERIOD, or off [default: 300/3h].
    #[arg(
        long,
        env = "CERTGATE_RATE_LIMIT_ORDERS_PER_ACCOUNT",
        value_name = "BURST/PERIOD"
    )]
    pub rate_limit_orders_per_account: Option<String>,

    /// Certificates issued for names under one registered domain (or for
    /// one IP address), all accounts together: checked at newOrder, counted
    /// at finalize; BURST/PERIOD or off [default: 300/1h].
    #[arg(
        long,
        env = "CERTGATE_RATE_LIMIT_ORDERS_PER_DOMAIN",
        value_name = "BURST/PERIOD"
    )]
    pub rate_limit_orders_per_domain: Option<String>,

    /// New accounts from one client address (IPv4, or IPv6 /64):
    /// BURST/PERIOD or off [default: 100/3h].
    #[arg(
        long,
        env = "CERTGATE_RATE_LIMIT_NEW_ACCOUNTS_PER_IP",
        value_name = "BURST/PERIOD"
    )]
    pub rate_limit_new_accounts_per_ip: Option<String>,

    /// Most pending authorizations one account may hold; newOrder beyond it
    /// is refused [default: 300].
    #[arg(
        long,
        env = "CERTGATE_PENDING_AUTHORIZATIONS_PER_ACCOUNT",
        value_name = "N"
    )]
    pub pending_authorizations_per_account: Option<u32>,

    /// Validations running at once, all accounts together; more wait their
    /// turn [default: 32].
    #[arg(long, env = "CERTGATE_VALIDATION_CONCURRENCY", value_name = "N")]
    pub validation_concurrency: Option<usize>,

    /// Validations of one account running at once [default: 4].
    #[arg(
        long,
        env = "CERTGATE_VALIDATION_CONCURRENCY_PER_ACCOUNT",
        value_name = "N"
    )]
    pub validation_concurrency_per_account: Option<usize>,

    /// How long a validation or issuance stays with the process running it
    /// without renewal: with replicas, the longest the work of one that
    /// died waits before another takes it over; 3s to 1h [default: 30s].
    #[arg(long, env = "CERTGATE_WORK_LEASE", value_name = "DURATION")]
    #[arg(allow_hyphen_values = true)]
    pub work_lease: Option<String>,

    /// Also serve /metrics (OpenMetrics text for Prometheus, plain HTTP) on
    /// this address; /metrics is always on the main HTTPS listener too.
    #[arg(long, env = "CERTGATE_METRICS_LISTEN", value_name = "ADDR:PORT")]
    pub metrics_listen: Option<SocketAddr>,

    /// Serve the admin API (/admin/v1/...) over HTTPS on this address
    /// [default: off]. Needs --admin-token-file.
    #[arg(long, env = "CERTGATE_ADMIN_LISTEN", value_name = "ADDR:PORT")]
    pub admin_listen: Option<SocketAddr>,

    /// File holding the bearer token the admin API requires.
    #[arg(long, env = "CERTGATE_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Where audit events go as JSON lines besides the database: a file,
    /// `-` for stdout, or `off` [default: <data-dir>/audit.log].
    #[arg(long, env = "CERTGATE_AUDIT_LOG", value_name = "FILE|-|off")]
    pub audit_log: Option<String>,

    /// How long expired and invalid orders, with the authorizations and
    /// challenges only they use, are kept before they are deleted, or off.
    /// Certificates and the audit log are always kept [default: 30d].
    #[arg(long, env = "CERTGATE_RETENTION", value_name = "DURATION|off")]
    #[arg(allow_hyphen_values = true)]
    pub retention: Option<String>,

    /// Connections each listener holds at once; more are closed as they are
    /// accepted [default: 1000].
    #[arg(long, env = "CERTGATE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Of those, connections one client address (IPv4, or an IPv6 /64) may
    /// hold at once [default: 256].
    #[arg(long, env = "CERTGATE_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,

    /// Time a client has to send a request head, after the TLS handshake or
    /// on a kept-alive connection [default: 10s].
    #[arg(long, env = "CERTGATE_HEADER_READ_TIMEOUT", value_name = "DURATION")]
    #[arg(allow_hyphen_values = true)]
    pub header_read_timeout: Option<String>,

    /// A connection with no request in flight is closed after this [default: 60s].
    #[arg(long, env = "CERTGATE_IDLE_TIMEOUT", value_name = "DURATION")]
    #[arg(allow_hyphen_values = true)]
    pub idle_timeout: Option<String>,

    /// Time a client has to finish the TLS handshake [default: 10s].
    #[arg(long, env = "CERTGATE_TLS_HANDSHAKE_TIMEOUT", value_name = "DURATION")]
    #[arg(allow_hyphen_values = true)]
    pub tls_handshake_timeout: Option<String>,

    /// Requests one HTTP/2 connection may have open at once [default: 100].
    #[arg(long, env = "CERTGATE_HTTP2_MAX_CONCURRENT_STREAMS", value_name = "N")]
    pub http2_max_concurrent_streams: Option<u32>,

    /// List certificates (names, serials) on the public /status page too;
    /// the admin API lists them either way [default: false].
    #[arg(long, env = "CERTGATE_STATUS_PAGE_CERTIFICATES", value_name = "BOOL")]
    pub status_page_certificates: Option<bool>,

    /// `[profiles.<name>]` tables (config file only).
    #[arg(skip)]
    pub profiles: BTreeMap<String, profiles::ProfileFile>,

    /// The `[vault]` table (config file only).
    #[arg(skip)]
    pub vault: Option<vault::VaultFile>,

    /// The `[inventory]` table (config file only).
    #[arg(skip)]
    pub inventory: Option<inventory::InventoryFile>,
}

fn read_file(path: &Path) -> Result<ServeFlags, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// The first non-empty list: flags (and env, which clap merged) before the file.
fn first_list(flags: Vec<String>, file: Vec<String>) -> Vec<String> {
    if flags.is_empty() {
        file
    } else {
        flags
    }
}

impl Config {
    /// Merges flags (clap has already applied the environment) over the
    /// config file over defaults, and validates the result.
    pub fn load(flags: ServeFlags) -> Result<Self, ConfigError> {
        Self::load_with_env(flags, &|name| std::env::var(name).ok())
    }

    /// [`Config::load`] with `VAULT_*` variables read through `env`.
    pub fn load_with_env(flags: ServeFlags, env: vault::EnvLookup) -> Result<Self, ConfigError> {
        let file = match &flags.config {
            Some(path) => read_file(path)?,
            None => ServeFlags::default(),
        };
        let rate_limits = limit_settings::rate_limits(&flags, &file)?;
        let validation_limits = limit_settings::validation_limits(&flags, &file)?;
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("certgate-data"));
        let database_url = flags
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("certgate.db").display()));
        let ca_dir = flags
            .ca_dir
            .or(file.ca_dir)
            .unwrap_or_else(|| data_dir.join("ca"));
        let eab_key_file = flags
            .eab_key_file
            .or(file.eab_key_file)
            .unwrap_or_else(|| data_dir.join("eab.key"));
        let resolvers = first_list(flags.resolvers, file.resolvers)
            .iter()
            .map(|r| parse_resolver(r))
            .collect::<Result<Vec<_>, _>>()?;
        let cert_lifetime = parse_duration(
            flags
                .cert_lifetime
                .or(file.cert_lifetime)
                .as_deref()
                .unwrap_or("90d"),
        )?;
        let tls_names = first_list(flags.tls_names, file.tls_names);
        let external_url = flags
            .external_url
            .or(file.external_url)
            .map(|u| u.trim_end_matches('/').to_owned());
        let (profiles, default_profile) = profiles::resolve(
            &file.profiles,
            flags
                .default_profile
                .as_deref()
                .or(file.default_profile.as_deref()),
            &served_names(external_url.as_deref(), &tls_names),
        )?;
        let inventory = file.inventory.unwrap_or_default().resolve(&profiles)?;
        let vault = match vault::what_uses_vault(&profiles, &inventory) {
            Some(user) => Some(file.vault.unwrap_or_default().resolve(env, &user)?),
            None => None,
        };
        let admin =
            match (
                flags.admin_listen.or(file.admin_listen),
                flags.admin_token_file.or(file.admin_token_file),
            ) {
                (Some(listen), Some(token_file)) => Some(AdminSettings { listen, token_file }),
                (None, None) => None,
                (Some(_), None) => return Err(ConfigError::Invalid(
                    "admin-listen needs admin-token-file: the admin API never runs without a token"
                        .into(),
                )),
                (None, Some(_)) => {
                    return Err(ConfigError::Invalid(
                        "admin-token-file is set but admin-listen is not".into(),
                    ))
                }
            };
        let audit_log = AuditLogTarget::parse(flags.audit_log.or(file.audit_log), &data_dir);
        let connections = ConnectionLimits::resolve(ConnectionSettings {
            max_connections: flags.max_connections.or(file.max_connections),
            max_connections_per_ip: flags.max_connections_per_ip.or(file.max_connections_per_ip),
            header_read_timeout: flags.header_read_timeout.or(file.header_read_timeout),
            idle_timeout: flags.idle_timeout.or(file.idle_timeout),
            tls_handshake_timeout: flags.tls_handshake_timeout.or(file.tls_handshake_timeout),
            http2_max_concurrent_streams: flags
                .http2_max_concurrent_streams
                .or(file.http2_max_concurrent_streams),
        })?;
        let config = Self {
            listen: flags
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443))),
            data_dir,
            database_url,
            ca_dir,
            eab_key_file,
            migrate: flags.migrate.or(file.migrate).unwrap_or(true),
            http01_port: flags.http01_port.or(file.http01_port).unwrap_or(80),
            tls_alpn01_port: flags
                .tls_alpn01_port
                .or(file.tls_alpn01_port)
                .unwrap_or(443),
            resolvers,
            cert_lifetime,
            authorization_reuse: parse_duration(
                flags
                    .authorization_reuse
                    .or(file.authorization_reuse)
                    .as_deref()
                    .unwrap_or("30d"),
            )?,
            tls_names,
            external_url,
            profiles,
            default_profile,
            vault,
            rate_limits,
            validation_limits,
            work_lease: parse_work_lease(flags.work_lease.or(file.work_lease))?,
            metrics_listen: flags.metrics_listen.or(file.metrics_listen),
            admin,
            audit_log,
            retention: parse_retention(flags.retention.or(file.retention))?,
            connections,
            status_page_certificates: flags
                .status_page_certificates
                .or(file.status_page_certificates)
                .unwrap_or(false),
            inventory,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.http01_port == 0 || self.tls_alpn01_port == 0 {
            return Err(ConfigError::Invalid(
                "http01-port and tls-alpn01-port must not be 0".into(),
            ));
        }
        if self.authorization_reuse < Duration::from_secs(60)
            || self.authorization_reuse > Duration::from_secs(397 * 86_400)
        {
            return Err(ConfigError::Invalid(
                "authorization-reuse must be between 1m and 397d".into(),
            ));
        }
        if self.cert_lifetime < Duration::from_secs(60) {
            return Err(ConfigError::Invalid(
                "cert-lifetime must be at least 1m".into(),
            ));
        }
        if self.cert_lifetime > Duration::from_secs(3 * 365 * 86_400) {
            return Err(ConfigError::Invalid(
                "cert-lifetime must be at most 3 years".into(),
            ));
        }
        if database::DatabaseKind::of_url(&self.database_url).is_none() {
            return Err(ConfigError::Invalid(format!(
                "database-url {:?}: only sqlite: and postgres:// URLs are supported",
                database::redacted(&self.database_url)
            )));
        }
        for name in &self.tls_names {
            if name.parse::<IpAddr>().is_err()
                && crate::protocol::identifiers::parse_dns(name).is_err()
            {
                return Err(ConfigError::Invalid(format!(
                    "tls-name {name:?} is not a host name or IP address"
                )));
            }
        }
        if let Some(url) = &self.external_url {
            let parsed = url::Url::parse(url)
                .map_err(|e| ConfigError::Invalid(format!("external-url {url:?}: {e}")))?;
            if parsed.scheme() != "https" || parsed.path() != "/" || parsed.query().is_some() {
                return Err(ConfigError::Invalid(format!(
                    "external-url {url:?} must be https://host[:port] with no path"
                )));
            }
        }
        Ok(())
    }
}

/// The DNS names certgate is reached under: its external URL's host, then
/// its TLS names (addresses left out), lower case and each once.
fn served_names(external_url: Option<&str>, tls_names: &[String]) -> Vec<String> {
    let host = external_url
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    let mut names: Vec<String> = Vec::new();
    for name in host.iter().chain(tls_names) {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let is_domain_name = name.parse::<IpAddr>().is_err()
            && !name.contains('*')
            && crate::protocol::identifiers::parse_dns(&name).is_ok();
        if is_domain_name && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests;
