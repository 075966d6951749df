//! The ACME wire protocol as data, with no I/O: identifiers, problem
//! documents, statuses, resource objects, JWS and JWK, the CSR rules, strict
//! DER and ARI
//! (RFC 8555, 8737, 8738, 9773, 7638, 7807). The leaf of the crate: it
//! imports nothing else of certgate, so every layer may use it.

pub mod ari;
pub mod challenge;
pub mod csr;
pub mod der;
pub mod identifier;
pub mod identifiers;
pub mod jwk;
pub mod jws;
pub mod paths;
pub mod problem;
pub mod status;
pub mod types;
