//! The rules of certgate: what an account, an order, a validation or an
//! issuance may do, independent of HTTP. Handlers in `web` and commands in
//! `cli` call these; they call the store, the issuers and the validators.

pub mod accounts;
pub mod bucket_sweep;
pub mod ca_health;
pub mod eab;
pub mod error;
pub mod finalize;
pub mod inventory;
pub mod issuance;
pub mod orders;
pub mod profiles;
pub mod readiness;
pub mod retention;
pub mod validation;
pub mod validation_slots;
pub mod work_leases;
pub mod workers;
