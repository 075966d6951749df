//! Signing through Vault: certgate's Vault client and Vault profiles against
//! the Vault stand-in, `/ready` and `check-config` with a Vault, and the
//! stand-in itself held to the contract in vault-api.md.

mod ca_health;
mod check_config;
mod inventory_sync;
mod ready;
mod standin;
mod vault_auth;
mod vault_issuance;
