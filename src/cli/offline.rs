//! What the commands that work on certgate's data without serving share
//! (`eab`, `certs`, `accounts`): the settings that say where the data is,
//! and opening it beside a server that may be running (SQLite in WAL mode
//! lets both read and write).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::audit::AuditLog;
use crate::config::{Config, ServeFlags};
use crate::domain::eab::Keyring;
use crate::store::Store;

/// Where the data is: the same settings `certgate serve` reads.
#[derive(Debug, Clone, Args)]
pub struct StoreFlags {
    /// The server's TOML config file.
    #[arg(long, env = "CERTGATE_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The server's data directory [default: ./certgate-data].
    #[arg(long, env = "CERTGATE_DATA_DIR", value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The server's database URL [default: sqlite://<data-dir>/certgate.db].
    #[arg(long, env = "CERTGATE_DATABASE_URL", value_name = "URL", global = true)]
    pub database_url: Option<String>,
    /// The server's EAB key-encryption key [default: <data-dir>/eab.key].
    #[arg(
        long,
        env = "CERTGATE_EAB_KEY_FILE",
        value_name = "FILE",
        global = true
    )]
    pub eab_key_file: Option<PathBuf>,
    /// Where audit lines go [default: as the server: <data-dir>/audit.log].
    #[arg(
        long,
        env = "CERTGATE_AUDIT_LOG",
        value_name = "FILE|-|off",
        global = true
    )]
    pub audit_log: Option<String>,
}

/// The configuration, database, EAB keyring and audit log, opened.
pub struct OfflineContext {
    pub config: Config,
    pub store: Store,
    pub keyring: Keyring,
    pub audit: AuditLog,
}

/// Offline commands never talk to Vault: they read the configuration only
/// for the data directory, the database, the audit log and the profiles.
/// Vault settings the server takes from its own environment (`VAULT_ADDR`,
/// `VAULT_TOKEN`, AppRole ids) are therefore not needed; stand-ins keep
/// their absence from failing the load.
pub(super) fn env_without_vault_credentials(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| match name {
            "VAULT_ADDR" => Some("https://vault.invalid:8200".into()),
            "VAULT_TOKEN" | "CERTGATE_VAULT_ROLE_ID" | "CERTGATE_VAULT_SECRET_ID" => {
                Some("not-used-by-offline-commands".into())
            }
            _ => None,
        })
}

impl StoreFlags {
    /// The server's configuration as these flags and its file say, with
    /// its data directory created.
    pub fn load(self) -> anyhow::Result<Config> {
        let config = Config::load_with_env(
            ServeFlags {
                config: self.config,
                data_dir: self.data_dir,
                database_url: self.database_url,
                eab_key_file: self.eab_key_file,
                audit_log: self.audit_log,
                ..Default::default()
            },
            &env_without_vault_credentials,
        )
        .context("configuration")?;
        crate::util::data_dir::create(&config.data_dir)
            .with_context(|| format!("data directory {}", config.data_dir.display()))?;
        Ok(config)
    }
}

impl OfflineContext {
    pub async fn open(flags: StoreFlags) -> anyhow::Result<Self> {
        let config = flags.load()?;
        let store = Store::open(&config.database_url).await.with_context(|| {
            format!(
                "opening the database {}",
                crate::config::database::redacted(&config.database_url)
            )
        })?;
        let keyring = Keyring::at(&config.eab_key_file);
        let audit =
            AuditLog::open(&config.audit_log, store.clone()).context("opening the audit log")?;
        Ok(Self {
            config,
            store,
            keyring,
            audit,
        })
    }
}
