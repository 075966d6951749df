//! The `[vault]` section of the config file: where Vault is, how certgate
//! trusts its TLS certificate, and how it logs in.
//!
//! Vault's usual environment variables fill in what the file leaves out and,
//! like every `CERTGATE_*` variable, win over it: `VAULT_ADDR`,
//! `VAULT_NAMESPACE`, `VAULT_CACERT`, `VAULT_TOKEN`. AppRole credentials may
//! come from `CERTGATE_VAULT_ROLE_ID` and `CERTGATE_VAULT_SECRET_ID`. No
//! credential is ever taken from the command line, where `ps` would show it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::inventory::InventorySettings;
use super::profiles::ProfileSettings;
use super::{parse_duration, ConfigError};
use crate::util::secret::{Secret, SecretSource};

/// Default path of a Kubernetes pod's service-account token.
pub const KUBERNETES_JWT_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// One address, or several for an HA cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Addresses {
    One(String),
    Many(Vec<String>),
}

/// `[vault]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultFile {
    pub address: Option<Addresses>,
    pub namespace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// Limit for a whole request [default: 30s].
    pub timeout: Option<String>,
    /// Limit for opening a connection, after which the next address is tried [default: 5s].
    pub connect_timeout: Option<String>,
    pub auth: AuthFile,
}

/// `[vault.auth]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthFile {
    /// `token` (default), `approle`, `kubernetes` or `jwt`.
    pub method: Option<String>,
    /// Where the auth method is mounted [default: the method's name].
    pub mount: Option<String>,
    pub token_file: Option<PathBuf>,
    pub role_id: Option<String>,
    pub role_id_file: Option<PathBuf>,
    pub secret_id_file: Option<PathBuf>,
    pub role: Option<String>,
    pub jwt_file: Option<PathBuf>,
}

/// How certgate logs in to Vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultAuth {
    /// A token given to certgate; the file (if any) is read again before
    /// every re-login, so a Vault Agent sink can keep it fresh.
    Token { token: SecretSource },
    AppRole {
        mount: String,
        role_id: SecretSource,
        secret_id: SecretSource,
    },
    Kubernetes {
        mount: String,
        role: String,
        jwt: SecretSource,
    },
    /// JWT/OIDC auth, e.g. a Nomad workload identity.
    Jwt {
        mount: String,
        role: Option<String>,
        jwt: SecretSource,
    },
}

impl VaultAuth {
    /// The method's name, as written in the config file.
    pub fn method(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::AppRole { .. } => "approle",
            Self::Kubernetes { .. } => "kubernetes",
            Self::Jwt { .. } => "jwt",
        }
    }
}

/// The validated `[vault]` settings.
#[derive(Debug, Clone)]
pub struct VaultSettings {
    /// Tried in order; the first that accepts a connection is used.
    pub addresses: Vec<url::Url>,
    pub namespace: Option<String>,
    /// PEM file with the CA certificate(s) that Vault's TLS certificate chains to.
    pub ca_cert: Option<PathBuf>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub auth: VaultAuth,
}

/// Reads an environment variable; injected so tests need not touch the process environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

fn missing(what: &str) -> ConfigError {
    ConfigError::Invalid(format!("[vault.auth] {what}"))
}

fn parse_address(text: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(text.trim())
        .map_err(|e| ConfigError::Invalid(format!("vault address {text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::Invalid(format!(
            "vault address {text:?} must be http(s)://host[:port]"
        )));
    }
    Ok(url)
}

/// The first source that is set: the environment variable, then the value
/// written in the file, then a file named in the file.
fn credential(
    env: EnvLookup,
    variable: &str,
    inline: Option<&String>,
    file: Option<&PathBuf>,
) -> Option<SecretSource> {
    env(variable)
        .filter(|v| !v.is_empty())
        .map(|v| SecretSource::Value(Secret::new(v)))
        .or_else(|| inline.map(|v| SecretSource::Value(Secret::new(v.clone()))))
        .or_else(|| file.map(|p| SecretSource::file(p)))
}

impl AuthFile {
    fn resolve(&self, env: EnvLookup) -> Result<VaultAuth, ConfigError> {
        let method = self.method.as_deref().unwrap_or("token");
        let mount = self
            .mount
            .clone()
            .unwrap_or_else(|| method.to_owned())
            .trim_matches('/')
            .to_owned();
        let jwt_file = |default: Option<&str>| {
            self.jwt_file
                .clone()
                .or_else(|| default.map(PathBuf::from))
                .map(SecretSource::File)
                .ok_or_else(|| missing(&format!("method {method:?} needs jwt_file")))
        };
        let auth = match method {
            "token" => VaultAuth::Token {
                token: credential(env, "VAULT_TOKEN", None, self.token_file.as_ref())
                    .ok_or_else(|| missing("method \"token\" needs VAULT_TOKEN or token_file"))?,
            },
            "approle" => VaultAuth::AppRole {
                mount,
                role_id: credential(
                    env,
                    "CERTGATE_VAULT_ROLE_ID",
                    self.role_id.as_ref(),
                    self.role_id_file.as_ref(),
                )
                .ok_or_else(|| {
                    missing(
                        "method \"approle\" needs role_id, role_id_file or CERTGATE_VAULT_ROLE_ID",
                    )
                })?,
                secret_id: credential(
                    env,
                    "CERTGATE_VAULT_SECRET_ID",
                    None,
                    self.secret_id_file.as_ref(),
                )
                .ok_or_else(|| {
                    missing("method \"approle\" needs secret_id_file or CERTGATE_VAULT_SECRET_ID")
                })?,
            },
            "kubernetes" => VaultAuth::Kubernetes {
                mount,
                role: self
                    .role
                    .clone()
                    .ok_or_else(|| missing("method \"kubernetes\" needs role"))?,
                jwt: jwt_file(Some(KUBERNETES_JWT_FILE))?,
            },
            "jwt" => VaultAuth::Jwt {
                mount,
                role: self.role.clone(),
                jwt: jwt_file(None)?,
            },
            other => {
                return Err(missing(&format!(
                    "method {other:?} is not one of token, approle, kubernetes, jwt"
                )))
            }
        };
        Ok(auth)
    }
}

/// What needs Vault, if anything: the first vault profile, or else the
/// first mount `[inventory] vault_mounts` adds. Named in the error when
/// `[vault]` does not say where Vault is.
pub(super) fn what_uses_vault(
    profiles: &[ProfileSettings],
    inventory: &InventorySettings,
) -> Option<String> {
    profiles
        .iter()
        .find(|p| p.uses_vault())
        .map(|p| format!("profile {:?}", p.name))
        .or_else(|| {
            inventory
                .extra_mounts
                .first()
                .map(|mount| format!("[inventory] vault_mounts ({mount:?})"))
        })
}

impl VaultFile {
    /// Validates the section, with Vault's environment variables over it.
    /// `used_by` names what needs Vault (a profile, the inventory), for the
    /// error when the section does not say where Vault is.
    pub fn resolve(&self, env: EnvLookup, used_by: &str) -> Result<VaultSettings, ConfigError> {
        let addresses: Vec<String> = match (env("VAULT_ADDR"), &self.address) {
            (Some(addr), _) if !addr.is_empty() => vec![addr],
            (_, Some(Addresses::One(addr))) => vec![addr.clone()],
            (_, Some(Addresses::Many(list))) => list.clone(),
            _ => Vec::new(),
        };
        if addresses.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{used_by} uses Vault: set [vault] address or VAULT_ADDR"
            )));
        }
        let duration = |value: &Option<String>, default: u64| {
            value
                .as_deref()
                .map(parse_duration)
                .unwrap_or(Ok(Duration::from_secs(default)))
        };
        Ok(VaultSettings {
            addresses: addresses
                .iter()
                .map(|a| parse_address(a))
                .collect::<Result<_, _>>()?,
            namespace: env("VAULT_NAMESPACE")
                .filter(|n| !n.is_empty())
                .or_else(|| self.namespace.clone()),
            ca_cert: env("VAULT_CACERT")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .or_else(|| self.ca_cert.clone()),
            timeout: duration(&self.timeout, 30)?,
            connect_timeout: duration(&self.connect_timeout, 5)?,
            auth: self.auth.resolve(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> VaultFile {
        toml::from_str(text).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    const USED_BY: &str = "profile \"lab\"";

    #[test]
    fn one_address_or_several() {
        let one = parse("address = \"https://vault.lab:8200\"\n[auth]\ntoken_file = \"/t\"\n");
        let settings = one.resolve(&no_env, USED_BY).unwrap();
        assert_eq!(settings.addresses.len(), 1);
        assert_eq!(settings.timeout, Duration::from_secs(30));
        let many = parse(
            "address = [\"https://v1:8200\", \"https://v2:8200\"]\n[auth]\ntoken_file = \"/t\"\n",
        );
        assert_eq!(many.resolve(&no_env, USED_BY).unwrap().addresses.len(), 2);
    }

    #[test]
    fn vault_environment_variables_win_over_the_file() {
        let file = parse("address = \"https://file:8200\"\nnamespace = \"file\"\n");
        let env = |name: &str| match name {
            "VAULT_ADDR" => Some("https://env:8200".to_owned()),
            "VAULT_NAMESPACE" => Some("env-ns".to_owned()),
            "VAULT_TOKEN" => Some("hvs.env".to_owned()),
            _ => None,
        };
        let settings = file.resolve(&env, USED_BY).unwrap();
        assert_eq!(settings.addresses[0].as_str(), "https://env:8200/");
        assert_eq!(settings.namespace.as_deref(), Some("env-ns"));
        assert_eq!(
            settings.auth,
            VaultAuth::Token {
                token: SecretSource::Value(Secret::new("hvs.env"))
            }
        );
    }

    #[test]
    fn each_method_says_what_it_is_missing() {
        for (text, needle) in [
            ("[auth]\nmethod = \"token\"\n", "VAULT_TOKEN"),
            ("[auth]\nmethod = \"approle\"\n", "role_id"),
            (
                "[auth]\nmethod = \"approle\"\nrole_id = \"r\"\n",
                "secret_id_file",
            ),
            ("[auth]\nmethod = \"kubernetes\"\n", "role"),
            ("[auth]\nmethod = \"jwt\"\nrole = \"nomad\"\n", "jwt_file"),
            ("[auth]\nmethod = \"ldap\"\n", "ldap"),
        ] {
            let file = parse(&format!("address = \"http://v:8200\"\n{text}"));
            let err = file.resolve(&no_env, USED_BY).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn kubernetes_defaults_to_the_pod_token_and_its_own_mount() {
        let file = parse(
            "address = \"http://v:8200\"\n[auth]\nmethod = \"kubernetes\"\nrole = \"certgate\"\n",
        );
        assert_eq!(
            file.resolve(&no_env, USED_BY).unwrap().auth,
            VaultAuth::Kubernetes {
                mount: "kubernetes".into(),
                role: "certgate".into(),
                jwt: SecretSource::File(KUBERNETES_JWT_FILE.into()),
            }
        );
    }

    #[test]
    fn a_secret_id_cannot_be_written_into_the_file() {
        let err = toml::from_str::<VaultFile>("[auth]\nsecret_id = \"s\"\n").unwrap_err();
        assert!(err.to_string().contains("secret_id"), "{err}");
    }
}
