//! DER that strangers send: the CSR of a finalize request and the
//! certificate a TLS-ALPN-01 responder presents.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use certgate::protocol::csr;
use certgate::validate::tls_alpn01::{check_certificate, SanValue};

/// `<names>\0<CSR DER>`: finalize's checks of the CSR against an order for
/// those names. An accepted CSR names exactly the order's names.
pub fn csr(data: &[u8]) {
    let (names, der) = crate::split_at_nul(data);
    let mut order_names = crate::names(&names);
    order_names.sort();
    order_names.dedup();
    let csr_b64 = URL_SAFE_NO_PAD.encode(der);
    if let Ok(accepted) = csr::check(&csr_b64, &order_names, crate::payloads::account_key()) {
        assert_eq!(accepted.names, order_names);
        assert_eq!(accepted.der, der);
        assert!(csr::public_key_sha256(&accepted.der).is_some());
    }
}

/// `<identifier>\0<32-byte digest><certificate DER>`: the TLS-ALPN-01
/// check of the certificate a responder presented for the identifier (an
/// IP address when it parses as one) and the key authorization's digest.
pub fn tls_alpn01(data: &[u8]) {
    let (identifier, rest) = crate::split_at_nul(data);
    if rest.len() < 32 {
        return;
    }
    let (digest, der) = rest.split_at(32);
    let san = match identifier.parse::<IpAddr>() {
        Ok(ip) => SanValue::Ip(ip),
        Err(_) => SanValue::Dns(identifier),
    };
    let _ = check_certificate(der, &san, digest);
}
