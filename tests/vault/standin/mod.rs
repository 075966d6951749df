//! Tests of the Vault stand-in against the contract in vault-api.md: if the
//! stand-in drifts from Vault's behaviour, certgate's tests would prove
//! nothing, so each rule the contract states is pinned down here.

mod common;

mod auth;
mod errors;
mod faults;
mod listing;
mod names;
mod reads;
mod revoke;
mod signing;
