//! Who signs certificates. Finalize hands an accepted CSR to an [`Issuer`];
//! the issuer knows X.509 and its CA, never ACME.

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

#[derive(Debug, thiserror::Error)]
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

/// One identifier the issuer would refuse, and why.
pub use crate::policy::Refusal;

#[async_trait]
pub trait Issuer: Send + Sync {
    async fn sign(&self, request: &SignRequest) -> Result<IssuedCertificate, IssueError>;

    /// The identifiers (DNS names, `*.` wildcards, IP addresses) this issuer
    /// would refuse to certify, checked at newOrder so that a client hears
    /// `rejectedIdentifier` before it proves control of anything.
    async fn refused_identifiers(
        &self,
        _identifiers: &[String],
    ) -> Result<Vec<Refusal>, IssueError> {
        Ok(Vec::new())
    }

    /// True when signing happens somewhere else (Vault), so that a signing
    /// attempt cut short by a crash may have produced a certificate there.
    /// An embedded CA signs in-process: an interrupted attempt left nothing.
    fn signs_remotely(&self) -> bool {
        false
    }
}
