//! Fixtures shared by the integration tests. Each test binary uses a part of
//! them, hence the allowance for unused items.
#![allow(dead_code)]

pub mod dns;
pub mod http01;
pub mod instance;
pub mod process;
pub mod raw_client;
