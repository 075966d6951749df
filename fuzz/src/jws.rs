//! Flattened JWS request bodies and the JWKs they carry.

use certgate::protocol::jwk::PublicJwk;
use certgate::protocol::jws::{KeyRef, ParsedJws};

/// A request body as the signed-request extractor reads it: parsed with
/// the key policy, and verified when it carries its key inline (newAccount
/// and revokeCert by certificate key); then as keyChange's inner JWS.
pub fn body(data: &[u8]) {
    if let Ok(jws) = ParsedJws::parse(data) {
        if let KeyRef::Jwk(key) = &jws.key {
            let _ = jws.verify(key);
        }
    }
    if let Ok(jws) = ParsedJws::parse_nested(data) {
        if let KeyRef::Jwk(key) = &jws.key {
            let _ = jws.verify(key);
        }
    }
}

/// A JWK as newAccount, keyChange and the EAB payload carry it. What is
/// kept of an accepted key parses again to the same key and thumbprint:
/// the thumbprint names the account, so it must not depend on members the
/// policy drops or on how the JSON was written.
pub fn jwk(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(key) = PublicJwk::parse(&value) else {
        return;
    };
    let again = PublicJwk::parse(&key.value).expect("a kept JWK parses again");
    assert_eq!(again.thumbprint, key.thumbprint);
    assert_eq!(again.value, key.value);
    let rewritten = serde_json::to_vec_pretty(&value).expect("JSON values serialize");
    let reread: serde_json::Value = serde_json::from_slice(&rewritten).expect("reparses");
    let same = PublicJwk::parse(&reread).expect("the same JWK, written otherwise, parses");
    assert_eq!(same.thumbprint, key.thumbprint);
}
