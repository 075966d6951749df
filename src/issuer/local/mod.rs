//! The embedded CA: an EC P-256 root and intermediate kept in a folder
//! (`ca_dir`, by default `<data-dir>/ca`), so `certgate serve` issues
//! certificates with no other setup. [`folder`] says how the folder is made
//! and read, also when replicas share it.

mod folder;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer as RcgenIssuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, PublicKeyData, RevokedCertParams, SanType, SerialNumber,
    SignatureAlgorithm,
};
use time::OffsetDateTime;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{
    CaDocuments, IssueError, IssuedCertificate, Issuer, RevocationReason, RevokeRequest,
    SignRequest,
};
use crate::util::private_key::PrivateKeyError;
pub use folder::CaFiles;

const ROOT_LIFETIME: Duration = Duration::from_secs(20 * 365 * 86_400);
const INTERMEDIATE_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Where the CRL is served, and what issued certificates name as their CRL
/// distribution point (after the external URL).
pub const CRL_PATH: &str = "/ca/crl.der";

/// Allowance for clients whose clocks run a little behind ours.
const BACKDATE: Duration = Duration::from_secs(60);
/// How long a CRL says it is current (its nextUpdate). Each request gets a
/// fresh one, so this only bounds how long a client may cache it.
pub const CRL_VALIDITY: Duration = Duration::from_secs(86_400);

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("embedded CA in {dir}: {detail}")]
    Invalid { dir: PathBuf, detail: String },
    #[error(transparent)]
    PrivateKey(#[from] PrivateKeyError),
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the embedded intermediate CA expired (not after {not_after}); replace the CA folder (ca_dir)")]
    Expired { not_after: i64 },
}

/// The CA's certificates and the intermediate's signing key.
pub struct EmbeddedCa {
    root_pem: String,
    root_sha256: [u8; 32],
    intermediate_pem: String,
    intermediate_not_after: i64,
    /// The intermediate's subject, DER: the issuer name of every leaf.
    intermediate_subject: Vec<u8>,
    /// The intermediate's key identifier: the authority key identifier of
    /// every leaf and of every CRL.
    intermediate_key_id: Vec<u8>,
    issuer: RcgenIssuer<'static, KeyPair>,
    /// The last CRL number used, so that numbers only grow (RFC 5280 §5.2.3).
    last_crl_number: AtomicI64,
}

/// One revoked certificate, as the CRL lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlEntry {
    /// The serial's big-endian bytes, as in the certificate.
    pub serial: Vec<u8>,
    /// Unix seconds.
    pub revoked_at: i64,
    pub reason: RevocationReason,
}

impl std::fmt::Debug for EmbeddedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedCa").finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f; // positive, as RFC 5280 requires
    bytes[0] |= 0x01; // and a full 16 bytes long
    SerialNumber::from_slice(&bytes)
}

fn ca_params(
    common_name: &str,
    path_len: u8,
    lifetime: Duration,
    now: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "certgate");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

impl EmbeddedCa {
    /// Loads the CA from `dir`, generating it first when the folder is
    /// missing or empty. Replicas racing to do so end with one CA (see
    /// [`folder`]).
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        Self::create_unless_present(dir)?;
        Self::load(dir)
    }

    /// Whether `dir` holds a CA, or at least something: a missing or empty
    /// folder is where [`EmbeddedCa::load_or_create`] makes one.
    pub fn exists_in(dir: &Path) -> Result<bool, CaError> {
        folder::holds_a_ca(dir)
    }

    /// Generates a CA into `dir` unless it holds one. True when this call
    /// made the CA there; false when it was there, or another process made
    /// it first.
    pub fn create_unless_present(dir: &Path) -> Result<bool, CaError> {
        if Self::exists_in(dir)? {
            return Ok(false);
        }
        let made = folder::install(dir, &Self::generate()?)?;
        if made {
            tracing::info!(dir = %dir.display(), "generated the embedded CA");
        }
        Ok(made)
    }

    fn generate() -> Result<folder::CaPem, CaError> {
        let now = OffsetDateTime::now_utc();
        let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        // A short random suffix tells this install's root from every other
        // certgate's in a trust store ("certgate root CA 3f9a1c").
        let root_name = format!("certgate root CA {:06x}", rand::random::<u32>() >> 8);
        let root_params = ca_params(&root_name, 1, ROOT_LIFETIME, now);
        let root_cert = root_params.self_signed(&root_key)?;
        let root = RcgenIssuer::new(root_params, &root_key);
        let intermediate_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let intermediate_cert =
            ca_params("certgate intermediate CA", 0, INTERMEDIATE_LIFETIME, now)
                .signed_by(&intermediate_key, &root)?;
        Ok(folder::CaPem {
            root: root_cert.pem(),
            root_key: root_key.serialize_pem(),
            intermediate: intermediate_cert.pem(),
            intermediate_key: intermediate_key.serialize_pem(),
        })
    }

    /// Loads the CA in `dir`, which may be read-only; never writes.
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let invalid = |detail: String| CaError::Invalid {
            dir: dir.to_owned(),
            detail,
        };
        let folder::LoadedPem {
            root: root_pem,
            intermediate: intermediate_pem,
            intermediate_key,
        } = folder::load(dir)?;
        let root_der = pem::parse(&root_pem).map_err(|e| invalid(format!("root.pem: {e}")))?;
        let root_sha256 = {
            use sha2::Digest;
            sha2::Sha256::digest(root_der.contents()).into()
        };
        let key = KeyPair::from_pem(&intermediate_key)
            .map_err(|e| invalid(format!("intermediate.key: {e}")))?;
        let der =
            pem::parse(&intermediate_pem).map_err(|e| invalid(format!("intermediate.pem: {e}")))?;
        let (_, parsed) = X509Certificate::from_der(der.contents())
            .map_err(|e| invalid(format!("intermediate.pem: {e}")))?;
        if parsed.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(invalid(
                "intermediate.key does not match intermediate.pem".into(),
            ));
        }
        let intermediate_not_after = parsed.validity().not_after.timestamp();
        let intermediate_subject = parsed.subject().as_raw().to_vec();
        // The identifier rcgen put in the intermediate, or the one it puts
        // in leaves when there is none.
        let intermediate_key_id = parsed
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            })
            .unwrap_or_else(|| {
                // rcgen's default: SHA-256 of the key info, cut to 20 bytes.
                use sha2::Digest;
                sha2::Sha256::digest(key.subject_public_key_info())[..20].to_vec()
            });
        let issuer = RcgenIssuer::from_ca_cert_pem(&intermediate_pem, key)?;
        Ok(Self {
            root_pem,
            root_sha256,
            intermediate_pem,
            intermediate_not_after,
            intermediate_subject,
            intermediate_key_id,
            issuer,
            last_crl_number: AtomicI64::new(0),
        })
    }

    /// The root clients must trust, PEM.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// SHA-256 of the root certificate (DER): what an operator compares to
    /// tell one CA from another.
    pub fn root_sha256(&self) -> [u8; 32] {
        self.root_sha256
    }

    /// Whether this CA's intermediate issued the certificate `leaf_der`: the
    /// issuer name and the authority key identifier are the intermediate's.
    /// (Every install's intermediate has the same name; the key tells them
    /// apart.)
    pub fn issued(&self, leaf_der: &[u8]) -> bool {
        let Ok((_, leaf)) = X509Certificate::from_der(leaf_der) else {
            return false;
        };
        if leaf.issuer().as_raw() != self.intermediate_subject.as_slice() {
            return false;
        }
        // Bound to a name so the iterator is dropped before `leaf`.
        let issued_here = leaf
            .iter_extensions()
            .any(|ext| match ext.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => aki
                    .key_identifier
                    .as_ref()
                    .is_some_and(|id| id.0 == self.intermediate_key_id.as_slice()),
                _ => false,
            });
        issued_here
    }

    /// A CRL (DER) signed by the intermediate that lists `entries`, current
    /// from `now` for [`CRL_VALIDITY`]. Its number is the time in
    /// milliseconds, or one more than the last number when that is larger,
    /// so numbers grow across restarts too.
    pub fn crl(&self, entries: &[CrlEntry], now: OffsetDateTime) -> Result<Vec<u8>, CaError> {
        let millis = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let next = |last: i64| millis.max(last + 1);
        let last = self
            .last_crl_number
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(next(last)))
            .unwrap_or_else(|last| last);
        let number = next(last);
        let revoked_certs = entries
            .iter()
            .map(|entry| RevokedCertParams {
                serial_number: SerialNumber::from_slice(&entry.serial),
                revocation_time: OffsetDateTime::from_unix_timestamp(entry.revoked_at)
                    .unwrap_or(now),
                // rcgen leaves the extension out for `unspecified`, as
                // RFC 5280 §5.3.1 asks.
                reason_code: Some(match entry.reason {
                    RevocationReason::Unspecified => rcgen::RevocationReason::Unspecified,
                    RevocationReason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
                    RevocationReason::AffiliationChanged => {
                        rcgen::RevocationReason::AffiliationChanged
                    }
                    RevocationReason::Superseded => rcgen::RevocationReason::Superseded,
                    RevocationReason::CessationOfOperation => {
                        rcgen::RevocationReason::CessationOfOperation
                    }
                }),
                invalidity_date: None,
            })
            .collect();
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + CRL_VALIDITY,
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::PreSpecified(self.intermediate_key_id.clone()),
        };
        Ok(params.signed_by(&self.issuer)?.der().to_vec())
    }

    /// Signs a leaf certificate for `names` over `public_key`, valid for
    /// `lifetime` but never past the intermediate. Returns the serial (hex),
    /// leaf + intermediate PEM, and the validity period (unix seconds).
    /// With `crl_url`, the leaf names it as its CRL distribution point.
    fn issue_leaf(
        &self,
        public_key: &impl PublicKeyData,
        names: &[String],
        lifetime: Duration,
        server_auth_only: bool,
        crl_url: Option<&str>,
    ) -> Result<IssuedCertificate, CaError> {
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = names.first().filter(|n| n.len() <= 64) {
            dn.push(DnType::CommonName, cn.as_str());
        }
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(name.clone().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if public_key.algorithm() == &rcgen::PKCS_RSA_SHA256 {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if !server_auth_only {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        let serial = random_serial();
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        params.crl_distribution_points = crl_url
            .map(|url| CrlDistributionPoint {
                uris: vec![url.to_owned()],
            })
            .into_iter()
            .collect();
        params.not_before = now - BACKDATE;
        let not_after = (now + lifetime)
            .unix_timestamp()
            .min(self.intermediate_not_after);
        if not_after <= now.unix_timestamp() {
            // A leaf that expires before it is issued helps nobody.
            return Err(CaError::Expired {
                not_after: self.intermediate_not_after,
            });
        }
        params.not_after = OffsetDateTime::from_unix_timestamp(not_after)
            .expect("a timestamp taken from an OffsetDateTime is in range");
        let leaf = params.signed_by(public_key, &self.issuer)?;
        Ok(IssuedCertificate {
            serial: hex(&serial.to_bytes()),
            chain_pem: format!("{}{}", leaf.pem(), self.intermediate_pem),
            not_before: params.not_before.unix_timestamp(),
            not_after,
        })
    }

    /// A certificate and key for certgate's own HTTPS listener. It names no
    /// CRL: it is made anew at every start and never revoked.
    pub fn server_identity(
        &self,
        names: &[String],
        lifetime: Duration,
    ) -> Result<(String, String), CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let issued = self.issue_leaf(&key, names, lifetime, true, None)?;
        Ok((issued.chain_pem, key.serialize_pem()))
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The subject public key of a CSR, carried into the certificate byte for byte.
struct CsrPublicKey {
    spki: Vec<u8>,
    raw: Vec<u8>,
    algorithm: &'static SignatureAlgorithm,
}

impl PublicKeyData for CsrPublicKey {
    fn subject_public_key_info(&self) -> Vec<u8> {
        self.spki.clone()
    }

    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm
    }
}

impl CsrPublicKey {
    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, String> {
        let algorithm = match spki.parsed() {
            Ok(PublicKey::RSA(_)) => &rcgen::PKCS_RSA_SHA256,
            Ok(PublicKey::EC(point)) if point.key_size() == 256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Ok(PublicKey::EC(point)) if point.key_size() == 384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            _ if spki.algorithm.algorithm == x509_parser::oid_registry::OID_SIG_ED25519 => {
                &rcgen::PKCS_ED25519
            }
            _ => return Err("unsupported public key type".into()),
        };
        Ok(Self {
            spki: spki.raw.to_vec(),
            raw: spki.subject_public_key.data.to_vec(),
            algorithm,
        })
    }
}

/// [`Issuer`] backed by the embedded CA.
#[derive(Debug, Clone)]
pub struct LocalIssuer {
    ca: Arc<EmbeddedCa>,
    /// Used when the profile asks for no lifetime (`--cert-lifetime`).
    default_lifetime: Duration,
    /// The CRL distribution point written into each leaf.
    crl_url: Option<String>,
}

impl LocalIssuer {
    pub fn new(ca: Arc<EmbeddedCa>, default_lifetime: Duration) -> Self {
        Self {
            ca,
            default_lifetime,
            crl_url: None,
        }
    }

    /// Leaves name `<external_url>/ca/crl.der` as their CRL distribution
    /// point. Without an external URL they name none: certgate answers
    /// under whatever host a client used, and a guessed URL (localhost, the
    /// listen address) would send relying parties somewhere that is not
    /// certgate, or fail their check outright.
    pub fn with_external_url(mut self, external_url: Option<&str>) -> Self {
        self.crl_url =
            external_url.map(|base| format!("{}{}", base.trim_end_matches('/'), CRL_PATH));
        self
    }
}

#[async_trait]
impl Issuer for LocalIssuer {
    async fn sign(&self, request: &SignRequest) -> Result<IssuedCertificate, IssueError> {
        let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(
            &request.csr_der,
        )
        .map_err(|e| IssueError::Rejected(format!("CSR does not parse: {e}")))?;
        let key = CsrPublicKey::from_spki(&csr.certification_request_info.subject_pki)
            .map_err(IssueError::Rejected)?;
        self.ca
            .issue_leaf(
                &key,
                &request.names,
                request.lifetime.unwrap_or(self.default_lifetime),
                false,
                self.crl_url.as_deref(),
            )
            .map_err(|e| IssueError::Internal(e.to_string()))
    }

    /// The embedded CA's revocation list is certgate's store: once the
    /// caller records the revocation, the next CRL lists it. Here it is
    /// only checked that the certificate is one of ours.
    async fn revoke(&self, certificate: &RevokeRequest) -> Result<(), IssueError> {
        let der = pem::parse(&certificate.leaf_pem)
            .map_err(|e| IssueError::Internal(format!("stored certificate: {e}")))?;
        if self.ca.issued(der.contents()) {
            Ok(())
        } else {
            Err(IssueError::Rejected(format!(
                "certificate {} was not issued by this embedded CA",
                certificate.serial
            )))
        }
    }

    fn ca_name(&self) -> Option<String> {
        Some("embedded".to_owned())
    }

    /// The intermediate and the root, and a CRL built as `/ca/crl.der`
    /// builds one at `now` (each request gets a fresh one, so it is stale
    /// only if signing it fails).
    async fn read_ca(&self, now: i64) -> Result<CaDocuments, String> {
        let der = |text: &str| {
            pem::parse(text)
                .map(|pem| pem.contents().to_vec())
                .map_err(|e| e.to_string())
        };
        let now = OffsetDateTime::from_unix_timestamp(now).map_err(|e| e.to_string())?;
        Ok(CaDocuments {
            chain_der: vec![der(&self.ca.intermediate_pem)?, der(&self.ca.root_pem)?],
            crl_der: Some(self.ca.crl(&[], now).map_err(|e| e.to_string())?),
        })
    }

    async fn longest_lifetime(&self, requested: Option<Duration>) -> Option<Duration> {
        Some(requested.unwrap_or(self.default_lifetime))
    }

    fn embedded_ca(&self) -> Option<&EmbeddedCa> {
        Some(&self.ca)
    }

    fn describe(&self) -> String {
        "embedded CA".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_once_then_reloads_the_same_ca_with_private_keys_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let first = EmbeddedCa::load_or_create(&dir).unwrap();
        let second = EmbeddedCa::load_or_create(&dir).unwrap();
        assert_eq!(first.root_pem(), second.root_pem());
        for key in ["root.key", "intermediate.key"] {
            let mode = fs::metadata(dir.join(key)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }

    #[test]
    fn refuses_a_key_that_does_not_match_the_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        EmbeddedCa::load_or_create(&dir).unwrap();
        let other = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        fs::write(dir.join("intermediate.key"), other.serialize_pem()).unwrap();
        let err = EmbeddedCa::load_or_create(&dir).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }
}
