//! certgate: an ACME server (RFC 8555) in front of HashiCorp Vault PKI, with
//! an embedded CA for a start with no other setup.
//!
//! The crate is split by role: [`acme`] speaks the protocol, [`validate`]
//! proves control of identifiers, [`issuer`] signs, [`store`] remembers, and
//! [`server`] wires them together.

pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod domain;
pub mod issuer;
pub mod metrics;
pub mod protocol;
pub mod store;
pub mod util;
pub mod validate;
pub mod vault;
pub mod web;
