//! `run --vault`: the loads again, with certgate signing at Vault. Vault is
//! the Vault-compatible PKI server certgate's tests use, started in this
//! process and answering at once, so the server's CPU per issuance is
//! certgate's own: the figure to set beside the embedded CA's.

use std::path::{Path, PathBuf};

use certgate_testkit::vault::{Role, StandinConfig, VaultStandin, SECRET_ID};

/// The mount and role certgate signs at: `pki_int/sign/bench`.
const ROLE: &str = "bench";

/// The stand-in, and the certgate config that signs with it.
pub struct Vault {
    pub standin: VaultStandin,
    /// `--config` for certgate: `[vault]` with an AppRole login, and a
    /// default profile signing at `pki_int/sign/bench`.
    pub config: PathBuf,
}

impl Vault {
    /// Starts the stand-in and writes the config into `dir`.
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        // The bench's names are subdomains of bench.test; clients send P-256 keys.
        let role = Role::new(ROLE)
            .allowed_domains(["bench.test"])
            .allow_subdomains(true)
            .key_type("any");
        let standin =
            VaultStandin::start(StandinConfig::pki_int([role]).certgate_approle(SECRET_ID)).await;
        let secrets = dir.join("vault-secrets");
        std::fs::create_dir_all(&secrets)?;
        let config = dir.join("certgate-vault.toml");
        std::fs::write(
            &config,
            format!(
                "default_profile = \"bench\"\n{}[profiles.bench]\nissuer = \"vault\"\n\
                 mount = \"pki_int\"\nrole = \"{ROLE}\"\n",
                standin.approle_config(&secrets, SECRET_ID)
            ),
        )?;
        Ok(Self { standin, config })
    }
}
