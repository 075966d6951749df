//! Vault paths certgate calls that vaultrs does not cover the way it needs.

use rustify_derive::Endpoint;
use serde::Deserialize;

use crate::vault::role_rules::RoleRules;

/// `GET <mount>/roles/<role>`, keeping only the name rules. vaultrs has a
/// read of its own, but it demands every field of the newest Vault and so
/// fails on older servers; this one lets missing fields take their defaults.
#[derive(Debug, Endpoint)]
#[endpoint(path = "{self.mount}/roles/{self.role}", response = "RoleRules")]
pub struct ReadRoleRules {
    #[endpoint(skip)]
    pub mount: String,
    #[endpoint(skip)]
    pub role: String,
}

/// `GET <mount>/cert/ca_chain`: the mount's issuing CA and its parents.
#[derive(Debug, Endpoint)]
#[endpoint(path = "{self.mount}/cert/ca_chain", response = "CaChain")]
pub struct ReadCaChain {
    #[endpoint(skip)]
    pub mount: String,
}

#[derive(Debug, Deserialize)]
pub struct CaChain {
    /// The chain as one PEM string (issuer first).
    pub certificate: String,
}

/// `POST <mount>/revoke` by `serial_number` or by `certificate` (PEM), never
/// both. vaultrs has the serial form only, and it demands a `data` block,
/// which Vault leaves out when the certificate had already expired.
#[derive(Debug, Endpoint)]
#[endpoint(path = "{self.mount}/revoke", method = "POST", response = "Revoked")]
pub struct RevokeCertificate {
    #[endpoint(skip)]
    pub mount: String,
    pub serial_number: Option<String>,
    pub certificate: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Revoked {
    /// Unix seconds; the first revocation's time when revoked before.
    #[serde(default)]
    pub revocation_time: Option<i64>,
}
