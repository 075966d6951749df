//! Account public keys as JWKs: which ones we accept, their RFC 7638
//! thumbprint, and whether a certificate key is the same key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::problem::{Problem, ProblemType};

/// Smallest RSA modulus accepted for account keys and CSRs.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted: bigger keys only cost us CPU.
pub const MAX_RSA_BITS: usize = 8192;
/// The one RSA public exponent accepted, 65537, big-endian. As Boulder's key
/// policy: a small exponent is a known weakness, and a huge one makes every
/// signature check cost as much as a private-key operation.
pub const RSA_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];

/// Why an RSA public key (modulus and exponent, big-endian without leading
/// zeros) is not accepted, if it is not. Cheap, so it runs before any
/// signature is checked with the key.
pub fn rsa_key_problem(modulus: &[u8], exponent: &[u8]) -> Option<String> {
    let bits = bit_length(modulus);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        return Some(format!(
            "RSA key is {bits} bits; {MIN_RSA_BITS} to {MAX_RSA_BITS} are accepted"
        ));
    }
    (strip_zeros(exponent) != RSA_EXPONENT).then(|| "RSA public exponent must be 65537".to_owned())
}

/// A validated public JWK.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicJwk {
    /// The JWK as sent, with only its public members kept.
    pub value: Value,
    pub thumbprint: String,
}

fn member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, Problem> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_key(format!("JWK lacks the string member {name:?}")))
}

fn bad_key(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemType::BadPublicKey, detail)
}

fn decode(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(member(jwk, name)?)
        .map_err(|_| bad_key(format!("JWK member {name:?} is not base64url")))
}

/// Bits in a big-endian unsigned integer.
pub fn bit_length(bytes: &[u8]) -> usize {
    match bytes.iter().position(|&b| b != 0) {
        Some(first) => (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize,
        None => 0,
    }
}

/// The members RFC 7638 hashes, in lexicographic order, for each key type.
fn required_members(kty: &str) -> Option<&'static [&'static str]> {
    match kty {
        "EC" => Some(&["crv", "kty", "x", "y"]),
        "RSA" => Some(&["e", "kty", "n"]),
        "OKP" => Some(&["crv", "kty", "x"]),
        _ => None,
    }
}

impl PublicJwk {
    /// Accepts RSA (2048–8192 bits, exponent 65537), EC P-256/P-384 and
    /// Ed25519 public keys.
    pub fn parse(value: &Value) -> Result<Self, Problem> {
        let jwk = value
            .as_object()
            .ok_or_else(|| Problem::malformed("jwk is not a JSON object"))?;
        if jwk.contains_key("d") {
            return Err(bad_key("JWK contains private key material"));
        }
        let kty = member(jwk, "kty")?;
        let members = required_members(kty)
            .ok_or_else(|| bad_key(format!("unsupported key type {kty:?}")))?;
        match kty {
            "RSA" => {
                // RFC 7518 §6.3.1: no leading zero octets, so that one key
                // has one encoding and one thumbprint (one account).
                let (n, e) = (decode(jwk, "n")?, decode(jwk, "e")?);
                if n.first() == Some(&0) || e.first() == Some(&0) || e.is_empty() {
                    return Err(bad_key("RSA n and e must have no leading zero octets"));
                }
                if let Some(problem) = rsa_key_problem(&n, &e) {
                    return Err(bad_key(problem));
                }
            }
            "EC" => {
                let (crv, len) = match member(jwk, "crv")? {
                    "P-256" => ("P-256", 32),
                    "P-384" => ("P-384", 48),
                    other => return Err(bad_key(format!("unsupported EC curve {other:?}"))),
                };
                for coord in ["x", "y"] {
                    if decode(jwk, coord)?.len() != len {
                        return Err(bad_key(format!(
                            "{crv} coordinate {coord} has the wrong length"
                        )));
                    }
                }
            }
            _ => {
                if member(jwk, "crv")? != "Ed25519" || decode(jwk, "x")?.len() != 32 {
                    return Err(bad_key("only Ed25519 OKP keys are accepted"));
                }
            }
        }
        let kept: Map<String, Value> = members
            .iter()
            .map(|&m| (m.to_owned(), jwk[m].clone()))
            .collect();
        // serde_json's Map is ordered by key, which is exactly RFC 7638's
        // canonical form: required members, sorted, no whitespace.
        let canonical = serde_json::to_vec(&kept).expect("a JSON map serializes");
        let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(&canonical));
        Ok(Self {
            value: Value::Object(kept),
            thumbprint,
        })
    }

    pub fn kty(&self) -> &str {
        self.value["kty"].as_str().unwrap_or_default()
    }

    /// The key's raw public material as it appears in an X.509
    /// SubjectPublicKeyInfo: the EC point, the Ed25519 key, or RSA (n, e).
    fn material(&self) -> Option<KeyMaterial> {
        let map = self.value.as_object()?;
        let get = |m: &str| URL_SAFE_NO_PAD.decode(map.get(m)?.as_str()?).ok();
        Some(match self.kty() {
            "EC" => {
                let mut point = vec![0x04];
                point.extend(get("x")?);
                point.extend(get("y")?);
                KeyMaterial::Raw(point)
            }
            "OKP" => KeyMaterial::Raw(get("x")?),
            _ => KeyMaterial::Rsa {
                n: strip_zeros(&get("n")?).to_vec(),
                e: strip_zeros(&get("e")?).to_vec(),
            },
        })
    }

    /// True when the X.509 public key is this JWK's key.
    pub fn same_key_as(&self, spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> bool {
        use x509_parser::public_key::PublicKey;
        match (self.material(), spki.parsed()) {
            (Some(KeyMaterial::Rsa { n, e }), Ok(PublicKey::RSA(rsa))) => {
                strip_zeros(rsa.modulus) == n && strip_zeros(rsa.exponent) == e
            }
            (Some(KeyMaterial::Raw(raw)), _) => spki.subject_public_key.data.as_ref() == raw,
            _ => false,
        }
    }
}

enum KeyMaterial {
    Raw(Vec<u8>),
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7638_example_thumbprint() {
        // The RSA key of RFC 7638 §3.1 and the thumbprint given there.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let parsed = PublicJwk::parse(&jwk).unwrap();
        assert_eq!(
            parsed.thumbprint,
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert!(parsed.value.get("alg").is_none());
    }

    #[test]
    fn refuses_small_rsa_unknown_curves_and_private_keys() {
        let small = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode([0xffu8; 128]), "e": "AQAB"});
        assert_eq!(
            PublicJwk::parse(&small).unwrap_err().kind,
            ProblemType::BadPublicKey
        );
        let p521 = json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"});
        assert_eq!(
            PublicJwk::parse(&p521).unwrap_err().kind,
            ProblemType::BadPublicKey
        );
        let private = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1u8; 32]), "d": "AA"});
        assert_eq!(
            PublicJwk::parse(&private).unwrap_err().kind,
            ProblemType::BadPublicKey
        );
    }

    #[test]
    fn one_rsa_key_has_one_encoding() {
        let mut n = vec![0u8];
        n.extend([0xc5u8; 256]);
        let padded = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB"});
        assert_eq!(
            PublicJwk::parse(&padded).unwrap_err().kind,
            ProblemType::BadPublicKey
        );
        let plain = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n[1..]), "e": "AQAB"});
        assert!(PublicJwk::parse(&plain).is_ok());
    }

    #[test]
    fn rsa_exponents_other_than_65537_are_refused() {
        let n = [0xc5u8; 256];
        let mut n_minus_2 = n;
        n_minus_2[255] -= 2;
        for e in [
            &[3u8][..],
            &[1],
            &[0x01, 0x00, 0x03],
            &[0x01, 0x00, 0x00, 0x01],
            &n_minus_2,
        ] {
            let jwk = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)});
            let problem = PublicJwk::parse(&jwk).unwrap_err();
            assert_eq!(problem.kind, ProblemType::BadPublicKey, "e = {e:?}");
            assert!(problem.detail.contains("65537"), "{}", problem.detail);
        }
        let jwk = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": "AQAB"});
        assert!(PublicJwk::parse(&jwk).is_ok());
    }

    #[test]
    fn bit_length_counts_from_the_first_set_bit() {
        assert_eq!(bit_length(&[0, 0x01]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(bit_length(&[]), 0);
    }
}
