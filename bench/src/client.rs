//! One load client: an ACME account that runs full issuances, one after the
//! other, the way golang.org/x/crypto/acme (the library inside cert-manager)
//! does: newOrder, the authorization, the HTTP-01 challenge answered, the
//! authorization waited for, finalize, the order waited for, the
//! certificate downloaded. Nonces come from the previous response, as real
//! clients keep them; a `badNonce` is retried once with the fresh one.
//!
//! Every failure is a [`Failure`] named by its problem type, so a run can
//! count them instead of stopping at the first.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::header::{CONTENT_TYPE, LOCATION, RETRY_AFTER};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use certgate_testkit::http01::Http01Responder;

/// Longest one request may take: a server that stops answering (Pebble
/// does under load) shows as `timeout` failures and the run still ends.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a flow waits for an authorization or order to leave
/// `pending`/`processing`.
const POLL_LIMIT: Duration = Duration::from_secs(30);
/// Pause between polls when the server sends no `Retry-After`.
const POLL_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between polls, whatever `Retry-After` says.
const MAX_POLL_PAUSE: Duration = Duration::from_secs(1);

/// Why a flow failed, as counted in the report: the ACME problem type
/// (without its URN prefix), or what went wrong where there was none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Failure(pub String);

impl Failure {
    fn new(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}

/// A response, read completely.
struct Reply {
    status: u16,
    location: Option<String>,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The problem type of an error response, or the status code.
    fn failure(&self, step: &str) -> Failure {
        match self.json()["type"].as_str() {
            Some(kind) => Failure::new(kind.trim_start_matches("urn:ietf:params:acme:error:")),
            None => Failure::new(format!("{step}: HTTP {}", self.status)),
        }
    }
}

/// The problem type inside a failed authorization or order, if it says one.
fn failure_in(object: &Value, what: &str) -> Failure {
    let problem = match object["error"]["type"].as_str() {
        Some(kind) => Some(kind),
        None => object["challenges"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|c| c["error"]["type"].as_str()),
    };
    match problem {
        Some(kind) => Failure::new(kind.trim_start_matches("urn:ietf:params:acme:error:")),
        None => Failure::new(format!("{what} {}", object["status"])),
    }
}

/// A P-256 account key, signing with ring.
pub struct AccountKey {
    pair: EcdsaKeyPair,
    /// The public key as a JWK, as newAccount sends it.
    pub jwk: Value,
    /// Its RFC 7638 thumbprint.
    pub thumbprint: String,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl AccountKey {
    pub fn generate() -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("generating a P-256 key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("reading the P-256 key"))?;
        // The uncompressed point: 0x04, x, y.
        let point = pair.public_key().as_ref();
        let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
        // RFC 7638: the required members, sorted, no whitespace.
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        Ok(Self {
            pair,
            jwk: json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}),
            thumbprint: b64(&Sha256::digest(canonical.as_bytes())),
        })
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), input)
            .expect("ECDSA signing does not fail")
            .as_ref()
            .to_vec()
    }
}

/// One account against one directory, with the nonce it holds.
pub struct Client {
    http: reqwest::Client,
    directory: Value,
    key: AccountKey,
    kid: Option<String>,
    nonce: Option<String>,
}

impl Client {
    /// A client of the directory at `directory_url`, whose TLS certificate
    /// chains to `root_pem` (or is not checked at all when `None`), with a
    /// registered account.
    pub async fn register(directory_url: &str, root_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .timeout(REQUEST_TIMEOUT);
        let builder = match root_pem {
            Some(pem) => builder.add_root_certificate(reqwest::Certificate::from_pem(pem)?),
            None => builder.danger_accept_invalid_certs(true),
        };
        let http = builder.build()?;
        let directory = http.get(directory_url).send().await?.json().await?;
        let mut client = Self {
            http,
            directory,
            key: AccountKey::generate()?,
            kid: None,
            nonce: None,
        };
        let reply = client
            .post(
                &client.url("newAccount")?,
                Some(json!({"termsOfServiceAgreed": true})),
            )
            .await
            .map_err(|f| anyhow::anyhow!("newAccount: {}", f.0))?;
        if reply.status != 201 && reply.status != 200 {
            anyhow::bail!("newAccount: {}", reply.failure("newAccount").0);
        }
        client.kid = Some(
            reply
                .location
                .ok_or_else(|| anyhow::anyhow!("newAccount answered without Location"))?,
        );
        Ok(client)
    }

    fn url(&self, name: &str) -> anyhow::Result<String> {
        self.directory[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("the directory has no {name}"))
    }

    async fn fresh_nonce(&self) -> Result<String, Failure> {
        let url = self
            .url("newNonce")
            .map_err(|e| Failure::new(e.to_string()))?;
        let reply = self.http.head(url).send().await.map_err(transport)?;
        reply
            .headers()
            .get("replay-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| Failure::new("newNonce: no Replay-Nonce"))
    }

    /// A JWS POST of `payload` (POST-as-GET when `None`); a `badNonce` is
    /// sent again once with the nonce it carried.
    async fn post(&mut self, url: &str, payload: Option<Value>) -> Result<Reply, Failure> {
        let payload = payload.map_or_else(Vec::new, |p| p.to_string().into_bytes());
        let mut reply = self.post_once(url, &payload).await?;
        if reply.status == 400 && reply.failure("").0 == "badNonce" {
            reply = self.post_once(url, &payload).await?;
        }
        Ok(reply)
    }

    async fn post_once(&mut self, url: &str, payload: &[u8]) -> Result<Reply, Failure> {
        let nonce = match self.nonce.take() {
            Some(nonce) => nonce,
            None => self.fresh_nonce().await?,
        };
        let mut header = json!({"alg": "ES256", "nonce": nonce, "url": url});
        match &self.kid {
            Some(kid) => header["kid"] = json!(kid),
            None => header["jwk"] = self.key.jwk.clone(),
        }
        let protected = b64(header.to_string().as_bytes());
        let payload = b64(payload);
        let signature = b64(&self.key.sign(format!("{protected}.{payload}").as_bytes()));
        let body = json!({"protected": protected, "payload": payload, "signature": signature});
        let response = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/jose+json")
            .body(body.to_string())
            .send()
            .await
            .map_err(transport)?;
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        self.nonce = header("replay-nonce");
        let location = header(LOCATION.as_str());
        let retry_after = header(RETRY_AFTER.as_str())
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs);
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Reply {
            status,
            location,
            retry_after,
            body,
        })
    }

    /// POSTs `payload` to `url` and fails unless the status is `expected`.
    async fn expect(
        &mut self,
        step: &str,
        url: &str,
        payload: Option<Value>,
        expected: u16,
    ) -> Result<Reply, Failure> {
        let reply = self.post(url, payload).await?;
        if reply.status == expected {
            Ok(reply)
        } else {
            Err(reply.failure(step))
        }
    }

    /// POST-as-GET `url` until its status is neither pending nor
    /// processing; fails unless it is then `valid`.
    async fn wait_valid(&mut self, what: &str, url: &str) -> Result<Value, Failure> {
        let deadline = Instant::now() + POLL_LIMIT;
        loop {
            let reply = self.expect(what, url, None, 200).await?;
            let object = reply.json();
            match object["status"].as_str() {
                Some("valid") => return Ok(object),
                Some("pending" | "processing" | "ready") if Instant::now() < deadline => {
                    let pause = reply.retry_after.unwrap_or(POLL_PAUSE);
                    tokio::time::sleep(pause.min(MAX_POLL_PAUSE)).await;
                }
                Some("pending" | "processing" | "ready") => {
                    return Err(Failure::new(format!("{what} not valid in time")))
                }
                _ => return Err(failure_in(&object, what)),
            }
        }
    }

    /// One full issuance of `name`, its HTTP-01 answer served by `http01`.
    pub async fn issue(&mut self, name: &str, http01: &Http01Responder) -> Result<(), Failure> {
        let new_order = self
            .url("newOrder")
            .map_err(|e| Failure::new(e.to_string()))?;
        let identifiers = json!({"identifiers": [{"type": "dns", "value": name}]});
        let reply = self
            .expect("newOrder", &new_order, Some(identifiers), 201)
            .await?;
        let order_url = reply
            .location
            .clone()
            .ok_or_else(|| Failure::new("newOrder: no Location"))?;
        let order = reply.json();
        let field = |object: &Value, name: &str| {
            object[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| Failure::new(format!("no {name} in {object}")))
        };
        let authz_url = order["authorizations"][0]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure::new("order without authorizations"))?;
        let finalize_url = field(&order, "finalize")?;

        let authz = self
            .expect("authorization", &authz_url, None, 200)
            .await?
            .json();
        let challenge = authz["challenges"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "http-01")
            .cloned()
            .ok_or_else(|| Failure::new("no http-01 challenge"))?;
        let token = field(&challenge, "token")?;
        http01.serve(&token, &format!("{token}.{}", self.key.thumbprint));
        self.expect(
            "challenge",
            &field(&challenge, "url")?,
            Some(json!({})),
            200,
        )
        .await?;
        self.wait_valid("authorization", &authz_url).await?;

        let key = rcgen::KeyPair::generate().map_err(|e| Failure::new(e.to_string()))?;
        let csr = certgate_testkit::raw_client::csr(&[name], &key);
        self.expect("finalize", &finalize_url, Some(json!({"csr": csr})), 200)
            .await?;
        let order = self.wait_valid("order", &order_url).await?;
        let certificate = self
            .expect("certificate", &field(&order, "certificate")?, None, 200)
            .await?;
        if !certificate.body.starts_with(b"-----BEGIN CERTIFICATE-----") {
            return Err(Failure::new("certificate: not a PEM chain"));
        }
        Ok(())
    }
}

fn transport(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::new("timeout")
    } else {
        Failure::new("connection")
    }
}
