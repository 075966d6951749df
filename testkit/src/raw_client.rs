//! A deliberately low-level ACME client: it signs whatever protected header
//! and payload a test gives it, so tests can send the malformed, replayed and
//! mis-signed requests that a well-behaved client library never would.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use josekit::jws::JwsSigner;
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};

use super::http01::Http01Responder;

/// An account key: P-256, usable both for JWS and (through rcgen) for CSRs.
pub struct AccountKey {
    pub pkcs8_der: Vec<u8>,
    pub jwk: Value,
}

impl AccountKey {
    pub fn generate() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let pkcs8_der = key.serialize_der();
        let pair = EcKeyPair::from_der(&pkcs8_der, Some(EcCurve::P256)).unwrap();
        let jwk = Value::Object(josekit::jwk::KeyPair::to_jwk_public_key(&pair).into());
        Self { pkcs8_der, jwk }
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        josekit::jws::ES256
            .signer_from_der(&self.pkcs8_der)
            .unwrap()
            .sign(input)
            .unwrap()
    }

    /// The same key as an rcgen key pair, for a CSR that reuses the account key.
    pub fn rcgen(&self) -> rcgen::KeyPair {
        rcgen::KeyPair::try_from(self.pkcs8_der.as_slice()).unwrap()
    }
}

/// A response, read completely.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem type without the ACME URN prefix.
    pub fn problem_type(&self) -> String {
        self.json()["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("urn:ietf:params:acme:error:")
            .to_owned()
    }
}

/// The challenge of type `kind` in an authorization object; panics naming
/// the authorization when it offers none.
pub fn challenge_of<'a>(authz: &'a Value, kind: &str) -> &'a Value {
    authz["challenges"]
        .as_array()
        .unwrap_or_else(|| panic!("no challenges: {authz}"))
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} challenge offered: {authz}"))
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A finalize `csr` (base64url DER) for `names` as SANs, with an empty subject.
pub fn csr(names: &[&str], key: &rcgen::KeyPair) -> String {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    b64(params.serialize_request(key).unwrap().der())
}

pub struct RawClient {
    pub http: reqwest::Client,
    pub directory: Value,
    pub key: AccountKey,
    pub kid: Option<String>,
}

/// An HTTPS client that trusts `root_pem` (certgate's root): for a test's
/// GETs of `/metrics`, `/status` and the like, and under [`RawClient`].
pub fn https_trusting(root_pem: &std::path::Path) -> reqwest::Client {
    let root = std::fs::read(root_pem).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&root).unwrap())
        .build()
        .unwrap()
}

impl RawClient {
    /// A client of the server whose directory is at `directory_url`, trusting `root_pem`.
    pub async fn new(directory_url: &str, root_pem: &std::path::Path) -> Self {
        let http = https_trusting(root_pem);
        let directory = http
            .get(directory_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            http,
            directory,
            key: AccountKey::generate(),
            kid: None,
        }
    }

    /// [`RawClient::new`] with its account registered.
    pub async fn registered(directory_url: &str, root_pem: &std::path::Path) -> Self {
        let mut client = Self::new(directory_url, root_pem).await;
        client.register().await;
        client
    }

    pub fn url(&self, name: &str) -> String {
        self.directory[name].as_str().unwrap().to_owned()
    }

    pub async fn nonce(&self) -> String {
        match self.try_nonce().await.unwrap() {
            Ok(nonce) => nonce,
            Err(reply) => panic!("newNonce answered {} without a nonce", reply.status),
        }
    }

    /// `GET newNonce`, read completely: `204` with the nonce in its
    /// `Replay-Nonce`, or the problem when none could be issued.
    pub async fn new_nonce_reply(&self) -> Reply {
        let reply = self.http.get(self.url("newNonce")).send().await.unwrap();
        Reply {
            status: reply.status().as_u16(),
            headers: reply.headers().clone(),
            body: reply.bytes().await.unwrap().to_vec(),
        }
    }

    /// `HEAD newNonce`: the nonce, or the answer that carried none (a
    /// `503` while the database is out of reach).
    async fn try_nonce(&self) -> Result<Result<String, Reply>, reqwest::Error> {
        let reply = self.http.head(self.url("newNonce")).send().await?;
        Ok(match reply.headers().get("replay-nonce") {
            Some(nonce) => Ok(nonce.to_str().unwrap().to_owned()),
            None => Err(Reply {
                status: reply.status().as_u16(),
                headers: reply.headers().clone(),
                body: Vec::new(),
            }),
        })
    }

    /// A flattened JWS over `header` and `payload`, signed with the account key.
    pub fn jws(&self, header: &Value, payload: &[u8]) -> Value {
        let protected = b64(&serde_json::to_vec(header).unwrap());
        let payload = b64(payload);
        let signature = self.key.sign(format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": b64(&signature)})
    }

    /// The protected header a correct client would send to `url`.
    pub async fn header(&self, url: &str) -> Value {
        self.header_with_nonce(url, &self.nonce().await)
    }

    /// The protected header for `url` with `nonce`, which the test got
    /// wherever it chose (another replica, an earlier request).
    pub fn header_with_nonce(&self, url: &str, nonce: &str) -> Value {
        let mut header = json!({"alg": "ES256", "nonce": nonce, "url": url});
        match &self.kid {
            Some(kid) => header["kid"] = json!(kid),
            None => header["jwk"] = self.key.jwk.clone(),
        }
        header
    }

    pub async fn send(&self, url: &str, content_type: &str, body: Vec<u8>) -> Reply {
        self.try_send(url, content_type, body).await.unwrap()
    }

    /// [`RawClient::send`] that returns a failed connection instead of
    /// panicking, for tests whose server goes away mid-request.
    pub async fn try_send(
        &self,
        url: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Reply, reqwest::Error> {
        let reply = self
            .http
            .post(url)
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await?;
        Ok(Reply {
            status: reply.status().as_u16(),
            headers: reply.headers().clone(),
            body: reply.bytes().await?.to_vec(),
        })
    }

    pub async fn send_jws(&self, url: &str, jws: &Value) -> Reply {
        self.send(
            url,
            "application/jose+json",
            serde_json::to_vec(jws).unwrap(),
        )
        .await
    }

    /// A correct request: `payload` JSON, or POST-as-GET when `None`.
    pub async fn post(&self, url: &str, payload: Option<Value>) -> Reply {
        self.try_post(url, payload).await.unwrap()
    }

    /// [`RawClient::post`] that returns a failed connection instead of
    /// panicking.
    pub async fn try_post(
        &self,
        url: &str,
        payload: Option<Value>,
    ) -> Result<Reply, reqwest::Error> {
        let nonce = match self.try_nonce().await? {
            Ok(nonce) => nonce,
            Err(refused) => return Ok(refused),
        };
        let header = self.header_with_nonce(url, &nonce);
        let payload = payload
            .map(|p| serde_json::to_vec(&p).unwrap())
            .unwrap_or_default();
        let jws = serde_json::to_vec(&self.jws(&header, &payload)).unwrap();
        self.try_send(url, "application/jose+json", jws).await
    }

    /// Registers the account and remembers its URL as `kid`.
    pub async fn register(&mut self) -> Reply {
        let reply = self
            .post(
                &self.url("newAccount"),
                Some(json!({"termsOfServiceAgreed": true})),
            )
            .await;
        assert_eq!(reply.status, 201, "newAccount: {:?}", reply.json());
        self.kid = Some(reply.header("location").unwrap().to_owned());
        reply
    }

    /// Creates an order for `names` (IP addresses become `ip` identifiers)
    /// and returns (order URL, order JSON).
    pub async fn new_order(&self, names: &[&str]) -> (String, Value) {
        let identifiers: Vec<Value> = names
            .iter()
            .map(|n| {
                let kind = if n.parse::<std::net::IpAddr>().is_ok() {
                    "ip"
                } else {
                    "dns"
                };
                json!({"type": kind, "value": n})
            })
            .collect();
        let reply = self
            .post(
                &self.url("newOrder"),
                Some(json!({"identifiers": identifiers})),
            )
            .await;
        assert_eq!(reply.status, 201, "newOrder: {:?}", reply.json());
        (reply.header("location").unwrap().to_owned(), reply.json())
    }

    /// Orders `name`, lets `answer` set up the HTTP-01 responder with the
    /// token and key authorization, asks for validation and returns the
    /// challenge once it is no longer pending or processing (20 s at most).
    pub async fn attempt_http01(&self, name: &str, answer: impl FnOnce(&str, &str)) -> Value {
        let (_, order) = self.new_order(&[name]).await;
        let authz = self
            .post(order["authorizations"][0].as_str().unwrap(), None)
            .await
            .json();
        let challenge = challenge_of(&authz, "http-01").clone();
        let token = challenge["token"].as_str().unwrap();
        answer(token, &format!("{token}.{}", self.thumbprint()));
        self.answer_challenge(challenge["url"].as_str().unwrap())
            .await
    }

    /// Tells the server the challenge at `url` is ready (`{}`) and returns
    /// it once it is no longer pending or processing (20 s at most).
    pub async fn answer_challenge(&self, url: &str) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut reply = self.post(url, Some(json!({}))).await.json();
        while reply["status"] == "processing" || reply["status"] == "pending" {
            assert!(
                tokio::time::Instant::now() < deadline,
                "challenge still {} after 20 s: {reply}",
                reply["status"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            reply = self.post(url, None).await.json();
        }
        reply
    }

    /// Finalizes `order` with a CSR for `names` under a fresh P-256 key.
    pub async fn finalize(&self, order: &Value, names: &[&str]) -> Reply {
        self.finalize_with_key(order, names).await.0
    }

    /// [`RawClient::finalize`], also returning the certificate's key.
    pub async fn finalize_with_key(
        &self,
        order: &Value,
        names: &[&str],
    ) -> (Reply, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let reply = self
            .post(
                order["finalize"].as_str().unwrap(),
                Some(json!({"csr": csr(names, &key)})),
            )
            .await;
        (reply, key)
    }

    /// Creates an order for `names` and answers each http-01 challenge
    /// through `http01`; returns (order URL, order JSON) once it is ready.
    pub async fn ready_order(&self, http01: &Http01Responder, names: &[&str]) -> (String, Value) {
        let (order_url, order) = self.new_order(names).await;
        for authz_url in order["authorizations"].as_array().unwrap() {
            let authz = self.post(authz_url.as_str().unwrap(), None).await.json();
            let challenge = challenge_of(&authz, "http-01");
            let token = challenge["token"].as_str().unwrap();
            http01.serve(token, &format!("{token}.{}", self.thumbprint()));
            let reply = self
                .post(challenge["url"].as_str().unwrap(), Some(json!({})))
                .await;
            assert_eq!(reply.json()["status"], "valid", "{:?}", reply.json());
        }
        let order = self.post(&order_url, None).await.json();
        assert_eq!(order["status"], "ready");
        (order_url, order)
    }

    /// A certificate for `names`: an order validated over http-01, finalized
    /// with a fresh P-256 key and downloaded. Returns the PEM chain served.
    pub async fn issue(&self, http01: &Http01Responder, names: &[&str]) -> String {
        self.issue_with_key(http01, names).await.0
    }

    /// [`RawClient::issue`], also returning the certificate's key.
    pub async fn issue_with_key(
        &self,
        http01: &Http01Responder,
        names: &[&str],
    ) -> (String, rcgen::KeyPair) {
        let (order_url, order) = self.ready_order(http01, names).await;
        let (reply, key) = self.finalize_with_key(&order, names).await;
        assert_eq!(reply.status, 200, "finalize: {:?}", reply.json());
        let order = self.wait_for_order(&order_url, &["valid", "invalid"]).await;
        assert_eq!(order["status"], "valid", "{order}");
        let download = self
            .post(order["certificate"].as_str().unwrap(), None)
            .await;
        assert_eq!(download.status, 200, "download: {:?}", download.json());
        let chain = String::from_utf8(download.body).expect("a PEM chain is text");
        (chain, key)
    }

    /// Polls the order until its status is one of `statuses` (20 s at most).
    pub async fn wait_for_order(&self, order_url: &str, statuses: &[&str]) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let order = self.post(order_url, None).await.json();
            if statuses.iter().any(|s| order["status"] == *s) {
                return order;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order still {} after 20 s: {order}",
                order["status"]
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn thumbprint(&self) -> String {
        // RFC 7638 for an EC key: crv, kty, x, y in this order.
        let jwk = &self.key.jwk;
        let canonical = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap(),
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap()
        );
        use sha2::Digest;
        b64(&sha2::Sha256::digest(canonical.as_bytes()))
    }
}
