//! The subcommands beside `serve`, which print: checking a configuration,
//! reading or changing the inventory while the server runs, making the
//! embedded CA, and the database's schema and copies. Only this layer
//! writes to stdout.

pub mod ca;
pub mod check_config;
mod check_host;
pub mod db;
pub mod dns_persist;
pub mod eab;
pub mod init;
pub mod inventory;
pub mod migrate;
pub mod offline;
mod output;

#[cfg(test)]
mod hyphen_values;
