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

/// The file of a SQLite database URL (`sqlite://path?…`, `sqlite:path`).
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl StoreFlags {
    fn serve_flags(&self) -> ServeFlags {
        ServeFlags {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            eab_key_file: self.eab_key_file.clone(),
            audit_log: self.audit_log.clone(),
            ..Default::default()
        }
    }

    /// The server's configuration as these flags and its file say, with
    /// its data directory created.
    pub fn load(self) -> anyhow::Result<Config> {
        let config = Config::load_with_env(self.serve_flags(), &env_without_vault_credentials)
            .context("configuration")?;
        crate::util::data_dir::create(&config.data_dir)
            .with_context(|| format!("data directory {}", config.data_dir.display()))?;
        Ok(config)
    }
}

impl OfflineContext {
    /// Refuses a SQLite database that is not there: a typo in `--data-dir`
    /// would otherwise create an empty one and report "nothing found".
    pub async fn open(flags: StoreFlags) -> anyhow::Result<Self> {
        Self::open_with(flags, false).await
    }

    /// [`OfflineContext::open`] that creates the database when it is not
    /// there, for a command that sets up ahead of the first start
    /// (`eab create`).
    pub async fn open_or_create(flags: StoreFlags) -> anyhow::Result<Self> {
        Self::open_with(flags, true).await
    }

    async fn open_with(flags: StoreFlags, create: bool) -> anyhow::Result<Self> {
        let given = match (&flags.config, &flags.data_dir) {
            (Some(config), _) => format!("--config {}", config.display()),
            (None, Some(dir)) => format!("--data-dir {}", dir.display()),
            (None, None) => "no --config or --data-dir: the default ./certgate-data".to_owned(),
        };
        let config = Config::load_with_env(flags.serve_flags(), &env_without_vault_credentials)
            .context("configuration")?;
        if let Some(path) = sqlite_file(&config.database_url) {
            if !create && !path.exists() {
                anyhow::bail!(
                    "there is no database at {} (from {given}); give the --data-dir or --config certgate serve runs with, or start serve once (or run certgate migrate) to create it",
                    path.display()
                );
            }
        }
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

    /// Run as root on a data directory of another user, the files this
    /// command may have made there (the EAB key, the database's files, the
    /// audit log) go to that user, as `serve` runs as it.
    pub fn hand_files_to_data_dir_owner(&self) -> anyhow::Result<()> {
        let config = &self.config;
        let mut files = vec![config.eab_key_file.clone()];
        if let Some(db) = sqlite_file(&config.database_url) {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = db.clone().into_os_string();
                name.push(suffix);
                files.push(name.into());
            }
        }
        if let crate::config::AuditLogTarget::File(path) = &config.audit_log {
            files.push(path.clone());
        }
        let files: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
        crate::util::owner::give_to_data_dir_owner(&config.data_dir, &files).with_context(|| {
            format!(
                "giving the files this command made to the owner of {}; run it as that user",
                config.data_dir.display()
            )
        })
    }
}
