//! Operating certgate's inventory: the `certs` and `accounts` commands and
//! the admin HTTP API, both over the same queries.

pub mod api;
pub mod cli;
