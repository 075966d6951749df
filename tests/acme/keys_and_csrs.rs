//! What an unauthenticated or hostile request can make certgate accept or
//! spend, against the built binary: RSA account keys with any exponent but
//! 65537 are refused as `badPublicKey` wherever a JWK is parsed (newAccount,
//! keyChange's new key, revocation by certificate key), a nonce we never
//! issued is refused before the signature is checked and a valid one is not
//! spent by a bad signature, and finalize refuses a CSR that is not strict
//! DER.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jws::JwsSigner;
use serde_json::{json, Value};

use certgate_testkit::raw_client::{b64, csr, Reply};
use certgate_testkit::served::Served;

/// A 2048-bit RSA key (exponent 65537) that signs RS256.
struct RsaKey {
    pair: josekit::jwk::alg::rsa::RsaKeyPair,
    jwk: Value,
}

impl RsaKey {
    fn generate() -> Self {
        let pair = josekit::jws::RS256.generate_key_pair(2048).unwrap();
        let jwk = Value::Object(pair.to_jwk_public_key().into());
        Self { pair, jwk }
    }

    /// This key's modulus with `exponent` in place of its own.
    fn jwk_with_exponent(&self, exponent: &[u8]) -> Value {
        let mut jwk = self.jwk.clone();
        jwk["e"] = json!(URL_SAFE_NO_PAD.encode(exponent));
        jwk
    }

    fn modulus(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(self.jwk["n"].as_str().unwrap())
            .unwrap()
    }

    /// A flattened JWS over `header` and `payload`, signed RS256.
    fn sign(&self, header: &Value, payload: &Value) -> Value {
        let protected = b64(&serde_json::to_vec(header).unwrap());
        let payload = b64(&serde_json::to_vec(payload).unwrap());
        let signer = josekit::jws::RS256
            .signer_from_jwk(&self.pair.to_jwk_key_pair())
            .unwrap();
        let signature = signer
            .sign(format!("{protected}.{payload}").as_bytes())
            .unwrap();
        json!({"protected": protected, "payload": payload, "signature": b64(&signature)})
    }
}

/// `n - 2`, big-endian.
fn minus_two(n: &[u8]) -> Vec<u8> {
    let mut out = n.to_vec();
    let mut borrow = 2u16;
    for byte in out.iter_mut().rev() {
        let value = u16::from(*byte);
        *byte = value.wrapping_sub(borrow) as u8;
        borrow = u16::from(value < borrow);
    }
    out
}

fn assert_bad_public_key(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 400, "{what}: {:?}", reply.json());
    assert_eq!(
        reply.problem_type(),
        "badPublicKey",
        "{what}: {:?}",
        reply.json()
    );
    let detail = reply.json()["detail"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(detail.contains("65537"), "{what}: {detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_keys_with_an_exponent_other_than_65537_are_refused() {
    let served = Served::start().await;
    let key = RsaKey::generate();
    let client = served.client().await;
    let new_account = client.url("newAccount");
    let exponents = [
        ("e=3", vec![3u8]),
        ("e=1", vec![1]),
        ("e=n-2", minus_two(&key.modulus())),
    ];
    let terms = json!({"termsOfServiceAgreed": true});

    for (what, e) in &exponents {
        let header = json!({"alg": "RS256", "jwk": key.jwk_with_exponent(e),
                            "nonce": client.nonce().await, "url": new_account});
        let reply = client
            .send_jws(&new_account, &key.sign(&header, &terms))
            .await;
        assert_bad_public_key(&reply, &format!("newAccount {what}"));
    }
    // The same modulus with 65537 makes an account.
    let header = json!({"alg": "RS256", "jwk": key.jwk,
                        "nonce": client.nonce().await, "url": new_account});
    let reply = client
        .send_jws(&new_account, &key.sign(&header, &terms))
        .await;
    assert_eq!(reply.status, 201, "e=65537: {:?}", reply.json());

    // keyChange to such a key, and revocation signed by one.
    let mut account = served.client().await;
    account.register().await;
    let key_change = account.url("keyChange");
    let revoke = account.url("revokeCert");
    for (what, e) in &exponents {
        let inner_header =
            json!({"alg": "RS256", "jwk": key.jwk_with_exponent(e), "url": key_change});
        let inner_payload =
            json!({"account": account.kid.as_deref().unwrap(), "oldKey": account.key.jwk});
        let inner = key.sign(&inner_header, &inner_payload);
        let reply = account.post(&key_change, Some(inner)).await;
        assert_bad_public_key(&reply, &format!("keyChange {what}"));

        let header = json!({"alg": "RS256", "jwk": key.jwk_with_exponent(e),
                            "nonce": client.nonce().await, "url": revoke});
        let payload = json!({"certificate": b64(b"not looked at")});
        let reply = client.send_jws(&revoke, &key.sign(&header, &payload)).await;
        assert_bad_public_key(&reply, &format!("revokeCert {what}"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_nonce_is_checked_before_the_signature_and_spent_only_after_it() {
    let served = Served::start().await;
    let key = RsaKey::generate();
    let client = served.client().await;
    let new_account = client.url("newAccount");
    let terms = json!({"termsOfServiceAgreed": true});
    let forged = |nonce: &str| {
        let header = json!({"alg": "RS256", "jwk": key.jwk, "nonce": nonce, "url": new_account});
        let mut jws = key.sign(&header, &terms);
        jws["signature"] = json!(b64(&[0x55; 256]));
        jws
    };

    // Never issued, and a signature that does not hold: the nonce decides.
    let reply = client
        .send_jws(&new_account, &forged("AAAAAAAAAAAAAAAAAAAAAA"))
        .await;
    assert_eq!(reply.problem_type(), "badNonce", "{:?}", reply.json());

    // Issued, and a signature that does not hold: refused, nonce not spent.
    let nonce = client.nonce().await;
    let reply = client.send_jws(&new_account, &forged(&nonce)).await;
    assert_eq!(reply.status, 400, "{:?}", reply.json());
    assert_ne!(reply.problem_type(), "badNonce", "{:?}", reply.json());
    let header = json!({"alg": "RS256", "jwk": key.jwk, "nonce": nonce, "url": new_account});
    let reply = client
        .send_jws(&new_account, &key.sign(&header, &terms))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    // And spent once it was.
    let reply = client
        .send_jws(&new_account, &key.sign(&header, &terms))
        .await;
    assert_eq!(reply.problem_type(), "badNonce", "{:?}", reply.json());
}

#[tokio::test(flavor = "multi_thread")]
async fn finalize_refuses_a_csr_that_is_not_strict_der() {
    let served = Served::start().await;
    let mut client = served.client().await;
    client.register().await;
    let names = ["der.lab.example"];
    let (_, order) = client.ready_order(&served.http01, &names).await;
    let finalize = order["finalize"].as_str().unwrap();
    let good = URL_SAFE_NO_PAD
        .decode(csr(&names, &rcgen::KeyPair::generate().unwrap()))
        .unwrap();

    let mut set_outer = good.clone();
    set_outer[0] = 0x31;
    let mut trailing = good.clone();
    trailing.extend([0x05, 0x00]);
    for (what, der) in [("a SET outer tag", set_outer), ("trailing bytes", trailing)] {
        let reply = client.post(finalize, Some(json!({"csr": b64(&der)}))).await;
        assert_eq!(reply.status, 400, "{what}: {:?}", reply.json());
        assert_eq!(reply.problem_type(), "badCSR", "{what}");
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.starts_with("CSR is not DER"), "{what}: {detail}");
    }
    // The order is still ready, and the same CSR in DER is taken.
    let reply = client
        .post(finalize, Some(json!({"csr": b64(&good)})))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
}
