//! Reliability under faults: certgate against a CA, a network or a disk that
//! fails and comes back, checked for what a careful CA operator expects: no
//! order lost or signed twice, and work that resumes promptly on its own.

#[path = "../support/mod.rs"]
mod support;

#[path = "../support/vault/mod.rs"]
mod vault;

mod vault_outage;
