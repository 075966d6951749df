//! JWS bodies built from structured input: headers that parse, keys that
//! are real, signatures that verify unless the input spoils them. Byte
//! mutation of a signed body almost never keeps it signed, so this is how
//! the fuzzer reaches the checks after the signature, and it holds the
//! parser to an oracle: a body signed as RFC 8555 §6.2 asks is accepted,
//! and one whose signature was changed is refused.

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use certgate::protocol::jws::{KeyRef, ParsedJws};
use josekit::jwk::alg::ec::EcCurve;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jwk::Jwk;
use josekit::jws::{EdDSA, JwsSigner, ES256, RS256};
use serde_json::{Map, Value};

/// The header's `alg`: one ACME accepts, one it refuses, or any text.
#[derive(Arbitrary, Debug, Clone)]
pub enum Alg {
    Es256,
    Es384,
    EdDsa,
    Rs256,
    None,
    Hs256,
    Other(String),
}

impl Alg {
    fn name(&self) -> &str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Rs256 => "RS256",
            Alg::None => "none",
            Alg::Hs256 => "HS256",
            Alg::Other(text) => text,
        }
    }
}

/// The key the body carries and, for the two quick to sign with, signs with.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChoice {
    P256,
    Ed25519,
    /// Carried only: signing with it per input would make the target slow.
    P384,
    Rsa2048,
}

/// How the header names the signer.
#[derive(Arbitrary, Debug, Clone)]
pub enum Carry {
    Jwk,
    Kid(String),
    Both(String),
    Neither,
}

/// What happens to the signature after signing.
#[derive(Arbitrary, Debug, Clone)]
pub enum Spoil {
    Keep,
    FlipBit(u16),
    Truncate(u8),
    Replace(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
pub struct Input {
    pub alg: Alg,
    pub key: KeyChoice,
    pub carry: Carry,
    pub nonce: Option<String>,
    pub url: Option<String>,
    pub crit: Option<Vec<String>>,
    /// More header members, with values of any JSON kind.
    pub extra: Vec<(String, ExtraValue)>,
    pub payload: Vec<u8>,
    pub spoil: Spoil,
    /// Read as keyChange's inner JWS, which has no nonce.
    pub nested: bool,
}

#[derive(Arbitrary, Debug, Clone)]
pub enum ExtraValue {
    Text(String),
    Number(i64),
    Flag(bool),
    Null,
}

struct Keys {
    p256: (Jwk, Box<dyn JwsSigner + Send + Sync>),
    ed25519: (Jwk, Box<dyn JwsSigner + Send + Sync>),
    p384: Jwk,
    rsa: Jwk,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let p256 = ES256.generate_key_pair().expect("P-256 key");
        let ed = EdDSA
            .generate_key_pair(EdCurve::Ed25519)
            .expect("Ed25519 key");
        let p384 = josekit::jwk::alg::ec::EcKeyPair::generate(EcCurve::P384).expect("P-384 key");
        let rsa = RS256.generate_key_pair(2048).expect("RSA key");
        Keys {
            p256: (
                p256.to_jwk_public_key(),
                Box::new(
                    ES256
                        .signer_from_jwk(&p256.to_jwk_key_pair())
                        .expect("signer"),
                ),
            ),
            ed25519: (
                ed.to_jwk_public_key(),
                Box::new(
                    EdDSA
                        .signer_from_jwk(&ed.to_jwk_key_pair())
                        .expect("signer"),
                ),
            ),
            p384: p384.to_jwk_public_key(),
            rsa: rsa.to_jwk_public_key(),
        }
    })
}

/// Members the protected header defines; extra members never repeat them.
const DEFINED: [&str; 6] = ["alg", "nonce", "url", "jwk", "kid", "crit"];

pub fn run(input: Input) {
    let keys = keys();
    let (jwk, signer): (&Jwk, Option<&(dyn JwsSigner + Send + Sync)>) = match input.key {
        KeyChoice::P256 => (&keys.p256.0, Some(keys.p256.1.as_ref())),
        KeyChoice::Ed25519 => (&keys.ed25519.0, Some(keys.ed25519.1.as_ref())),
        KeyChoice::P384 => (&keys.p384, None),
        KeyChoice::Rsa2048 => (&keys.rsa, None),
    };
    let jwk_value = Value::Object(jwk.as_ref().clone());
    let mut header = Map::new();
    header.insert("alg".into(), Value::String(input.alg.name().to_owned()));
    match &input.carry {
        Carry::Jwk => {
            header.insert("jwk".into(), jwk_value);
        }
        Carry::Kid(kid) => {
            header.insert("kid".into(), Value::String(kid.clone()));
        }
        Carry::Both(kid) => {
            header.insert("jwk".into(), jwk_value);
            header.insert("kid".into(), Value::String(kid.clone()));
        }
        Carry::Neither => {}
    }
    if let Some(nonce) = &input.nonce {
        header.insert("nonce".into(), Value::String(nonce.clone()));
    }
    if let Some(url) = &input.url {
        header.insert("url".into(), Value::String(url.clone()));
    }
    if let Some(crit) = &input.crit {
        header.insert(
            "crit".into(),
            crit.iter().cloned().map(Value::String).collect(),
        );
    }
    for (name, value) in &input.extra {
        if DEFINED.contains(&name.as_str()) {
            continue;
        }
        let value = match value {
            ExtraValue::Text(text) => Value::String(text.clone()),
            ExtraValue::Number(n) => Value::from(*n),
            ExtraValue::Flag(b) => Value::Bool(*b),
            ExtraValue::Null => Value::Null,
        };
        header.insert(name.clone(), value);
    }
    let protected = URL_SAFE_NO_PAD.encode(Value::Object(header).to_string());
    let payload = URL_SAFE_NO_PAD.encode(&input.payload);
    let signing_input = format!("{protected}.{payload}");
    let signs_as_the_header_says = matches!(
        (&input.alg, input.key),
        (Alg::Es256, KeyChoice::P256) | (Alg::EdDsa, KeyChoice::Ed25519)
    );
    let mut signature = match signer {
        Some(signer) if signs_as_the_header_says => signer
            .sign(signing_input.as_bytes())
            .expect("signing never fails"),
        _ => Vec::new(),
    };
    let spoiled = match &input.spoil {
        Spoil::Keep => false,
        Spoil::FlipBit(at) if !signature.is_empty() => {
            let at = usize::from(*at);
            let len = signature.len();
            signature[(at / 8) % len] ^= 1 << (at % 8);
            true
        }
        Spoil::FlipBit(_) => false,
        Spoil::Truncate(by) => {
            let keep = signature.len().saturating_sub(usize::from(*by).max(1));
            signature.truncate(keep);
            true
        }
        Spoil::Replace(bytes) => {
            signature = bytes.clone();
            true
        }
    };
    let body = serde_json::json!({
        "protected": protected,
        "payload": payload,
        "signature": URL_SAFE_NO_PAD.encode(&signature),
    })
    .to_string();
    let parsed = if input.nested {
        ParsedJws::parse_nested(body.as_bytes())
    } else {
        ParsedJws::parse(body.as_bytes())
    };
    let well_formed = signs_as_the_header_says
        && matches!(input.carry, Carry::Jwk)
        && (input.nested || input.nonce.is_some())
        && input.url.is_some()
        && input.crit.is_none();
    let verified = match &parsed {
        Ok(jws) => match &jws.key {
            KeyRef::Jwk(key) => jws.verify(key).is_ok(),
            KeyRef::Kid(_) => false,
        },
        Err(_) => false,
    };
    if well_formed {
        let jws = parsed
            .as_ref()
            .expect("a body signed as RFC 8555 asks parses");
        assert_eq!(jws.payload, input.payload);
        assert_eq!(verified, !spoiled, "spoiled: {spoiled}");
    } else if signs_as_the_header_says && spoiled {
        assert!(!verified, "a spoiled signature verified");
    }
}
