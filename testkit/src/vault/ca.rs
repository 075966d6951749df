//! The two-tier CA: one root for the whole stand-in and, per PKI mount, an
//! intermediate signed by it. Both EC P-256, generated at start so every run
//! has fresh keys and nothing secret lives in the repository.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use super::envelope::uuid;

/// A CA certificate with its signing key.
pub struct Ca {
    pub issuer: Issuer<'static, KeyPair>,
    /// PEM without the trailing newline, as Vault prints certificates.
    pub pem: String,
    pub der: Vec<u8>,
    pub not_after: OffsetDateTime,
}

/// A mount's issuer: its intermediate plus the root above it.
pub struct MountCa {
    pub issuer_id: String,
    pub issuer_name: String,
    pub intermediate: Ca,
    pub root_pem: String,
}

impl MountCa {
    /// `[intermediate, root]`, the order of Vault's `ca_chain`.
    pub fn chain(&self) -> Vec<String> {
        vec![self.intermediate.pem.clone(), self.root_pem.clone()]
    }

    /// Whether `reference` (`default`, the issuer id or its name) names this issuer.
    pub fn answers_to(&self, reference: &str) -> bool {
        reference == "default" || reference == self.issuer_id || reference == self.issuer_name
    }
}

fn ca_params(
    common_name: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    is_ca: IsCa,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = is_ca;
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = not_before;
    params.not_after = not_after;
    params.serial_number = Some(super::issue::random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

/// Strips the trailing newline rcgen leaves on PEM text.
pub fn trim_pem(pem: String) -> String {
    pem.trim_end().to_owned()
}

impl Ca {
    pub fn root(now: OffsetDateTime) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let mut params = ca_params(
            "certgate test root CA",
            now - time::Duration::hours(1),
            now + time::Duration::days(20 * 365),
            IsCa::Ca(BasicConstraints::Unconstrained),
        );
        params.use_authority_key_identifier_extension = false;
        let cert = params.self_signed(&key).expect("self-signed root");
        Self {
            pem: trim_pem(cert.pem()),
            der: cert.der().to_vec(),
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        }
    }

    /// An intermediate for `mount`, valid from an hour ago for `validity`.
    pub fn intermediate(
        &self,
        mount: &str,
        now: OffsetDateTime,
        validity: std::time::Duration,
    ) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let params = ca_params(
            &format!("certgate test intermediate CA ({mount})"),
            now - time::Duration::hours(1),
            now + validity,
            IsCa::Ca(BasicConstraints::Constrained(0)),
        );
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("intermediate signed by root");
        Self {
            pem: trim_pem(cert.pem()),
            der: cert.der().to_vec(),
            not_after: params.not_after,
            issuer: Issuer::new(params, key),
        }
    }
}

impl MountCa {
    pub fn new(
        root: &Ca,
        mount: &str,
        issuer_name: &str,
        now: OffsetDateTime,
        validity: std::time::Duration,
    ) -> Self {
        Self {
            issuer_id: uuid(),
            issuer_name: issuer_name.to_owned(),
            intermediate: root.intermediate(mount, now, validity),
            root_pem: root.pem.clone(),
        }
    }
}
