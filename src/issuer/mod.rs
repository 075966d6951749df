//! Who signs certificates. Finalize hands an accepted CSR to an [`Issuer`];
//! the issuer knows X.509 and its CA, never ACME.

pub mod local;

use std::time::Duration;

use async_trait::async_trait;

/// What to sign: the CSR (already checked against the order) and the names it
/// was checked for.
#[derive(Debug, Clone)]
pub struct SignRequest {
    pub csr_der: Vec<u8>,
    /// DNS names, lower-case, as in the order.
    pub names: Vec<String>,
    pub lifetime: Duration,
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
    /// The CA cannot sign right now; the same request may succeed later.
    #[error("the CA is unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a broken CA configuration.
    #[error("issuing failed: {0}")]
    Internal(String),
}

#[async_trait]
pub trait Issuer: Send + Sync {
    async fn sign(&self, request: &SignRequest) -> Result<IssuedCertificate, IssueError>;
}
