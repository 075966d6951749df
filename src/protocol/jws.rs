//! Flattened JWS (RFC 7515 §7.2.2) as RFC 8555 §6.2 constrains it.
//!
//! This module only parses and verifies; deciding which key is expected
//! (a `jwk` for newAccount, an account `kid` elsewhere) and consuming the
//! nonce happen in [`super::request`], which has the server state.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::Arc;

use josekit::jwk::Jwk;
use serde::Deserialize;
use serde_json::Value;

use super::jwk::PublicJwk;
use super::problem::{Problem, ProblemType};
use super::verifiers::{Verifier, Verifiers};

/// Signature algorithms accepted on ACME requests.
pub const ALGORITHMS: [&str; 4] = ["RS256", "ES256", "ES384", "EdDSA"];

/// The three members of a flattened JWS, still encoded: the request body,
/// and the external account binding inside a newAccount payload.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FlattenedJws {
    pub(crate) protected: String,
    pub(crate) payload: String,
    pub(crate) signature: String,
}

/// The protected header members RFC 8555 §6.2 defines.
#[derive(Debug, Deserialize)]
pub struct ProtectedHeader {
    pub alg: String,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub jwk: Option<Value>,
    #[serde(default)]
    pub kid: Option<String>,
    /// RFC 7515 §4.1.11: extensions the signer requires us to understand.
    /// ACME defines none, so any `crit` is refused.
    #[serde(default)]
    pub crit: Option<Value>,
}

/// Who signed: a key sent inline, or an account URL to look up.
#[derive(Debug, Clone)]
pub enum KeyRef {
    Jwk(PublicJwk),
    Kid(String),
}

/// A JWS whose structure and header are valid but whose signature has not
/// been checked yet (the key may still have to be looked up).
#[derive(Debug)]
pub struct ParsedJws {
    pub header: ProtectedHeader,
    pub nonce: String,
    pub url: String,
    pub key: KeyRef,
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, Problem> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Problem::malformed(format!("JWS {field} is not base64url without padding")))
}

/// The problem for an algorithm outside [`ALGORITHMS`], listing the allowed ones.
pub fn bad_algorithm(alg: &str) -> Problem {
    let mut p = Problem::new(
        ProblemType::BadSignatureAlgorithm,
        format!(
            "JWS algorithm {alg:?} is not accepted; use one of {}",
            ALGORITHMS.join(", ")
        ),
    );
    p.algorithms = Some(ALGORITHMS.iter().map(|a| a.to_string()).collect());
    p
}

impl ParsedJws {
    /// Parses the request body and checks everything that needs no state.
    pub fn parse(body: &[u8]) -> Result<Self, Problem> {
        Self::parse_with(body, true)
    }

    /// Parses a JWS carried in another one's payload (keyChange, RFC 8555
    /// §7.3.5). It has no nonce of its own: `nonce` is then empty and the
    /// caller refuses one that `header.nonce` shows was sent anyway.
    pub fn parse_nested(body: &[u8]) -> Result<Self, Problem> {
        Self::parse_with(body, false)
    }

    fn parse_with(body: &[u8], nonce_required: bool) -> Result<Self, Problem> {
        let jws: FlattenedJws = serde_json::from_slice(body).map_err(|e| {
            Problem::malformed(format!(
                "request body is not a flattened JWS JSON object: {e}"
            ))
        })?;
        let header_bytes = b64("protected header", &jws.protected)?;
        let header: ProtectedHeader = serde_json::from_slice(&header_bytes)
            .map_err(|e| Problem::malformed(format!("JWS protected header: {e}")))?;
        if !ALGORITHMS.contains(&header.alg.as_str()) {
            return Err(bad_algorithm(&header.alg));
        }
        if header.crit.is_some() {
            return Err(Problem::malformed(
                "JWS protected header lists crit extensions, which ACME does not define",
            ));
        }
        let key = match (&header.jwk, &header.kid) {
            (Some(jwk), None) => KeyRef::Jwk(PublicJwk::parse(jwk)?),
            (None, Some(kid)) => KeyRef::Kid(kid.clone()),
            (Some(_), Some(_)) => {
                return Err(Problem::malformed(
                    "JWS protected header has both jwk and kid; exactly one is allowed",
                ))
            }
            (None, None) => {
                return Err(Problem::malformed(
                    "JWS protected header has neither jwk nor kid",
                ))
            }
        };
        let nonce = match header.nonce.clone() {
            Some(nonce) => nonce,
            None if !nonce_required => String::new(),
            None => {
                return Err(Problem::new(
                    ProblemType::BadNonce,
                    "JWS protected header has no nonce",
                ))
            }
        };
        let url = header
            .url
            .clone()
            .ok_or_else(|| Problem::malformed("JWS protected header has no url"))?;
        let payload = b64("payload", &jws.payload)?;
        let signature = b64("signature", &jws.signature)?;
        let signing_input = format!("{}.{}", jws.protected, jws.payload).into_bytes();
        Ok(Self {
            header,
            nonce,
            url,
            key,
            payload,
            signing_input,
            signature,
        })
    }

    /// Verifies the signature with `key`, which must suit the header's
    /// `alg`. The key is made ready for verifying once and kept
    /// ([`Verifiers`]), so an account's later requests skip that work.
    pub fn verify(&self, key: &PublicJwk) -> Result<(), Problem> {
        let verifier =
            Verifiers::shared().get_or_make(&self.header.alg, key, || self.make_verifier(key))?;
        verifier
            .verify(&self.signing_input, &self.signature)
            .map_err(|_| Problem::malformed("JWS signature does not verify"))
    }

    /// A verifier of the header's `alg` over `key`.
    fn make_verifier(&self, key: &PublicJwk) -> Result<Verifier, Problem> {
        let jwk = Jwk::from_map(key.value.as_object().cloned().unwrap_or_default())
            .map_err(|e| Problem::new(ProblemType::BadPublicKey, format!("JWK: {e}")))?;
        let mismatch = |e: josekit::JoseError| {
            Problem::new(
                ProblemType::BadSignatureAlgorithm,
                format!(
                    "JWS algorithm {} does not fit the {} key: {e}",
                    self.header.alg,
                    key.kty()
                ),
            )
        };
        Ok(match self.header.alg.as_str() {
            "RS256" => Arc::new(
                josekit::jws::RS256
                    .verifier_from_jwk(&jwk)
                    .map_err(mismatch)?,
            ),
            "ES256" => Arc::new(
                josekit::jws::ES256
                    .verifier_from_jwk(&jwk)
                    .map_err(mismatch)?,
            ),
            "ES384" => Arc::new(
                josekit::jws::ES384
                    .verifier_from_jwk(&jwk)
                    .map_err(mismatch)?,
            ),
            "EdDSA" => Arc::new(
                josekit::jws::EdDSA
                    .verifier_from_jwk(&jwk)
                    .map_err(mismatch)?,
            ),
            other => return Err(bad_algorithm(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    fn body(header: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"protected": encode(&header), "payload": "", "signature": "AA"}))
            .unwrap()
    }

    #[test]
    fn refuses_none_and_hmac_with_the_allowed_list() {
        for alg in ["none", "HS256"] {
            let err = ParsedJws::parse(&body(
                json!({"alg": alg, "kid": "k", "nonce": "n", "url": "u"}),
            ))
            .unwrap_err();
            assert_eq!(err.kind, ProblemType::BadSignatureAlgorithm);
            assert_eq!(err.algorithms.as_ref().unwrap().len(), ALGORITHMS.len());
        }
    }

    #[test]
    fn needs_exactly_one_of_jwk_and_kid() {
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([7u8; 32])});
        let both = ParsedJws::parse(&body(
            json!({"alg": "EdDSA", "jwk": jwk, "kid": "k", "nonce": "n", "url": "u"}),
        ));
        assert_eq!(both.unwrap_err().kind, ProblemType::Malformed);
        let neither = ParsedJws::parse(&body(json!({"alg": "EdDSA", "nonce": "n", "url": "u"})));
        assert_eq!(neither.unwrap_err().kind, ProblemType::Malformed);
    }

    #[test]
    fn a_crit_header_is_refused() {
        let header = json!({"alg": "ES256", "kid": "k", "nonce": "n", "url": "u", "crit": ["exp"]});
        assert_eq!(
            ParsedJws::parse(&body(header)).unwrap_err().kind,
            ProblemType::Malformed
        );
    }

    #[test]
    fn a_missing_nonce_is_bad_nonce() {
        let err =
            ParsedJws::parse(&body(json!({"alg": "ES256", "kid": "k", "url": "u"}))).unwrap_err();
        assert_eq!(err.kind, ProblemType::BadNonce);
    }

    #[test]
    fn compact_or_garbage_bodies_are_malformed() {
        for b in [
            &b"a.b.c"[..],
            b"{}",
            b"{\"protected\":\"!\",\"payload\":\"\",\"signature\":\"\"}",
        ] {
            assert_eq!(
                ParsedJws::parse(b).unwrap_err().kind,
                ProblemType::Malformed
            );
        }
    }
}
