//! certgate: an ACME server (RFC 8555) in front of HashiCorp Vault PKI, with
//! an embedded CA for a start with no other setup.
//!
//! One layer per module, dependencies pointing one way (ARCHITECTURE.md):
//! [`protocol`] and [`util`] at the bottom, then [`config`], [`store`] (the
//! only SQL), [`metrics`], [`vault`] and [`audit`], [`issuer`] and
//! [`validate`], [`domain`] (the rules), [`web`] and [`cli`] (the edges),
//! and [`app`], which builds and wires everything.

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
