//! TLS-ALPN-01 (RFC 8737): connect to `<name>:<port>` offering only the
//! ALPN protocol `acme-tls/1`, and accept the handshake only if the server
//! shows a self-signed certificate whose sole SAN is the identifier and whose
//! critical acmeIdentifier extension holds SHA-256 of the key authorization.
//! For an IP address the SNI is its reverse-DNS name (RFC 8738 §6).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::Oid;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::{DnsResolver, Method, Proof, ValidationSubject};
use crate::protocol::identifier::IdentifierKind;
use crate::protocol::problem::{Problem, ProblemType};

/// The ALPN protocol of RFC 8737.
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// Connecting and the whole handshake, per address.
const TIMEOUT: Duration = Duration::from_secs(10);
/// id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31.
const ACME_IDENTIFIER_OID: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 31];

/// Accepts any certificate chain: the challenge's own checks on the
/// certificate replace path validation, which a self-signed challenge
/// certificate would never pass. Handshake signatures are still verified,
/// so the server does hold the certificate's key.
#[derive(Debug)]
struct ChallengeCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for ChallengeCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_with_certificate_key(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // TLS 1.3 has no PKCS#1 v1.5 or SHA-1 signatures (RFC 8446 §4.2.3).
        let legacy = matches!(
            dss.scheme,
            SignatureScheme::RSA_PKCS1_SHA1
                | SignatureScheme::RSA_PKCS1_SHA256
                | SignatureScheme::RSA_PKCS1_SHA384
                | SignatureScheme::RSA_PKCS1_SHA512
                | SignatureScheme::ECDSA_SHA1_Legacy
        );
        if legacy {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::BadSignature,
            ));
        }
        self.verify_with_certificate_key(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ChallengeCertificate {
    /// Checks a handshake signature against the certificate's public key.
    /// rustls' own helpers parse the certificate with webpki, which refuses
    /// the critical acmeIdentifier extension every challenge certificate
    /// carries, so the key is read here and handed to the same algorithms.
    fn verify_with_certificate_key(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let bad = |e| rustls::Error::InvalidCertificate(e);
        let (_, parsed) = X509Certificate::from_der(cert.as_ref())
            .map_err(|_| bad(rustls::CertificateError::BadEncoding))?;
        let key = &parsed.public_key().subject_public_key.data;
        let algorithms = self
            .0
            .signature_verification_algorithms
            .mapping
            .iter()
            .find(|(scheme, _)| *scheme == dss.scheme)
            .map_or(&[][..], |(_, algorithms)| *algorithms);
        if algorithms
            .iter()
            .any(|alg| alg.verify_signature(key, message, dss.signature()).is_ok())
        {
            Ok(HandshakeSignatureValid::assertion())
        } else {
            Err(bad(rustls::CertificateError::BadSignature))
        }
    }
}

pub struct TlsAlpn01 {
    resolver: DnsResolver,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
}

/// `in-addr.arpa` / `ip6.arpa` name of an address (RFC 8738 §6).
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let nibbles: Vec<String> = v6
                .octets()
                .iter()
                .rev()
                .flat_map(|byte| [byte & 0x0f, byte >> 4])
                .map(|nibble| format!("{nibble:x}"))
                .collect();
            format!("{}.ip6.arpa", nibbles.join("."))
        }
    }
}

/// Checks the challenge certificate; the reason it fails, if it does.
pub fn check_certificate(der: &[u8], identifier: &SanValue, digest: &[u8]) -> Result<(), String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    if cert.subject().as_raw() != cert.issuer().as_raw() || cert.verify_signature(None).is_err() {
        return Err("the certificate is not self-signed".into());
    }
    let sans = match cert.subject_alternative_name() {
        Ok(Some(san)) => &san.value.general_names,
        Ok(None) => return Err("the certificate has no subjectAltName".into()),
        Err(e) => return Err(format!("its subjectAltName does not parse: {e}")),
    };
    match sans.as_slice() {
        [only] if identifier.matches(only) => {}
        _ => {
            return Err(format!(
                "its subjectAltName must be exactly {identifier}, but is {:?}",
                sans.iter().map(ToString::to_string).collect::<Vec<_>>()
            ))
        }
    }
    let oid = Oid::from(ACME_IDENTIFIER_OID).expect("a valid OID");
    let extension = cert
        .extensions()
        .iter()
        .find(|e| e.oid == oid)
        .ok_or("the certificate has no acmeIdentifier extension")?;
    if !extension.critical {
        return Err("its acmeIdentifier extension is not critical".into());
    }
    // The extension value is a DER OCTET STRING of the 32-byte digest.
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(digest);
    if extension.value != expected.as_slice() {
        return Err("its acmeIdentifier does not hold the digest of the key authorization".into());
    }
    if let ParsedExtension::ParseError { error } = extension.parsed_extension() {
        return Err(format!("its acmeIdentifier does not parse: {error}"));
    }
    Ok(())
}

/// The one SAN a challenge certificate may carry.
pub enum SanValue {
    Dns(String),
    Ip(IpAddr),
}

impl SanValue {
    fn matches(&self, name: &GeneralName<'_>) -> bool {
        match (self, name) {
            (Self::Dns(want), GeneralName::DNSName(got)) => want.eq_ignore_ascii_case(got),
            (Self::Ip(want), GeneralName::IPAddress(got)) => match want {
                IpAddr::V4(v4) => v4.octets().as_slice() == *got,
                IpAddr::V6(v6) => v6.octets().as_slice() == *got,
            },
            _ => false,
        }
    }
}

impl std::fmt::Display for SanValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "DNS:{name}"),
            Self::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

impl TlsAlpn01 {
    pub fn new(resolver: DnsResolver, port: u16) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChallengeCertificate(provider)))
            .with_no_client_auth();
        tls.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        Self {
            resolver,
            port,
            tls: Arc::new(tls),
        }
    }

    /// One handshake with `addr`; the presented certificate, checked.
    async fn handshake(
        &self,
        addr: SocketAddr,
        sni: ServerName<'static>,
        identifier: &SanValue,
        digest: &[u8],
    ) -> Result<(), String> {
        let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
        let attempt = async {
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connecting: {e}"))?;
            let tls = connector
                .connect(sni, tcp)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            let (_, session) = tls.get_ref();
            if session.alpn_protocol() != Some(ACME_TLS_ALPN) {
                return Err("the server did not negotiate the acme-tls/1 protocol".to_owned());
            }
            let der = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .ok_or("the server sent no certificate")?;
            check_certificate(der, identifier, digest)
        };
        tokio::time::timeout(TIMEOUT, attempt)
            .await
            .unwrap_or_else(|_| Err(format!("no handshake within {}s", TIMEOUT.as_secs())))
    }
}

#[async_trait]
impl Method for TlsAlpn01 {
    async fn validate(&self, subject: &ValidationSubject<'_>) -> Result<Proof, Problem> {
        let name = subject.identifier.value.as_str();
        let (sni, identifier, addrs) = if subject.kind() == IdentifierKind::Ip {
            let ip: IpAddr = name
                .parse()
                .map_err(|_| Problem::malformed(format!("{name:?} is not an IP address")))?;
            (reverse_name(ip), SanValue::Ip(ip), vec![ip])
        } else {
            let addrs = self
                .resolver
                .addresses(name)
                .await
                .map_err(|e| Problem::new(ProblemType::Dns, e))?;
            (name.to_owned(), SanValue::Dns(name.to_owned()), addrs)
        };
        let sni = ServerName::try_from(sni.clone())
            .map_err(|_| Problem::malformed(format!("{sni:?} cannot be sent as SNI")))?;
        let addrs = subject.reachable(name, &addrs)?;
        let digest = Sha256::digest(subject.key_authorization.as_bytes());
        let mut failures = Vec::new();
        for ip in addrs {
            let addr = SocketAddr::new(ip, self.port);
            match self
                .handshake(addr, sni.clone(), &identifier, &digest)
                .await
            {
                Ok(()) => return Ok(Proof::default()),
                Err(why) => failures.push(format!("{addr}: {why}")),
            }
        }
        Err(Problem::new(
            ProblemType::Tls,
            format!("tls-alpn-01 for {name}: {}", failures.join("; ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_of_rfc8738() {
        assert_eq!(
            reverse_name("192.0.2.5".parse().unwrap()),
            "5.2.0.192.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0"), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }
}
