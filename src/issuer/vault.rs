//! [`Issuer`] that signs through a Vault PKI role: `<mount>/sign/<role>`
//! (or `<mount>/issuer/<ref>/sign/<role>`), with the role's name rules
//! applied at newOrder.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{
    CaDocuments, IdentifierRefusal, IssueError, IssuedCertificate, Issuer, RevokeRequest,
    SignRequest, SignSlot,
};
use crate::protocol::csr::ip_from_bytes;
use crate::vault::role_rules::RoleRules;
use crate::vault::{RevokeBy, SignCall, Vault, VaultError};
use vaultrs::api::pki::responses::SignCertificateResponse;

/// How long a role's rules are trusted before they are read again.
const RULES_FRESH_FOR: Duration = Duration::from_secs(300);

/// Where one profile signs.
#[derive(Debug, Clone)]
pub struct VaultRole {
    pub mount: String,
    pub role: String,
    pub issuer_ref: Option<String>,
}

pub struct VaultIssuer {
    vault: Arc<Vault>,
    role: VaultRole,
    rules: RwLock<Option<(RoleRules, Instant)>>,
    /// Held across each read of the role, with when the last read ended and
    /// what it gave: callers that arrive during a read (a burst of
    /// newOrders, the CA check at start) wait for it and take its outcome
    /// rather than each asking Vault in turn.
    last_read: tokio::sync::Mutex<Option<(Instant, Result<RoleRules, IssueError>)>>,
}

/// The name in Vault's "common name X not allowed by this role" or
/// "subject alternate name X not allowed by this role".
fn refused_name(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("common name ")
        .or_else(|| message.strip_prefix("subject alternate name "))?;
    rest.strip_suffix(" not allowed by this role")
}

/// A 400 that no CSR could fix: the role is gone, or the profile's `ttl`
/// reaches past what the CA can sign.
fn is_setup_refusal(message: &str) -> bool {
    message.starts_with("unknown role")
        || message.contains("beyond the expiration of the CA certificate")
        || message.contains("could not fetch the CA")
}

/// Vault's form of a serial stored as plain hex: lower-case pairs joined by
/// `:`, without the leading zero byte DER adds to keep a serial positive
/// (Vault prints the number, not its encoding).
fn vault_serial(hex: &str) -> String {
    let hex = hex.to_ascii_lowercase();
    let mut pairs: Vec<&str> = (0..hex.len())
        .step_by(2)
        .map(|i| &hex[i..(i + 2).min(hex.len())])
        .collect();
    while pairs.len() > 1 && pairs[0] == "00" {
        pairs.remove(0);
    }
    pairs.join(":")
}

/// Vault's 400 for a serial it holds no certificate for: the role has
/// `no_store`, or had it when the certificate was signed.
fn is_unknown_serial(message: &str) -> bool {
    message.starts_with("certificate with serial") && message.contains("not found")
}

fn pem_to_der(pem_text: &str) -> Result<Vec<u8>, String> {
    pem::parse(pem_text)
        .map(|p| p.into_contents())
        .map_err(|e| e.to_string())
}

fn is_self_signed(pem_text: &str) -> bool {
    pem_to_der(pem_text)
        .ok()
        .and_then(|der| {
            X509Certificate::from_der(&der)
                .ok()
                .map(|(_, c)| c.subject().as_raw() == c.issuer().as_raw())
        })
        .unwrap_or(false)
}

/// The certificate Vault returned, read back: serial, validity, and a check
/// that it covers every name of the order (a role with `use_csr_sans=false`
/// would silently drop them).
pub fn issued_certificate(
    leaf_pem: &str,
    ca_chain: &[String],
    names: &[String],
) -> Result<IssuedCertificate, String> {
    let der = pem_to_der(leaf_pem)?;
    let (_, leaf) = X509Certificate::from_der(&der).map_err(|e| e.to_string())?;
    let mut covered = BTreeSet::new();
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => {
                    covered.insert(dns.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    covered.extend(ip_from_bytes(bytes).map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    let missing: Vec<&String> = names.iter().filter(|n| !covered.contains(*n)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "Vault signed a certificate without {missing:?}; does the role set use_csr_sans=false?"
        ));
    }
    let mut chain_pem = format!("{}\n", leaf_pem.trim());
    for ca in ca_chain.iter().filter(|ca| !is_self_signed(ca)) {
        chain_pem.push_str(ca.trim());
        chain_pem.push('\n');
    }
    Ok(IssuedCertificate {
        serial: leaf
            .raw_serial_as_string()
            .replace(':', "")
            .to_ascii_lowercase(),
        chain_pem,
        not_before: leaf.validity().not_before.timestamp(),
        not_after: leaf.validity().not_after.timestamp(),
    })
}

/// Vault's answer to `<mount>/sign/<role>` read back for an order of
/// `names`: its `ca_chain`, or `issuing_ca` when a Vault older than 1.11
/// sends no chain.
pub fn signed_certificate(
    signed: &SignCertificateResponse,
    names: &[String],
) -> Result<IssuedCertificate, String> {
    let fallback;
    let chain = match signed.ca_chain.as_deref() {
        Some(chain) if !chain.is_empty() => chain,
        _ => {
            fallback = [signed.issuing_ca.clone()];
            &fallback[..]
        }
    };
    issued_certificate(&signed.certificate, chain, names)
}

/// The documents of a mount's CA as Vault sends them: the PEM chain of
/// `cert/ca_chain` and the PEM CRL of `cert/crl`, if any.
pub fn ca_documents(
    mount: &str,
    chain_pem: &str,
    crl_pem: Option<&str>,
) -> Result<CaDocuments, String> {
    let chain_der = pem::parse_many(chain_pem)
        .map_err(|e| format!("{mount}/cert/ca_chain: {e}"))?
        .into_iter()
        .map(|pem| pem.into_contents())
        .collect();
    let crl_der = crl_pem
        .map(pem_to_der)
        .transpose()
        .map_err(|e| format!("{mount}/cert/crl: {e}"))?;
    Ok(CaDocuments { chain_der, crl_der })
}

impl VaultIssuer {
    pub fn new(vault: Arc<Vault>, role: VaultRole) -> Self {
        Self {
            vault,
            role,
            rules: RwLock::new(None),
            last_read: tokio::sync::Mutex::new(None),
        }
    }

    fn sign_call(&self, request: &SignRequest, csr_pem: String) -> SignCall {
        SignCall {
            mount: self.role.mount.clone(),
            role: self.role.role.clone(),
            issuer_ref: self.role.issuer_ref.clone(),
            csr_pem,
            // Vault checks a CN against the role's domain rules, so an
            // address never goes there; an order of addresses only needs a
            // role with require_cn=false.
            common_name: request
                .names
                .iter()
                .find(|n| n.parse::<IpAddr>().is_err())
                .cloned(),
            ttl: request.lifetime,
        }
    }

    /// `<mount>/roles/<role>`, for messages.
    fn role_path(&self) -> String {
        format!("{}/roles/{}", self.role.mount, self.role.role)
    }

    /// The role's rules: cached for [`RULES_FRESH_FOR`]; when Vault cannot be
    /// asked, the last rules read are used rather than refusing every order.
    /// Callers that arrive while the role is being read wait for that read.
    pub async fn rules(&self) -> Result<RoleRules, IssueError> {
        let asked_at = Instant::now();
        if let Some(rules) = self.fresh_rules() {
            return Ok(rules);
        }
        let mut last_read = self.last_read.lock().await;
        if let Some((ended_at, outcome)) = &*last_read {
            if *ended_at >= asked_at {
                return outcome.clone();
            }
        }
        let cached = self.rules.read().expect("rules lock").clone();
        let outcome = match self
            .vault
            .read_role(&self.role.mount, &self.role.role)
            .await
        {
            Ok(rules) => {
                *self.rules.write().expect("rules lock") = Some((rules.clone(), Instant::now()));
                Ok(rules)
            }
            Err(e) => match cached {
                Some((rules, _)) => {
                    tracing::warn!(error = %e, role = %self.role_path(), "reading the Vault role failed; using the rules read before");
                    Ok(rules)
                }
                None => Err(self.role_read_error(e)),
            },
        };
        *last_read = Some((Instant::now(), outcome.clone()));
        outcome
    }

    /// The cached rules, if read less than [`RULES_FRESH_FOR`] ago.
    fn fresh_rules(&self) -> Option<RoleRules> {
        match &*self.rules.read().expect("rules lock") {
            Some((rules, read_at)) if read_at.elapsed() < RULES_FRESH_FOR => Some(rules.clone()),
            _ => None,
        }
    }

    fn role_read_error(&self, error: VaultError) -> IssueError {
        let path = self.role_path();
        match &error {
            VaultError::Api { status: 404, .. } => {
                tracing::error!(role = %path, "Vault has no such role");
                IssueError::Internal(format!("Vault has no role {path}"))
            }
            e if e.is_permission_denied() => {
                tracing::error!(role = %path, "Vault denied reading the role: certgate's policy must allow read on {path}");
                IssueError::Internal(format!("Vault denied reading {path}"))
            }
            _ => IssueError::Unavailable(error.to_string()),
        }
    }

    /// Sorts a failed revocation. Asking Vault to revoke again is harmless
    /// (a second revocation answers with the first one's time), so a lost
    /// answer is only "try again later".
    fn revoke_error(&self, path: &str, error: VaultError) -> IssueError {
        match error {
            VaultError::Api {
                status: 400,
                message,
            } => IssueError::Rejected(message),
            e if e.is_permission_denied() => {
                tracing::error!(%path, "Vault denied revoking: certgate's policy must allow update on this path");
                IssueError::Internal(format!("Vault denied {path}: {e}"))
            }
            e if e.is_temporary() => IssueError::Unavailable(e.to_string()),
            e @ (VaultError::NoAnswer(_) | VaultError::Credentials(_)) => {
                IssueError::Unavailable(e.to_string())
            }
            e => {
                tracing::error!(%path, error = %e, "Vault refused the revocation");
                IssueError::Internal(e.to_string())
            }
        }
    }

    /// Sorts a failed sign by what the order should do next.
    fn sign_error(&self, call: &SignCall, error: VaultError) -> IssueError {
        match error {
            VaultError::Api {
                status: 400,
                message,
            } => {
                // The role may have changed since its rules were read.
                *self.rules.write().expect("rules lock") = None;
                if let Some(name) = refused_name(&message) {
                    return IssueError::RefusedIdentifier {
                        identifier: name.to_owned(),
                        reason: message.clone(),
                    };
                }
                if is_setup_refusal(&message) {
                    tracing::error!(path = %call.path(), %message, "Vault refused the profile's setup, not the CSR");
                    return IssueError::Internal(message);
                }
                IssueError::Rejected(message)
            }
            e if e.is_permission_denied() => {
                tracing::error!(
                    path = %call.path(),
                    "Vault denied signing even with a fresh token: certgate's policy must allow update on this path"
                );
                IssueError::Internal(format!("Vault denied {}: {e}", call.path()))
            }
            e if e.is_temporary() => IssueError::Unavailable(e.to_string()),
            e @ (VaultError::NoAnswer(_) | VaultError::BadAnswer(_)) => {
                IssueError::AnswerLost(e.to_string())
            }
            e @ VaultError::Credentials(_) => {
                tracing::error!(error = %e, "cannot log in to Vault");
                IssueError::Unavailable(e.to_string())
            }
            e => {
                tracing::error!(path = %call.path(), error = %e, "Vault refused the signing request");
                IssueError::Internal(e.to_string())
            }
        }
    }
}

#[async_trait]
impl Issuer for VaultIssuer {
    async fn sign(&self, request: &SignRequest) -> Result<IssuedCertificate, IssueError> {
        let csr_pem = pem::encode(&pem::Pem::new(
            "CERTIFICATE REQUEST",
            request.csr_der.clone(),
        ));
        let call = self.sign_call(request, csr_pem);
        let signed = self
            .vault
            .sign(&call)
            .await
            .map_err(|e| self.sign_error(&call, e))?;
        signed_certificate(&signed, &request.names).map_err(|e| {
            tracing::error!(path = %call.path(), serial = %signed.serial_number, error = %e, "Vault's certificate is not usable");
            IssueError::Internal(e)
        })
    }

    async fn ready_to_sign(&self) -> SignSlot {
        SignSlot::bounded(self.vault.until_available().await)
    }

    fn is_known_down(&self) -> bool {
        self.vault.availability().is_down()
    }

    /// Revokes by serial, as Vault keeps its certificates; by PEM when the
    /// role keeps none (`no_store`) or Vault does not know the serial.
    async fn revoke(&self, certificate: &RevokeRequest) -> Result<(), IssueError> {
        let path = format!("{}/revoke", self.role.mount);
        let no_store = match self.rules().await {
            Ok(rules) => rules.no_store,
            Err(e @ IssueError::Unavailable(_)) => return Err(e),
            // A role deleted or unreadable since: the PEM works either way.
            Err(e) => {
                tracing::warn!(error = %e, role = %self.role_path(), "revoking by PEM, as the role cannot be read");
                true
            }
        };
        if !no_store {
            let serial = vault_serial(&certificate.serial);
            match self
                .vault
                .revoke(&self.role.mount, &RevokeBy::Serial(serial.clone()))
                .await
            {
                Ok(_) => return Ok(()),
                Err(VaultError::Api {
                    status: 400,
                    message,
                }) if is_unknown_serial(&message) => {
                    tracing::info!(%path, %serial, "Vault keeps no certificate with this serial; revoking by PEM");
                }
                Err(e) => return Err(self.revoke_error(&path, e)),
            }
        }
        self.vault
            .revoke(
                &self.role.mount,
                &RevokeBy::Pem(certificate.leaf_pem.clone()),
            )
            .await
            .map(|_| ())
            .map_err(|e| self.revoke_error(&path, e))
    }

    async fn refused_identifiers(
        &self,
        identifiers: &[String],
    ) -> Result<Vec<IdentifierRefusal>, IssueError> {
        let rules = self.rules().await?;
        Ok(identifiers
            .iter()
            .filter_map(|identifier| {
                match identifier.parse::<IpAddr>() {
                    Ok(ip) => rules.check_ip(ip),
                    Err(_) => rules.check_dns(identifier),
                }
                .err()
            })
            .collect())
    }

    fn signs_remotely(&self) -> bool {
        true
    }

    fn ca_name(&self) -> Option<String> {
        Some(self.role.mount.clone())
    }

    /// The mount's CA chain (`cert/ca_chain`) and CRL (`cert/crl`). With
    /// an `issuer_ref` these are still the mount's default issuer's.
    async fn read_ca(&self, _now: i64) -> Result<CaDocuments, String> {
        let mount = &self.role.mount;
        let chain = self
            .vault
            .read_ca_chain(mount)
            .await
            .map_err(|e| format!("reading {mount}/cert/ca_chain: {}", e.plainly()))?;
        let crl = self
            .vault
            .read_crl(mount)
            .await
            .map_err(|e| format!("reading {mount}/cert/crl: {}", e.plainly()))?;
        ca_documents(mount, &chain, crl.as_deref())
    }

    /// What the profile asks for, or else the role's `ttl`, or else its
    /// `max_ttl`; `None` when the role leaves both to the mount.
    async fn longest_lifetime(&self, requested: Option<Duration>) -> Option<Duration> {
        if requested.is_some() {
            return requested;
        }
        let rules = self.rules().await.ok()?;
        [rules.ttl, rules.max_ttl]
            .into_iter()
            .find(|&seconds| seconds > 0)
            .map(Duration::from_secs)
    }

    fn vault_role(&self) -> Option<&VaultRole> {
        Some(&self.role)
    }

    fn describe(&self) -> String {
        match &self.role.issuer_ref {
            Some(issuer) => format!(
                "vault {}/{} (issuer {issuer})",
                self.role.mount, self.role.role
            ),
            None => format!("vault {}/{}", self.role.mount, self.role.role),
        }
    }

    /// Reads the role afresh (the cached rules would hide a role deleted
    /// since): signing needs it, and the answer also shows Vault unsealed
    /// and the token accepted.
    async fn readiness(&self) -> Result<(), String> {
        let path = self.role_path();
        match self
            .vault
            .read_role(&self.role.mount, &self.role.role)
            .await
        {
            Ok(_) => Ok(()),
            Err(VaultError::Api { status: 404, .. }) => Err(format!("Vault has no role {path}")),
            Err(e) if e.is_permission_denied() => Err(format!(
                "Vault denied reading {path}: certgate's policy must allow read on it"
            )),
            Err(e) => Err(e.plainly()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_refusals_name_the_identifier() {
        assert_eq!(
            refused_name("common name evil.test not allowed by this role"),
            Some("evil.test")
        );
        assert_eq!(
            refused_name("subject alternate name *.x.test not allowed by this role"),
            Some("*.x.test")
        );
        assert_eq!(refused_name("request signature invalid"), None);
    }

    #[test]
    fn serials_are_written_as_vault_prints_them() {
        assert_eq!(vault_serial("3A0F9C"), "3a:0f:9c");
        assert_eq!(vault_serial("00ff01"), "ff:01");
        assert_eq!(vault_serial("00"), "00");
        assert!(is_unknown_serial(
            "certificate with serial 3a:0f not found."
        ));
        assert!(!is_unknown_serial(
            "The serial number or certificate to revoke must be provided."
        ));
    }

    #[test]
    fn refusals_of_the_setup_are_not_blamed_on_the_csr() {
        assert!(is_setup_refusal("unknown role: lab"));
        assert!(is_setup_refusal(
            "cannot satisfy request, as TTL would result in notAfter of 2040 beyond the expiration of the CA certificate at 2030"
        ));
        assert!(!is_setup_refusal("role requires keys of type rsa"));
    }
}
