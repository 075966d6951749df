//! Certificates and accounts as operators see them. `certs list --json`,
//! `accounts list --json` and the admin API serialize these same objects,
//! so a script written against one works against the other.

use serde::Serialize;

use crate::protocol::status::AccountStatus;
use crate::store::inventory::{normalize_serial, CertificateState};
use crate::store::vault_certificates::VaultCertificate;
use crate::store::{Account, Certificate};
use crate::util::clock::rfc3339;

/// One issued certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateView {
    /// Hex as `openssl x509 -serial` prints it (without DER's leading zero
    /// byte), in lower case.
    pub serial: String,
    pub names: Vec<String>,
    pub profile: String,
    /// The id of the ACME account that ordered it.
    pub account: String,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    pub status: CertificateState,
    /// RFC 3339; only for a revoked certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// `acme` for what certgate issued to an ACME client, `vault` for what
    /// the inventory sync found at a Vault mount.
    pub source: &'static str,
    /// The Vault mount a `vault` certificate was found at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    /// The Vault role that signed it, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The ACME order a `vault` certificate was linked to (its answer from
    /// Vault had been lost).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Whether a newer certificate for the same names supersedes it.
    pub superseded: bool,
}

impl CertificateView {
    /// `certificate` as it stands at `now` (unix seconds).
    pub fn new(certificate: &Certificate, now: i64) -> Self {
        Self {
            serial: normalize_serial(&certificate.serial),
            names: certificate.names.clone(),
            profile: certificate.profile.clone(),
            account: certificate.account_id.clone(),
            not_before: rfc3339(certificate.not_before),
            not_after: rfc3339(certificate.not_after),
            status: CertificateState::of(certificate, now),
            revoked_at: certificate.revoked_at.map(rfc3339),
            source: "acme",
            mount: None,
            role: None,
            order: None,
            superseded: certificate.superseded_by.is_some(),
        }
    }

    /// A certificate the inventory sync found at Vault, as it stands at `now`.
    pub fn from_vault(certificate: &VaultCertificate, now: i64) -> Self {
        let status = if certificate.revoked_at.is_some() {
            CertificateState::Revoked
        } else if certificate.not_after <= now {
            CertificateState::Expired
        } else {
            CertificateState::Valid
        };
        Self {
            serial: certificate.serial.clone(),
            names: certificate.names.clone(),
            profile: certificate.profile.clone().unwrap_or_default(),
            account: certificate.account_id.clone().unwrap_or_default(),
            not_before: rfc3339(certificate.not_before),
            not_after: rfc3339(certificate.not_after),
            status,
            revoked_at: certificate.revoked_at.map(rfc3339),
            source: "vault",
            mount: Some(certificate.mount.clone()),
            role: certificate.role.clone(),
            order: certificate.order_id.clone(),
            superseded: certificate.superseded_by.is_some(),
        }
    }
}

/// One ACME account.
#[derive(Debug, Clone, Serialize)]
pub struct AccountListing {
    pub id: String,
    pub status: AccountStatus,
    /// `mailto:` URLs as the client gave them.
    pub contact: Vec<String>,
    /// RFC 3339.
    pub created: String,
    /// How many certificates the account was issued, revoked and expired ones included.
    pub certificates: i64,
}

impl AccountListing {
    pub fn new(account: &Account, certificates: i64) -> Self {
        Self {
            id: account.id.clone(),
            status: account.status,
            contact: account.contact.clone(),
            created: rfc3339(account.created_at),
            certificates,
        }
    }
}
