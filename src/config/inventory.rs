//! The `[inventory]` table: which Vault mounts certgate lists into its
//! inventory besides those its profiles sign with, how often, and the
//! folder `serve` keeps the current certificates in.
//!
//! ```toml
//! [inventory]
//! vault_mounts = ["pki_int", "pki_nomad"]
//! sync_interval = "10m"
//! sync_concurrency = 4
//! export_dir = "/srv/certs"
//! export_format = "pem"
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::profiles::{ProfileIssuer, ProfileSettings};
use super::values::parse_duration;
use super::ConfigError;

/// How often the Vault mounts are listed when the file says nothing.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(600);
/// Certificates read from Vault at once during a sync, when the file says nothing.
pub const DEFAULT_SYNC_CONCURRENCY: usize = 4;

/// `[inventory]` as written in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryFile {
    pub vault_mounts: Vec<String>,
    pub sync_interval: Option<String>,
    pub sync_concurrency: Option<usize>,
    pub export_dir: Option<PathBuf>,
    pub export_format: Option<String>,
}

/// The inventory settings, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct InventorySettings {
    /// Every Vault mount listed into the inventory: those the profiles sign
    /// with, then those `vault_mounts` adds, each once.
    pub vault_mounts: Vec<String>,
    /// Only the mounts the file names (which need `[vault]` even when no
    /// profile signs with Vault).
    pub extra_mounts: Vec<String>,
    pub sync_interval: Duration,
    /// Certificates read from Vault at once.
    pub sync_concurrency: usize,
    /// The folder `serve` keeps the current certificates in.
    pub export_dir: Option<PathBuf>,
    /// `true` for DER files, `false` for PEM (leaf and chain).
    pub export_der: bool,
}

impl Default for InventorySettings {
    fn default() -> Self {
        Self {
            vault_mounts: Vec::new(),
            extra_mounts: Vec::new(),
            sync_interval: DEFAULT_SYNC_INTERVAL,
            sync_concurrency: DEFAULT_SYNC_CONCURRENCY,
            export_dir: None,
            export_der: false,
        }
    }
}

impl InventoryFile {
    pub fn resolve(&self, profiles: &[ProfileSettings]) -> Result<InventorySettings, ConfigError> {
        let mut vault_mounts: Vec<String> = Vec::new();
        let mut extra_mounts: Vec<String> = Vec::new();
        let from_profiles = profiles.iter().filter_map(|p| match &p.issuer {
            ProfileIssuer::Vault { mount, .. } => Some(mount.clone()),
            ProfileIssuer::Local => None,
        });
        for mount in from_profiles {
            if !vault_mounts.contains(&mount) {
                vault_mounts.push(mount);
            }
        }
        for mount in &self.vault_mounts {
            let mount = mount.trim_matches('/').to_owned();
            if mount.is_empty() || mount.contains(char::is_whitespace) {
                return Err(ConfigError::Invalid(format!(
                    "inventory.vault_mounts: {mount:?} is not a mount path"
                )));
            }
            if !extra_mounts.contains(&mount) {
                extra_mounts.push(mount.clone());
            }
            if !vault_mounts.contains(&mount) {
                vault_mounts.push(mount);
            }
        }
        let sync_interval = match &self.sync_interval {
            Some(text) => parse_duration(text)?,
            None => DEFAULT_SYNC_INTERVAL,
        };
        if sync_interval < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "inventory.sync_interval must be at least 1s".into(),
            ));
        }
        let sync_concurrency = self.sync_concurrency.unwrap_or(DEFAULT_SYNC_CONCURRENCY);
        if !(1..=64).contains(&sync_concurrency) {
            return Err(ConfigError::Invalid(
                "inventory.sync_concurrency must be between 1 and 64".into(),
            ));
        }
        let export_der = match self.export_format.as_deref() {
            None | Some("pem") => false,
            Some("der") => true,
            Some(other) => {
                return Err(ConfigError::Invalid(format!(
                    "inventory.export_format {other:?}: use \"pem\" or \"der\""
                )))
            }
        };
        Ok(InventorySettings {
            vault_mounts,
            extra_mounts,
            sync_interval,
            sync_concurrency,
            export_dir: self.export_dir.clone(),
            export_der,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_come_from_the_profiles_then_the_table_each_once() {
        let file = InventoryFile {
            vault_mounts: vec!["pki_nomad".into(), "/pki_int/".into()],
            ..InventoryFile::default()
        };
        let profile = ProfileSettings {
            name: "lab".into(),
            issuer: ProfileIssuer::Vault {
                mount: "pki_int".into(),
                role: "r".into(),
                issuer_ref: None,
            },
            ttl: None,
            validation: Default::default(),
            description: String::new(),
            eab: Default::default(),
            renewal_window_start: 0.66,
        };
        let settings = file.resolve(&[profile]).unwrap();
        assert_eq!(settings.vault_mounts, ["pki_int", "pki_nomad"]);
        assert_eq!(settings.extra_mounts, ["pki_nomad", "pki_int"]);
        assert_eq!(settings.sync_interval, DEFAULT_SYNC_INTERVAL);
    }

    #[test]
    fn nonsense_is_refused() {
        let file = InventoryFile {
            sync_interval: Some("0s".into()),
            ..InventoryFile::default()
        };
        assert!(file.resolve(&[]).is_err());
        let file = InventoryFile {
            export_format: Some("p12".into()),
            ..InventoryFile::default()
        };
        assert!(file.resolve(&[]).is_err());
    }
}
