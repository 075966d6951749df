//! The subcommands beside `serve`, which print: checking a configuration,
//! and reading or changing the inventory while the server runs. Only this
//! layer writes to stdout.

pub mod check_config;
pub mod dns_persist;
pub mod eab;
pub mod inventory;
pub mod migrate;
pub mod offline;
