//! `certgate check-config`: everything `serve` would need from its
//! configuration, tried before it matters — Vault reachable, the login
//! accepted, each profile's role readable, each mount's CA chain present.
//!
//! `check-config --offline` ([`offline`]) needs no network: it is for a
//! config file written on one machine and deployed on another (a CI job, a
//! Nomad template, a Kubernetes ConfigMap). It reports the values the file
//! resolved to and checks the files it names where they exist; a file that
//! is not on this machine is listed as skipped, not as a problem, because
//! it may be one the platform provides only where certgate runs (a
//! workload identity, a service-account token, a mounted secret).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, ProfileIssuer, ProfileSettings, VaultAuth, VaultSettings};
use crate::domain::eab::Keyring;
use crate::issuer::local::EmbeddedCa;
use crate::util::secret::SecretSource;
use crate::vault::{Vault, VaultError};

pub use super::check_host::Finding;

/// Vault's error in the words an operator acts on.
fn explain(error: &VaultError, path: &str) -> String {
    match error {
        VaultError::Api { status: 404, .. } => format!("{path} does not exist"),
        e if e.is_permission_denied() => {
            format!("the token's policies do not allow reading {path} ({e})")
        }
        e => format!("{path}: {e}"),
    }
}

async fn check_vault_profile(vault: &Vault, name: &str, mount: &str, role: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    let role_path = format!("{mount}/roles/{role}");
    match vault.read_role(mount, role).await {
        Ok(rules) => {
            let domains = if rules.allow_any_name {
                "any name".to_owned()
            } else if rules.allowed_domains.is_empty() {
                "no domains (only localhost if allowed)".to_owned()
            } else {
                rules.allowed_domains.join(", ")
            };
            findings.push(Finding::Ok(format!(
                "profile {name}: role {role_path} allows {domains}{}",
                if rules.no_store {
                    " (no_store: certgate keeps the only copy)"
                } else {
                    ""
                }
            )));
        }
        Err(e) => findings.push(Finding::Problem(format!(
            "profile {name}: {}",
            explain(&e, &role_path)
        ))),
    }
    let chain_path = format!("{mount}/cert/ca_chain");
    match vault.read_ca_chain(mount).await {
        Ok(chain) if chain.contains("BEGIN CERTIFICATE") => findings.push(Finding::Ok(format!(
            "profile {name}: mount {mount} has a CA chain of {} certificate(s)",
            chain.matches("BEGIN CERTIFICATE").count()
        ))),
        Ok(_) => findings.push(Finding::Problem(format!(
            "profile {name}: mount {mount} has no CA certificate configured"
        ))),
        Err(e) => findings.push(Finding::Problem(format!(
            "profile {name}: {}",
            explain(&e, &chain_path)
        ))),
    }
    findings
}

/// "profile lab", marked when it is the one at `/acme/directory`.
fn profile_label(config: &Config, profile: &ProfileSettings) -> String {
    if profile.name == config.default_profile {
        format!("profile {} (default, /acme/directory)", profile.name)
    } else {
        format!("profile {}", profile.name)
    }
}

/// What a file named by the configuration must hold.
#[derive(Debug, Clone, Copy)]
enum FileKind {
    /// A credential or token: anything but empty. Its content is never shown.
    Secret,
    /// PEM certificates, e.g. the CA that signed Vault's TLS certificate.
    Certificates,
}

/// Checks one file named by setting `setting`, if it is on this machine.
fn check_file(setting: &str, path: &Path, kind: FileKind) -> Finding {
    let shown = path.display();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Finding::Skipped(format!(
                "{setting} {shown}: not on this machine; it must exist where certgate runs"
            ))
        }
        Err(e) => return Finding::Problem(format!("{setting} {shown}: cannot be read: {e}")),
    };
    match kind {
        FileKind::Secret if String::from_utf8_lossy(&bytes).trim().is_empty() => {
            Finding::Problem(format!("{setting} {shown} is empty"))
        }
        FileKind::Secret => Finding::Ok(format!("{setting} {shown}: readable, not empty")),
        FileKind::Certificates => {
            let certificates = pem::parse_many(&bytes)
                .map(|blocks| blocks.iter().filter(|b| b.tag() == "CERTIFICATE").count())
                .unwrap_or(0);
            if certificates == 0 {
                Finding::Problem(format!("{setting} {shown} holds no PEM certificate"))
            } else {
                Finding::Ok(format!(
                    "{setting} {shown}: {certificates} PEM certificate(s)"
                ))
            }
        }
    }
}

/// The files the Vault login reads, by the setting that names them.
fn auth_files(auth: &VaultAuth) -> Vec<(&'static str, &SecretSource)> {
    match auth {
        VaultAuth::Token { token } => vec![("[vault.auth] token_file", token)],
        VaultAuth::AppRole {
            role_id, secret_id, ..
        } => vec![
            ("[vault.auth] role_id_file", role_id),
            ("[vault.auth] secret_id_file", secret_id),
        ],
        VaultAuth::Kubernetes { jwt, .. } | VaultAuth::Jwt { jwt, .. } => {
            vec![("[vault.auth] jwt_file", jwt)]
        }
    }
}

/// The embedded CA's folder and the EAB key file, loaded as `serve` loads
/// them where they are on this machine: a folder or key mounted from a
/// secret is checked in the container that mounts it.
fn shared_keys(config: &Config) -> Vec<Finding> {
    let (dir, key) = (config.ca_dir.display(), config.eab_key_file.display());
    let ca = match EmbeddedCa::exists_in(&config.ca_dir) {
        Ok(false) => Finding::Skipped(format!(
            "ca_dir {dir}: no CA there on this machine; serve makes one at first start"
        )),
        Ok(true) => match EmbeddedCa::load(&config.ca_dir) {
            Ok(ca) => Finding::Ok(format!(
                "ca_dir {dir}: embedded CA, root SHA-256 {}",
                super::ca::fingerprint(&ca.root_sha256())
            )),
            Err(e) => Finding::Problem(format!("ca_dir {dir}: {e}")),
        },
        Err(e) => Finding::Problem(format!("ca_dir {dir}: {e}")),
    };
    let eab = if !config.eab_key_file.exists() {
        Finding::Skipped(format!(
            "eab_key_file {key}: not on this machine; the first `eab create` makes it"
        ))
    } else {
        match Keyring::at(&config.eab_key_file).check() {
            Ok(()) => Finding::Ok(format!("eab_key_file {key}: a key-encryption key, private")),
            Err(e) => Finding::Problem(format!("eab_key_file {key}: {e}")),
        }
    };
    vec![ca, eab]
}

/// Two listeners on one address: the second would fail to bind at start.
fn listener_clashes(config: &Config) -> Vec<Finding> {
    let listeners: Vec<(&str, SocketAddr)> = [("listen", Some(config.listen))]
        .into_iter()
        .chain([
            ("metrics_listen", config.metrics_listen),
            ("admin_listen", config.admin.as_ref().map(|a| a.listen)),
        ])
        .filter_map(|(name, addr)| addr.map(|a| (name, a)))
        .collect();
    let mut findings = Vec::new();
    for (i, (name, addr)) in listeners.iter().enumerate() {
        for (other, other_addr) in &listeners[i + 1..] {
            if addr == other_addr {
                findings.push(Finding::Problem(format!(
                    "{name} and {other} are both {addr}; each listener needs its own address"
                )));
            }
        }
    }
    findings
}

/// Checks a loaded configuration without the network: what it resolved
/// to, listeners that would clash, and the files it names that are on this
/// machine. `Config::load` has already refused bad syntax and values.
pub fn offline(config: &Config) -> Vec<Finding> {
    let mut findings = vec![Finding::Ok(format!(
        "listen {} (HTTPS); data in {}; database {}",
        config.listen,
        config.data_dir.display(),
        crate::config::database::redacted(&config.database_url)
    ))];
    if config.data_dir.exists() && !config.data_dir.is_dir() {
        findings.push(Finding::Problem(format!(
            "data_dir {} exists and is not a directory",
            config.data_dir.display()
        )));
    }
    if let Some(addr) = config.metrics_listen {
        findings.push(Finding::Ok(format!(
            "metrics_listen {addr}: /metrics over HTTP"
        )));
    }
    if let Some(admin) = &config.admin {
        findings.push(Finding::Ok(format!(
            "admin_listen {}: the admin API",
            admin.listen
        )));
        findings.push(check_file(
            "admin_token_file",
            &admin.token_file,
            FileKind::Secret,
        ));
        findings.extend(super::check_host::secret_mode(
            "admin_token_file",
            &admin.token_file,
        ));
    }
    findings.extend(listener_clashes(config));
    findings.extend(super::check_host::listeners(config));
    findings.push(super::check_host::data_dir_writable(&config.data_dir));
    findings.extend(shared_keys(config));
    for profile in &config.profiles {
        let signs = match &profile.issuer {
            ProfileIssuer::Local => "signs with the embedded CA".to_owned(),
            ProfileIssuer::Vault {
                mount,
                role,
                issuer_ref: None,
            } => format!("signs with Vault at {mount}/sign/{role}"),
            ProfileIssuer::Vault {
                mount,
                role,
                issuer_ref: Some(issuer),
            } => format!("signs with Vault at {mount}/issuer/{issuer}/sign/{role}"),
        };
        findings.push(Finding::Ok(format!(
            "{}: {signs}",
            profile_label(config, profile)
        )));
    }
    if let Some(vault) = &config.vault {
        findings.push(Finding::Ok(format!(
            "Vault at {}: logs in with {} (not tried offline)",
            vault_addresses(vault),
            vault.auth.method()
        )));
        if let Some(ca_cert) = &vault.ca_cert {
            findings.push(check_file(
                "[vault] ca_cert",
                ca_cert,
                FileKind::Certificates,
            ));
        }
        for (setting, source) in auth_files(&vault.auth) {
            if let SecretSource::File(path) = source {
                findings.push(check_file(setting, path, FileKind::Secret));
                findings.extend(super::check_host::secret_mode(setting, path));
            }
        }
    }
    findings
}

/// The configured Vault addresses, as the findings name them.
fn vault_addresses(settings: &VaultSettings) -> String {
    settings
        .addresses
        .iter()
        .map(|address| address.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a loaded configuration; one finding per fact or problem.
pub async fn check(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    let vault = match &config.vault {
        None => None,
        // check-config serves no /metrics, so the calls it counts go nowhere.
        Some(settings) => match Vault::new(settings.clone(), Arc::default()) {
            Err(e) => {
                findings.push(Finding::Problem(e.to_string()));
                None
            }
            Ok(vault) => {
                let vault = Arc::new(vault);
                let addresses = vault_addresses(settings);
                match vault.connect().await {
                    Ok(token) => {
                        findings.push(Finding::Ok(format!(
                            "Vault at {}: logged in with {} (policies {}; {})",
                            addresses,
                            settings.auth.method(),
                            token.policies.join(", "),
                            token.lifetime()
                        )));
                        Some(vault)
                    }
                    Err(e) => {
                        findings.push(Finding::Problem(format!(
                            "Vault at {}: cannot log in with {}: {e}",
                            addresses,
                            settings.auth.method()
                        )));
                        None
                    }
                }
            }
        },
    };
    for profile in &config.profiles {
        match (&profile.issuer, &vault) {
            (ProfileIssuer::Local, _) => findings.push(Finding::Ok(format!(
                "{}: signs with the embedded CA",
                profile_label(config, profile)
            ))),
            (ProfileIssuer::Vault { mount, role, .. }, Some(vault)) => {
                findings.extend(check_vault_profile(vault, &profile.name, mount, role).await)
            }
            (ProfileIssuer::Vault { .. }, None) => findings.push(Finding::Problem(format!(
                "profile {}: not checked, Vault is not usable",
                profile.name
            ))),
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServeFlags;

    #[test]
    fn a_named_file_is_checked_where_it_exists_and_skipped_where_it_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(matches!(
            check_file("jwt_file", &missing, FileKind::Secret),
            Finding::Skipped(line) if line.contains("not on this machine")
        ));
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        assert!(check_file("secret_id_file", &empty, FileKind::Secret).is_problem());
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s.very-secret\n").unwrap();
        let finding = check_file("secret_id_file", &secret, FileKind::Secret);
        assert!(!finding.is_problem(), "{finding}");
        assert!(!finding.to_string().contains("very-secret"), "{finding}");
        assert!(check_file("ca_cert", &secret, FileKind::Certificates).is_problem());
        let directory = dir.path();
        assert!(check_file("ca_cert", directory, FileKind::Certificates).is_problem());
    }

    #[test]
    fn listeners_on_one_address_are_a_problem() {
        let config = Config::load(ServeFlags {
            listen: Some("127.0.0.1:8443".parse().unwrap()),
            metrics_listen: Some("127.0.0.1:8443".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
        let problems: Vec<String> = offline(&config)
            .iter()
            .filter(|f| f.is_problem())
            .map(ToString::to_string)
            .collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("listen and metrics_listen"),
            "{problems:?}"
        );
    }
}
