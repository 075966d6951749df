//! Turning an approved request into a signed leaf and the `data` block Vault
//! returns for it. Shared by `sign` and `sign-verbatim`, which differ only in
//! how they decide the plan.

use base64::Engine as _;
use rcgen::{
    CertificateParams, CustomExtension, DistinguishedName, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::ca::{trim_pem, MountCa};
use super::csr::{CsrPublicKey, RawExtension};
use super::envelope::VaultError;

/// Everything that goes into the leaf besides its key and issuer.
pub struct LeafPlan {
    pub subject: DistinguishedName,
    pub sans: Vec<SanType>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub key_usages: Vec<KeyUsagePurpose>,
    pub extended_key_usages: Vec<ExtendedKeyUsagePurpose>,
    /// Extensions copied as they are (sign-verbatim only).
    pub copied_extensions: Vec<RawExtension>,
}

/// A freshly signed leaf.
#[derive(Debug, Clone)]
pub struct Issued {
    pub serial: String,
    pub pem: String,
    pub der: Vec<u8>,
    pub not_after: i64,
}

/// Vault serials are 20 random bytes; the top bit is cleared so the DER
/// integer needs no sign byte and the printed serial is exactly 20 pairs.
pub fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 20] = rand::random();
    bytes[0] = (bytes[0] & 0x7f).max(1);
    SerialNumber::from_slice(&bytes)
}

/// `3a:0f:…:9c`: lower-case hex pairs joined by `:`.
pub fn format_serial(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Accepts `:` or `-` separated serials, any case.
pub fn normalize_serial(serial: &str) -> String {
    serial.trim().to_ascii_lowercase().replace('-', ":")
}

pub fn issue(plan: LeafPlan, key: &CsrPublicKey, ca: &MountCa) -> Result<Issued, VaultError> {
    let serial = random_serial();
    let mut params = CertificateParams::default();
    params.distinguished_name = plan.subject;
    params.subject_alt_names = plan.sans;
    params.not_before = plan.not_before;
    params.not_after = plan.not_after;
    params.serial_number = Some(serial.clone());
    params.is_ca = IsCa::NoCa;
    params.key_usages = plan.key_usages;
    params.extended_key_usages = plan.extended_key_usages;
    params.use_authority_key_identifier_extension = true;
    params.custom_extensions = plan
        .copied_extensions
        .into_iter()
        .map(|ext| {
            let mut custom = CustomExtension::from_oid_content(&ext.oid, ext.value);
            custom.set_criticality(ext.critical);
            custom
        })
        .collect();
    let cert = params
        .signed_by(key, &ca.intermediate.issuer)
        .map_err(|e| VaultError::bad_request(format!("unable to sign certificate: {e}")))?;
    Ok(Issued {
        serial: format_serial(&serial.to_bytes()),
        pem: trim_pem(cert.pem()),
        der: cert.der().to_vec(),
        not_after: plan.not_after.unix_timestamp(),
    })
}

/// The `format` field, validated before any work as Vault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pem,
    Der,
    PemBundle,
}

impl Format {
    pub fn parse(text: &str) -> Result<Self, VaultError> {
        match text {
            "" | "pem" => Ok(Format::Pem),
            "der" => Ok(Format::Der),
            "pem_bundle" => Ok(Format::PemBundle),
            _ => Err(VaultError::bad_request(
                r#"the "format" path parameter must be "pem", "der", or "pem_bundle""#,
            )),
        }
    }
}

fn pem_to_der_base64(pem_text: &str) -> String {
    let der = pem::parse(pem_text)
        .expect("stand-in PEM is valid")
        .into_contents();
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// The response `data` of sign and sign-verbatim.
pub fn response_data(issued: &Issued, ca: &MountCa, format: Format, remove_roots: bool) -> Value {
    let mut chain = ca.chain();
    if remove_roots {
        chain.retain(|pem| *pem != ca.root_pem);
    }
    let issuing_ca = ca.intermediate.pem.clone();
    let (certificate, issuing_ca, chain) = match format {
        Format::Pem => (issued.pem.clone(), issuing_ca, chain),
        Format::PemBundle => {
            let mut bundle = vec![issued.pem.clone()];
            bundle.extend(chain.iter().cloned());
            (bundle.join("\n"), issuing_ca, chain)
        }
        Format::Der => (
            base64::engine::general_purpose::STANDARD.encode(&issued.der),
            pem_to_der_base64(&issuing_ca),
            chain.iter().map(|p| pem_to_der_base64(p)).collect(),
        ),
    };
    json!({
        "certificate": certificate,
        "issuing_ca": issuing_ca,
        "ca_chain": chain,
        "serial_number": issued.serial,
        "expiration": issued.not_after,
    })
}
