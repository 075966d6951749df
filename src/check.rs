//! `certgate check-config`: everything `serve` would need from its
//! configuration, tried before it matters — Vault reachable, the login
//! accepted, each profile's role readable, each mount's CA chain present.

use std::sync::Arc;

use crate::config::{Config, ProfileIssuer};
use crate::vault::{Vault, VaultError};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Ok(String),
    Problem(String),
}

impl Finding {
    pub fn is_problem(&self) -> bool {
        matches!(self, Self::Problem(_))
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ok(line) => write!(f, "ok       {line}"),
            Self::Problem(line) => write!(f, "PROBLEM  {line}"),
        }
    }
}

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

/// Checks a loaded configuration; one finding per fact or problem.
pub async fn check(config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    let vault = match &config.vault {
        None => None,
        Some(settings) => match Vault::new(settings.clone()) {
            Err(e) => {
                findings.push(Finding::Problem(e.to_string()));
                None
            }
            Ok(vault) => {
                let vault = Arc::new(vault);
                let addresses: Vec<String> =
                    settings.addresses.iter().map(|a| a.to_string()).collect();
                match vault.connect().await {
                    Ok(token) => {
                        findings.push(Finding::Ok(format!(
                            "Vault at {}: logged in with {} (policies {}; {})",
                            addresses.join(", "),
                            settings.auth.method(),
                            token.policies.join(", "),
                            if token.ttl.is_zero() {
                                "token never expires".to_owned()
                            } else {
                                format!("token valid for {}s", token.ttl.as_secs())
                            }
                        )));
                        Some(vault)
                    }
                    Err(e) => {
                        findings.push(Finding::Problem(format!(
                            "Vault at {}: cannot log in with {}: {e}",
                            addresses.join(", "),
                            settings.auth.method()
                        )));
                        None
                    }
                }
            }
        },
    };
    for profile in &config.profiles {
        let default = if profile.name == config.default_profile {
            " (default, /acme/directory)"
        } else {
            ""
        };
        match (&profile.issuer, &vault) {
            (ProfileIssuer::Local, _) => findings.push(Finding::Ok(format!(
                "profile {}{default}: signs with the embedded CA",
                profile.name
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
