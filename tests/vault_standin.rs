//! Tests of the Vault stand-in itself against the contract in vault-api.md.

#[path = "support/vault/mod.rs"]
mod vault;

#[test]
fn builds() {}
