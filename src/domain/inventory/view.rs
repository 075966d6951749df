//! Certificates and accounts as operators see them. `certs list --json`,
//! `accounts list --json` and the admin API serialize these same objects,
//! so a script written against one works against the other.

use serde::Serialize;

use crate::protocol::status::AccountStatus;
use crate::store::inventory::{normalize_serial, CertificateState};
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
