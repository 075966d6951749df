//! Finalize's CSR checks (RFC 8555 §7.4): the request must be validly
//! self-signed, name exactly the order's identifiers, use an acceptable key
//! that is not the account key, and not ask to be a CA.

use std::collections::BTreeSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_SUBJECT_ALT_NAME};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;

use super::jwk::{rsa_key_problem, PublicJwk};
use super::problem::Problem;

/// A CSR that passed every check, with the names it asks for.
#[derive(Debug, Clone)]
pub struct AcceptedCsr {
    pub der: Vec<u8>,
    /// Lower-case, sorted, deduplicated.
    pub names: Vec<String>,
}

fn key_problem(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Option<String> {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => {
            rsa_key_problem(rsa.modulus, rsa.exponent).map(|why| format!("CSR {why}"))
        }
        Ok(PublicKey::EC(point)) if matches!(point.key_size(), 256 | 384) => None,
        _ if spki.algorithm.algorithm == x509_parser::oid_registry::OID_SIG_ED25519 => None,
        _ => Some("CSR key must be RSA (2048 bits or more), EC P-256, EC P-384 or Ed25519".into()),
    }
}

/// An IP address SAN's octets as an address.
pub fn ip_from_bytes(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// SHA-256 of the CSR's SubjectPublicKeyInfo (DER), lower-case hex: the key
/// a certificate signed from this CSR carries, so it finds that certificate
/// at the CA (`openssl x509 -pubkey -noout | openssl pkey -pubin -outform
/// der | sha256sum` gives the same). `None` when the CSR does not parse,
/// which a CSR that passed [`check`] always does.
pub fn public_key_sha256(csr_der: &[u8]) -> Option<String> {
    use sha2::Digest;
    let (_, csr) = X509CertificationRequest::from_der(csr_der).ok()?;
    let digest = sha2::Sha256::digest(csr.certification_request_info.subject_pki.raw);
    Some(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks the base64url CSR of a finalize request against the order's names
/// (lower-case) and the account key.
pub fn check(
    csr_b64: &str,
    order_names: &[String],
    account_key: &PublicJwk,
) -> Result<AcceptedCsr, Problem> {
    let der = URL_SAFE_NO_PAD
        .decode(csr_b64.trim_end_matches('='))
        .map_err(|_| Problem::bad_csr("csr is not base64url"))?;
    super::der::check_sequence(&der)
        .map_err(|why| Problem::bad_csr(format!("CSR is not DER: {why}")))?;
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| Problem::bad_csr(format!("CSR does not parse as PKCS#10: {e}")))?;
    if !rest.is_empty() {
        return Err(Problem::bad_csr(
            "CSR has trailing bytes after its DER encoding",
        ));
    }
    csr.verify_signature()
        .map_err(|_| Problem::bad_csr("CSR signature does not verify with its own key"))?;

    let info = &csr.certification_request_info;
    if let Some(problem) = key_problem(&info.subject_pki) {
        return Err(Problem::bad_csr(problem));
    }
    if account_key.same_key_as(&info.subject_pki) {
        return Err(Problem::bad_csr(
            "CSR uses the account key; the certificate needs a key of its own",
        ));
    }

    let mut names = BTreeSet::new();
    for cn in info.subject.iter_common_name() {
        let cn = cn
            .as_str()
            .map_err(|_| Problem::bad_csr("CSR common name is not a string"))?;
        // An address in the CN is compared in its canonical form.
        names.insert(match cn.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => cn.to_ascii_lowercase(),
        });
    }
    // Every extensionRequest is read: a CA other than ours (Vault) may honour
    // names in a second one, or in one we could not parse, so both are refused.
    let requests: Vec<_> = info
        .iter_attributes()
        .filter_map(|attr| match attr.parsed_attribute() {
            ParsedCriAttribute::ExtensionRequest(request) => Some(request),
            _ => None,
        })
        .collect();
    if requests.len() > 1 {
        return Err(Problem::bad_csr(
            "CSR has more than one extensionRequest attribute",
        ));
    }
    for extension in requests.iter().flat_map(|r| r.extensions.iter()) {
        match extension.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(dns) => {
                            names.insert(dns.to_ascii_lowercase());
                        }
                        GeneralName::IPAddress(bytes) => {
                            let ip = ip_from_bytes(bytes).ok_or_else(|| {
                                Problem::bad_csr("CSR has an IP address SAN of a wrong length")
                            })?;
                            names.insert(ip.to_string());
                        }
                        other => {
                            return Err(Problem::bad_csr(format!(
                                "CSR asks for a subject alternative name of a kind this order cannot cover: {other}"
                            )))
                        }
                    }
                }
            }
            ParsedExtension::BasicConstraints(bc) if bc.ca => {
                return Err(Problem::bad_csr("CSR asks for a CA certificate"));
            }
            ParsedExtension::ParseError { .. } | ParsedExtension::UnsupportedExtension { .. }
                if extension.oid == OID_X509_EXT_SUBJECT_ALT_NAME
                    || extension.oid == OID_X509_EXT_BASIC_CONSTRAINTS =>
            {
                return Err(Problem::bad_csr(format!(
                    "CSR extension {} does not parse",
                    extension.oid
                )));
            }
            _ => {}
        }
    }

    let wanted: BTreeSet<String> = order_names.iter().map(|n| n.to_ascii_lowercase()).collect();
    if names != wanted {
        let missing: Vec<_> = wanted.difference(&names).cloned().collect();
        let extra: Vec<_> = names.difference(&wanted).cloned().collect();
        let mut detail = String::from("CSR names must be exactly the order's identifiers");
        if !missing.is_empty() {
            detail.push_str(&format!("; missing: {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            detail.push_str(&format!("; not in the order: {}", extra.join(", ")));
        }
        return Err(Problem::bad_csr(detail));
    }
    Ok(AcceptedCsr {
        der,
        names: names.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::problem::ProblemType;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};
    use serde_json::json;

    fn csr(names: &[&str], cn: Option<&str>, key: &KeyPair) -> String {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let mut dn = DistinguishedName::new();
        if let Some(cn) = cn {
            dn.push(DnType::CommonName, cn);
        }
        params.distinguished_name = dn;
        URL_SAFE_NO_PAD.encode(params.serialize_request(key).unwrap().der())
    }

    fn other_account() -> PublicJwk {
        PublicJwk::parse(
            &json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([9u8; 32])}),
        )
        .unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_public_key_hash_is_that_of_the_keys_spki() {
        use rcgen::PublicKeyData;
        use sha2::Digest;
        let key = KeyPair::generate().unwrap();
        let der = URL_SAFE_NO_PAD
            .decode(csr(&["a.test"], None, &key))
            .unwrap();
        let expected: String = sha2::Sha256::digest(key.subject_public_key_info())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(public_key_sha256(&der), Some(expected));
        assert_eq!(public_key_sha256(b"not a CSR"), None);
    }

    #[test]
    fn accepts_exact_names_in_any_case_with_cn_among_them() {
        let key = KeyPair::generate().unwrap();
        let b64 = csr(&["A.test", "b.test"], Some("a.TEST"), &key);
        let accepted = check(&b64, &names(&["a.test", "b.test"]), &other_account()).unwrap();
        assert_eq!(accepted.names, names(&["a.test", "b.test"]));
    }

    #[test]
    fn refuses_missing_extra_names_and_a_stray_cn() {
        let key = KeyPair::generate().unwrap();
        let order = names(&["a.test", "b.test"]);
        for b64 in [
            csr(&["a.test"], None, &key),
            csr(&["a.test", "b.test", "c.test"], None, &key),
            csr(&["a.test", "b.test"], Some("c.test"), &key),
        ] {
            let p = check(&b64, &order, &other_account()).unwrap_err();
            assert_eq!(p.kind, ProblemType::BadCsr, "{}", p.detail);
        }
    }

    #[test]
    fn refuses_names_hidden_in_a_second_extension_request() {
        // SET { Extensions { Extension { subjectAltName, OCTET STRING {
        //   GeneralNames { dNSName "evil.test" } } } } }
        let mut second: Vec<u8> = vec![
            0x31, 0x18, 0x30, 0x16, 0x30, 0x14, 0x06, 0x03, 0x55, 0x1d, 0x11,
        ];
        second.extend([0x04, 0x0d, 0x30, 0x0b, 0x82, 0x09]);
        second.extend(b"evil.test");
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.distinguished_name = DistinguishedName::new();
        let attribute = rcgen::Attribute {
            oid: &[1, 2, 840, 113549, 1, 9, 14],
            values: second,
        };
        let der = params
            .serialize_request_with_attributes(&key, vec![attribute])
            .unwrap();
        let p = check(
            &URL_SAFE_NO_PAD.encode(der.der()),
            &names(&["a.test"]),
            &other_account(),
        )
        .unwrap_err();
        assert_eq!(p.kind, ProblemType::BadCsr);
        assert!(
            p.detail.contains("more than one extensionRequest"),
            "{}",
            p.detail
        );
    }

    #[test]
    fn refuses_a_csr_that_is_not_strict_der() {
        let key = KeyPair::generate().unwrap();
        let good = URL_SAFE_NO_PAD
            .decode(csr(&["a.test"], None, &key))
            .unwrap();
        let mut wrong_tag = good.clone();
        wrong_tag[0] = 0x31;
        let mut trailing = good.clone();
        trailing.push(0x00);
        // The outer length with a leading zero byte.
        let digits = usize::from(good[1] & 0x7f);
        assert!(
            good[1] & 0x80 != 0 && digits < 4,
            "a long-form outer length"
        );
        let mut padded = vec![0x30, good[1] + 1, 0x00];
        padded.extend(&good[2..]);
        for der in [wrong_tag, trailing, padded] {
            let p = check(
                &URL_SAFE_NO_PAD.encode(&der),
                &names(&["a.test"]),
                &other_account(),
            )
            .unwrap_err();
            assert_eq!(p.kind, ProblemType::BadCsr);
            assert!(p.detail.starts_with("CSR is not DER"), "{}", p.detail);
        }
        assert!(check(
            &URL_SAFE_NO_PAD.encode(&good),
            &names(&["a.test"]),
            &other_account()
        )
        .is_ok());
    }

    #[test]
    fn refuses_a_broken_signature() {
        let key = KeyPair::generate().unwrap();
        let mut der = URL_SAFE_NO_PAD
            .decode(csr(&["a.test"], None, &key))
            .unwrap();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        let p = check(
            &URL_SAFE_NO_PAD.encode(der),
            &names(&["a.test"]),
            &other_account(),
        )
        .unwrap_err();
        assert!(p.detail.contains("signature"), "{}", p.detail);
    }
}
