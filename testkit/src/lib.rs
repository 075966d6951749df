//! Fixtures shared by certgate's integration tests: the built binary as a
//! process, an in-process server, raw and real ACME clients, HTTP-01 and
//! TLS-ALPN-01 responders, a DNS stub and a real BIND, and the Vault
//! stand-in ([`vault`]). One crate, so the test binaries compile it once.

pub mod bind;
pub mod clients;
pub mod database;
pub mod dns;
pub mod eab;
pub mod haproxy;
pub mod http01;
pub mod instance;
pub mod inventory;
pub mod openmetrics;
pub mod postgres;
pub mod process;
pub mod raw_client;
pub mod real_clients;
pub mod served;
pub mod tls_alpn;
pub mod vault;

/// The DER certificates of a PEM chain, in order.
pub fn chain_ders(pem_chain: &str) -> Vec<Vec<u8>> {
    ::pem::parse_many(pem_chain)
        .unwrap()
        .into_iter()
        .map(|p| p.into_contents())
        .collect()
}
