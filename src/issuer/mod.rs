//! Who signs certificates. Finalize hands an accepted CSR to an [`Issuer`];
//! the issuer knows X.509 and its CA, never ACME.

pub mod crl;
pub mod local;
pub mod vault;

use std::time::Duration;

use async_trait::async_trait;

/// What to sign: the CSR (already checked against the order) and the names it
/// was checked for.
#[derive(Debug, Clone)]
pub struct SignRequest {
    pub csr_der: Vec<u8>,
    /// DNS names, lower-case, as in the order.
    pub names: Vec<String>,
    /// The lifetime the profile asks for; `None` leaves it to the issuer.
    pub lifetime: Option<Duration>,
}

/// A signed certificate with the chain a client needs to use it.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// Lower-case hex, no separators.
    pub serial: String,
    /// Leaf first, then each issuer up to (not including) the root.
    pub chain_pem: String,
    pub not_before: i64,
    pub not_after: i64,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IssueError {
    /// The CA refused this request; asking again will not help (→ badCSR).
    #[error("the CA refused the request: {0}")]
    Rejected(String),
    /// The CA will not certify this identifier (→ rejectedIdentifier).
    #[error("the CA will not certify {identifier}: {reason}")]
    RefusedIdentifier { identifier: String, reason: String },
    /// The CA cannot sign right now and did not sign; the same request may
    /// succeed later.
    #[error("the CA is unavailable: {0}")]
    Unavailable(String),
    /// The request reached the CA but its answer was lost: a certificate may
    /// or may not exist. Asking again could sign a second one.
    #[error("the CA's answer was lost: {0}")]
    AnswerLost(String),
    /// Anything else: a bug or a broken CA configuration.
    #[error("issuing failed: {0}")]
    Internal(String),
}

/// What a signing attempt holds while its request is out, when the issuer
/// bounds how many may be out at once; dropping it frees the place.
#[derive(Debug, Default)]
pub struct SignSlot {
    /// Only held, never read: its drop frees the place.
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl SignSlot {
    /// A slot of an issuer that sets no bound.
    pub fn unbounded() -> Self {
        Self { _permit: None }
    }

    pub fn bounded(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        Self {
            _permit: Some(permit),
        }
    }
}

/// A certificate to revoke at the CA that signed it, as certgate stored it.
#[derive(Debug, Clone)]
pub struct RevokeRequest {
    /// Lower-case hex, no separators (as in [`IssuedCertificate`]).
    pub serial: String,
    /// The leaf alone, PEM.
    pub leaf_pem: String,
}

/// The revocation reasons (RFC 5280 §5.3.1) a subscriber may give in
/// revokeCert. The others are for CAs (cACompromise, aACompromise,
/// privilegeWithdrawn), are not reasons at all (certificateHold,
/// removeFromCRL), or do not exist (7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    Unspecified = 0,
    KeyCompromise = 1,
    AffiliationChanged = 3,
    Superseded = 4,
    CessationOfOperation = 5,
}

impl RevocationReason {
    pub const ALL: [Self; 5] = [
        Self::Unspecified,
        Self::KeyCompromise,
        Self::AffiliationChanged,
        Self::Superseded,
        Self::CessationOfOperation,
    ];

    /// The reason with this CRLReason code, if a subscriber may give it.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::KeyCompromise => "keyCompromise",
            Self::AffiliationChanged => "affiliationChanged",
            Self::Superseded => "superseded",
            Self::CessationOfOperation => "cessationOfOperation",
        }
    }
}

/// One identifier the issuer would refuse, and why.
pub use crate::vault::role_rules::IdentifierRefusal;

/// A CA's certificates and CRL, DER.
#[derive(Debug, Clone)]
pub struct CaDocuments {
    /// The issuing CA first, then each CA above it as far as the issuer
    /// knows the chain (the root included when it does).
    pub chain_der: Vec<Vec<u8>>,
    /// The CRL relying parties fetch, when the CA publishes one.
    pub crl_der: Option<Vec<u8>>,
}

#[async_trait]
pub trait Issuer: Send + Sync {
    async fn sign(&self, request: &SignRequest) -> Result<IssuedCertificate, IssueError>;

    /// Waits until a signing request may be sent and returns the slot to
    /// hold while it is out. A remote CA known to be down is not sent
    /// requests until its health check passes, and all waiting attempts
    /// are released together when it does. An in-process CA never waits.
    async fn ready_to_sign(&self) -> SignSlot {
        SignSlot::unbounded()
    }

    /// True while the CA is known to be down, so that an attempt that found
    /// it unavailable waits in [`ready_to_sign`](Self::ready_to_sign) for
    /// it to come back rather than on a backoff of its own.
    fn is_known_down(&self) -> bool {
        false
    }

    /// Revokes a certificate this issuer signed. Revoking one that is
    /// already revoked succeeds. `Unavailable` means nothing was revoked
    /// that the caller can rely on: it records nothing and the client may
    /// ask again.
    async fn revoke(&self, certificate: &RevokeRequest) -> Result<(), IssueError>;

    /// The identifiers (DNS names, `*.` wildcards, IP addresses) this issuer
    /// would refuse to certify, checked at newOrder so that a client hears
    /// `rejectedIdentifier` before it proves control of anything.
    async fn refused_identifiers(
        &self,
        _identifiers: &[String],
    ) -> Result<Vec<IdentifierRefusal>, IssueError> {
        Ok(Vec::new())
    }

    /// True when signing happens somewhere else (Vault), so that a signing
    /// attempt cut short by a crash may have produced a certificate there.
    /// An embedded CA signs in-process: an interrupted attempt left nothing.
    fn signs_remotely(&self) -> bool {
        false
    }

    /// The embedded CA behind this issuer, when it is one: it publishes a
    /// CRL of its own (see [`crl`]). Vault publishes its CRLs itself.
    fn embedded_ca(&self) -> Option<&local::EmbeddedCa> {
        None
    }

    /// The Vault mount and role this issuer signs at, when it signs through
    /// Vault: the audit log names them with each certificate.
    fn vault_role(&self) -> Option<&vault::VaultRole> {
        None
    }

    /// Who signs, in a few words for operators (`/ready`, `/status`):
    /// `embedded CA` or `vault pki_int/lab-internal`. Issuers with the same
    /// description sign the same way, so one readiness check covers them.
    fn describe(&self) -> String;

    /// Which CA this issuer signs under, for the CA health check:
    /// `embedded`, or the Vault mount. Issuers that give the same name sign
    /// under the same CA, which one check reads once. `None` for an issuer
    /// with no CA of its own to check (a test's).
    fn ca_name(&self) -> Option<String> {
        None
    }

    /// The certificates and CRL of the CA named by
    /// [`ca_name`](Self::ca_name), at `now` (unix seconds); `Err` says why
    /// they could not be read.
    async fn read_ca(&self, _now: i64) -> Result<CaDocuments, String> {
        Err("this issuer has no CA of its own".to_owned())
    }

    /// The longest lifetime a certificate may get from this issuer when a
    /// profile asks for `requested`: what the CA gives when nothing is
    /// asked, if it says; `None` when that cannot be known.
    async fn longest_lifetime(&self, requested: Option<Duration>) -> Option<Duration> {
        requested
    }

    /// Whether a signing request could succeed now, for `/ready`: `Err`
    /// says what stands in the way, in words an operator acts on. The
    /// embedded CA signs in-process and is always ready.
    async fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}
