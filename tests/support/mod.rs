//! Fixtures shared by the integration tests. Each test binary uses a part of
//! them, hence the allowance for unused items.
#![allow(dead_code)]

pub mod bind;
pub mod clients;
pub mod dns;
pub mod eab;
pub mod http01;
pub mod instance;
pub mod inventory;
pub mod openmetrics;
pub mod process;
pub mod raw_client;
pub mod tls_alpn;

/// The DER certificates of a PEM chain, in order.
pub fn chain_ders(pem_chain: &str) -> Vec<Vec<u8>> {
    ::pem::parse_many(pem_chain)
        .unwrap()
        .into_iter()
        .map(|p| p.into_contents())
        .collect()
}
