//! certgate: an ACME server (RFC 8555) in front of HashiCorp Vault PKI, with
//! an embedded CA for a start with no other setup.
//!
//! The crate is split by role: [`acme`] speaks the protocol, [`validate`]
//! proves control of identifiers, [`issuer`] signs, [`store`] remembers, and
//! [`server`] wires them together.

pub mod acme;
pub mod admin;
pub mod audit;
pub mod backoff;
pub mod check;
pub mod clock;
pub mod config;
pub mod eab;
pub mod health;
pub mod ids;
pub mod issuance;
pub mod issuer;
pub mod metrics;
pub mod offline;
pub mod policy;
pub mod profiles;
pub mod ratelimit;
pub mod secret;
pub mod serve_lock;
pub mod server;
pub mod status_page;
pub mod store;
pub mod validate;
pub mod vault;
