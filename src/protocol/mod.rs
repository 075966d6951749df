//! The ACME wire protocol as data, with no I/O: identifiers, problem
//! documents, statuses, resource objects, JWS and JWK (and the keys made
//! ready to verify, kept by thumbprint), the CSR rules, strict
//! DER, ARI, the RFC 8659 issue-value and the dns-persist-01 record
//! (RFC 8555, 8737, 8738, 9773, 7638, 7807, 8659). The leaf of the crate: it
//! imports nothing else of certgate, so every layer may use it.

pub mod ari;
pub mod challenge;
pub mod contacts;
pub mod csr;
pub mod der;
pub mod dns_persist;
pub mod identifier;
pub mod identifiers;
pub mod issue_value;
pub mod jwk;
pub mod jws;
pub mod key_change;
pub mod paths;
pub mod problem;
pub mod revoke_request;
pub mod status;
pub mod types;
pub mod verifiers;
