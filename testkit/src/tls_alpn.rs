//! A TLS-ALPN-01 responder for tests (RFC 8737): a TLS server on 127.0.0.1
//! that negotiates only the ALPN protocol `acme-tls/1` and, for each server
//! name a test registered, presents a self-signed challenge certificate built
//! the way the test asks, correct or broken in one chosen way. It records
//! the server name (SNI) of every handshake, so a test can check what the
//! validator asked for.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair, SanType};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The ALPN protocol of RFC 8737.
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// How the challenge certificate for an identifier is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeCert {
    /// What RFC 8737 §3 asks for: self-signed, the identifier as the only
    /// subjectAltName, and a critical acmeIdentifier extension holding
    /// SHA-256 of the key authorization.
    Correct,
    /// As `Correct`, but the acmeIdentifier holds the digest of some other
    /// key authorization.
    WrongDigest,
    /// As `Correct`, plus a second subjectAltName (`extra.<identifier>`, or
    /// `extra.invalid` for an IP identifier).
    ExtraSan,
    /// As `Correct`, but the acmeIdentifier extension is not critical.
    NotCritical,
}

/// The server name a validator sends for `identifier`: the name itself, or
/// for an IP address its reverse-DNS name (RFC 8738 §6).
pub fn server_name_for(identifier: &str) -> String {
    match identifier.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        Ok(IpAddr::V6(v6)) => {
            let nibbles: Vec<String> = v6
                .octets()
                .iter()
                .rev()
                .flat_map(|byte| [byte & 0x0f, byte >> 4])
                .map(|nibble| format!("{nibble:x}"))
                .collect();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
        Err(_) => identifier.to_ascii_lowercase(),
    }
}

/// The subjectAltName entry of `identifier`: an IP address or a DNS name.
fn san(identifier: &str) -> SanType {
    match identifier.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(identifier.try_into().expect("an IA5 DNS name")),
    }
}

/// Builds the challenge certificate for `identifier` and `key_authorization`
/// as `kind` says, with a fresh P-256 key, ready for rustls to present.
pub fn challenge_certificate(
    identifier: &str,
    key_authorization: &str,
    kind: ChallengeCert,
    provider: &CryptoProvider,
) -> CertifiedKey {
    let digest = match kind {
        ChallengeCert::WrongDigest => Sha256::digest(format!("{key_authorization}.not-it")),
        _ => Sha256::digest(key_authorization.as_bytes()),
    };
    let mut acme_identifier = CustomExtension::new_acme_identifier(&digest);
    if kind == ChallengeCert::NotCritical {
        acme_identifier.set_criticality(false);
    }

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![san(identifier)];
    if kind == ChallengeCert::ExtraSan {
        let extra = match identifier.parse::<IpAddr>() {
            Ok(_) => "extra.invalid".to_owned(),
            Err(_) => format!("extra.{identifier}"),
        };
        params.subject_alt_names.push(san(&extra));
    }
    params.custom_extensions = vec![acme_identifier];

    let key = KeyPair::generate().expect("generating a P-256 key");
    let cert = params.self_signed(&key).expect("self-signing");
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: it parses the certificate with webpki,
    // which refuses the critical acmeIdentifier extension it does not know.
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .expect("rustls accepts the P-256 key");
    CertifiedKey::new(vec![cert.der().clone()], signing_key)
}

/// Certificates by server name, and every server name asked for.
#[derive(Debug, Default)]
struct Registry {
    certificates: HashMap<String, Arc<CertifiedKey>>,
    server_names: Vec<Option<String>>,
}

/// Picks the certificate registered for the SNI of a handshake; without a
/// match (or without SNI) there is none, and the handshake fails.
#[derive(Debug)]
struct BySni(Arc<Mutex<Registry>>);

impl ResolvesServerCert for BySni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(str::to_ascii_lowercase);
        let mut registry = self.0.lock().unwrap();
        registry.server_names.push(sni.clone());
        registry.certificates.get(sni.as_deref()?).cloned()
    }
}

/// A running TLS-ALPN-01 responder; dropping it stops the server.
pub struct TlsAlpnResponder {
    port: u16,
    registry: Arc<Mutex<Registry>>,
    provider: Arc<CryptoProvider>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsAlpnResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsAlpnResponder {
    /// Starts the responder on an ephemeral port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the TLS-ALPN-01 responder");
        let port = listener.local_addr().unwrap().port();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let registry: Arc<Mutex<Registry>> = Arc::default();
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(BySni(registry.clone())));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                // RFC 8737 §3: the validator closes the connection after the
                // handshake; the responder sends nothing but the handshake.
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        Self {
            port,
            registry,
            provider,
            task,
        }
    }

    /// The port the responder listens on, at 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Presents a challenge certificate built as `kind` says for handshakes
    /// naming `identifier` (a DNS name, or an IP address, whose handshakes
    /// name its reverse-DNS name). Replaces what was served for it before.
    pub fn serve(&self, identifier: &str, key_authorization: &str, kind: ChallengeCert) {
        let certified = challenge_certificate(identifier, key_authorization, kind, &self.provider);
        self.registry
            .lock()
            .unwrap()
            .certificates
            .insert(server_name_for(identifier), Arc::new(certified));
    }

    /// The server name of every handshake so far, in order; `None` for a
    /// handshake without SNI.
    pub fn server_names(&self) -> Vec<Option<String>> {
        self.registry.lock().unwrap().server_names.clone()
    }
}
