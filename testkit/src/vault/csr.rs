//! Reading a CSR: its public key (type, size, and a form rcgen can certify),
//! its names, its raw extensions and subject for sign-verbatim.
//!
//! x509-parser is used rather than rcgen's CSR reader because the latter
//! refuses CSRs carrying extensions it does not know, which real clients send.

use std::net::IpAddr;

use rcgen::{DistinguishedName, DnType, PublicKeyData, SignatureAlgorithm};
use x509_parser::prelude::*;

/// The kinds of key Vault's `key_type` distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ec,
    Ed25519,
}

impl KeyKind {
    pub fn role_name(self) -> &'static str {
        match self {
            KeyKind::Rsa => "rsa",
            KeyKind::Ec => "ec",
            KeyKind::Ed25519 => "ed25519",
        }
    }
}

/// The CSR's public key, certifiable by rcgen.
#[derive(Debug, Clone)]
pub struct CsrPublicKey {
    pub kind: KeyKind,
    pub bits: u32,
    raw: Vec<u8>,
    algorithm: &'static SignatureAlgorithm,
}

impl PublicKeyData for CsrPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

/// One extension exactly as the CSR requested it.
#[derive(Debug, Clone)]
pub struct RawExtension {
    pub oid: Vec<u64>,
    pub critical: bool,
    pub value: Vec<u8>,
}

/// What the signing paths need from a CSR.
#[derive(Debug, Clone)]
pub struct Csr {
    /// `None` when the key type is one the stand-in cannot certify.
    pub key: Option<CsrPublicKey>,
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ip_sans: Vec<IpAddr>,
    pub uri_sans: Vec<String>,
    pub subject: DistinguishedName,
    pub extensions: Vec<RawExtension>,
    pub signature_valid: bool,
}

const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";
const OID_ED25519: &str = "1.3.101.112";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Parses PEM text; the error is the message Vault would return.
pub fn parse(pem_text: &str) -> Result<Csr, String> {
    if pem_text.trim().is_empty() {
        return Err("\"csr\" is empty".to_owned());
    }
    let block = ::pem::parse(pem_text.trim())
        .map_err(|e| format!("certificate request could not be parsed: {e}"))?;
    let (_, csr) = X509CertificationRequest::from_der(block.contents())
        .map_err(|e| format!("certificate request could not be parsed: {e}"))?;
    let info = &csr.certification_request_info;

    let mut parsed = Csr {
        key: public_key(&info.subject_pki),
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned(),
        dns_names: Vec::new(),
        ip_sans: Vec::new(),
        uri_sans: Vec::new(),
        subject: subject(&info.subject),
        extensions: Vec::new(),
        signature_valid: csr.verify_signature().is_ok(),
    };

    for attribute in info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() else {
            continue;
        };
        for extension in &request.extensions {
            if let ParsedExtension::SubjectAlternativeName(san) = extension.parsed_extension() {
                collect_names(&mut parsed, &san.general_names);
            }
            parsed.extensions.push(RawExtension {
                oid: extension
                    .oid
                    .iter()
                    .map(Iterator::collect)
                    .unwrap_or_default(),
                critical: extension.critical,
                value: extension.value.to_vec(),
            });
        }
    }
    Ok(parsed)
}

fn collect_names(csr: &mut Csr, names: &[GeneralName]) {
    for name in names {
        match name {
            GeneralName::DNSName(dns) => csr.dns_names.push((*dns).to_owned()),
            GeneralName::URI(uri) => csr.uri_sans.push((*uri).to_owned()),
            GeneralName::IPAddress(bytes) => {
                if let Ok(v4) = <[u8; 4]>::try_from(*bytes) {
                    csr.ip_sans.push(IpAddr::from(v4));
                } else if let Ok(v6) = <[u8; 16]>::try_from(*bytes) {
                    csr.ip_sans.push(IpAddr::from(v6));
                }
            }
            _ => {}
        }
    }
}

fn public_key(spki: &SubjectPublicKeyInfo) -> Option<CsrPublicKey> {
    let raw = spki.subject_public_key.data.to_vec();
    let (kind, bits, algorithm): (KeyKind, u32, &'static SignatureAlgorithm) =
        match spki.algorithm.algorithm.to_id_string().as_str() {
            OID_RSA => match spki.parsed().ok()? {
                x509_parser::public_key::PublicKey::RSA(rsa) => (
                    KeyKind::Rsa,
                    integer_bits(rsa.modulus),
                    &rcgen::PKCS_RSA_SHA256,
                ),
                _ => return None,
            },
            OID_EC => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()?
                    .as_oid()
                    .ok()?
                    .to_id_string();
                match curve.as_str() {
                    OID_P256 => (KeyKind::Ec, 256, &rcgen::PKCS_ECDSA_P256_SHA256),
                    OID_P384 => (KeyKind::Ec, 384, &rcgen::PKCS_ECDSA_P384_SHA384),
                    _ => return None,
                }
            }
            OID_ED25519 => (KeyKind::Ed25519, 256, &rcgen::PKCS_ED25519),
            _ => return None,
        };
    Some(CsrPublicKey {
        kind,
        bits,
        raw,
        algorithm,
    })
}

/// Bit length of a big-endian unsigned integer (leading zero bytes ignored).
fn integer_bits(bytes: &[u8]) -> u32 {
    let significant: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    match significant.first() {
        None => 0,
        Some(first) => {
            8 * u32::try_from(significant.len()).unwrap_or(u32::MAX) - first.leading_zeros()
        }
    }
}

/// The subject as rcgen needs it for sign-verbatim (values re-encoded as UTF-8).
fn subject(name: &X509Name) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for attribute in name.iter_attributes() {
        let Some(oid) = attribute.attr_type().iter() else {
            continue;
        };
        let oid: Vec<u64> = oid.collect();
        if let Ok(value) = attribute.as_str() {
            dn.push(DnType::from_oid(&oid), value);
        }
    }
    dn
}
