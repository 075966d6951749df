//! The lab every test starts from, an HTTP helper, and CSR/certificate tools.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use rcgen::{CertificateParams, DnType, KeyPair, SanType};
use serde_json::Value;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use certgate_testkit::vault::{Grant, Mount, Role, StandinConfig, VaultStandin};

pub const SIGNER_TOKEN: &str = "hvs.signer-token";
pub const READER_TOKEN: &str = "hvs.reader-token";

/// A role allowing subdomains of the lab domains, any key type, 30 days max.
pub fn web_role(name: &str) -> Role {
    let mut role = Role::new(name)
        .allowed_domains(["lab.example", "example.test"])
        .allow_subdomains(true)
        .key_type("any")
        .max_ttl(30 * 86400);
    role.organization = vec!["Certgate Lab".to_owned()];
    role
}

/// A role for one name-rule case: allows subdomains of `lab.example`.
fn sub_role(name: &str) -> Role {
    Role::new(name)
        .allowed_domains(["lab.example"])
        .allow_subdomains(true)
        .key_type("any")
}

/// The stand-in these tests talk to: a role per name-rule case, and a
/// clock that moves only when a test moves it, as the tests compare TTLs
/// to the second.
pub fn lab_config() -> StandinConfig {
    let pki_int = Mount::new("pki_int")
        .issuer_name("lab-int")
        .role(web_role("web"))
        .role(web_role("nostore").no_store(true))
        .role(web_role("short").ttl(3600).max_ttl(7200))
        .role(
            Role::new("rsa-only")
                .allowed_domains(["lab.example"])
                .allow_subdomains(true),
        )
        .role(
            Role::new("ec-only")
                .allowed_domains(["lab.example"])
                .allow_subdomains(true)
                .key_type("ec"),
        )
        .role(
            Role::new("ec-384")
                .allowed_domains(["lab.example"])
                .allow_subdomains(true)
                .key_type("ec")
                .key_bits(384),
        )
        .role(sub_role("sub"))
        .role(
            Role::new("bare")
                .allowed_domains(["lab.example"])
                .allow_bare_domains(true)
                .key_type("any"),
        )
        .role(
            Role::new("glob")
                .allowed_domains(["*.svc.lab.example"])
                .allow_glob_domains(true)
                .key_type("any"),
        )
        .role(Role::new("anyname").allow_any_name(true).key_type("any"))
        .role(
            Role::new("anyname-loose")
                .allow_any_name(true)
                .enforce_hostnames(false)
                .key_type("any"),
        )
        .role(sub_role("nowild").allow_wildcard_certificates(false))
        .role(sub_role("nolocal").allow_localhost(false))
        .role(sub_role("noip").allow_ip_sans(false))
        .role(sub_role("optional-cn").require_cn(false))
        .role(
            sub_role("request-names")
                .use_csr_sans(false)
                .use_csr_common_name(false),
        );
    StandinConfig::new()
        .frozen_clock()
        .mount(pki_int)
        .mount(
            Mount::new("pki_short")
                .ca_validity(Duration::from_secs(2 * 86400))
                .role(web_role("web")),
        )
        .mount(Mount::new("pki_empty").without_ca().role(web_role("web")))
        .policy("signer", ["pki_int/sign/web", "pki_int/roles/*"])
        .policy("reader", ["pki_int/roles/*"])
        .token(SIGNER_TOKEN, Grant::new(["signer"]).ttl(600).max_ttl(1000))
        .token(READER_TOKEN, Grant::new(["reader"]))
        .approle(
            "approle",
            "role-id-1",
            "secret-id-1",
            Grant::new(["signer"]),
        )
        .kubernetes(
            "kubernetes",
            "certgate",
            "k8s-service-account-jwt",
            Grant::new(["signer"]),
        )
        .jwt(
            "jwt",
            "certgate",
            "eyJhbGciOi.payload.signature",
            Grant::new(["signer"]),
        )
}

/// A response: status, headers and the body as JSON (or `Value::String` when not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn errors(&self) -> Vec<String> {
        serde_json::from_value(self.body["errors"].clone()).expect("an errors list")
    }

    pub fn error(&self) -> String {
        self.errors().first().cloned().unwrap_or_default()
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
}

pub struct Lab {
    pub vault: VaultStandin,
    pub http: reqwest::Client,
}

impl Lab {
    pub async fn start() -> Self {
        Self::with(lab_config()).await
    }

    pub async fn with(config: StandinConfig) -> Self {
        let vault = VaultStandin::start(config).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self { vault, http }
    }

    pub fn root(&self) -> Option<&str> {
        Some(self.vault.root_token())
    }

    /// Sends `method` to `/v1/{path}`; a transport failure is returned as `Err`.
    pub async fn try_call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Result<Reply> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.vault.addr()));
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.try_call(method, path, token, body)
            .await
            .expect("the stand-in answers")
    }

    /// `POST pki_int/sign/{role}` with the root token and extra fields.
    pub async fn sign(&self, role: &str, csr: &str, extra: Value) -> Reply {
        self.sign_at(&format!("pki_int/sign/{role}"), csr, extra)
            .await
    }

    pub async fn sign_at(&self, path: &str, csr: &str, extra: Value) -> Reply {
        let mut body = serde_json::json!({ "csr": csr });
        if let Value::Object(extra) = extra {
            body.as_object_mut().unwrap().extend(extra);
        }
        self.call("POST", path, self.root(), Some(body)).await
    }
}

pub fn ec_key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key")
}

/// A CSR with the given CN (empty: none), DNS SANs and IP SANs.
pub fn csr_with(key: &KeyPair, cn: &str, dns: &[&str], ips: &[IpAddr]) -> String {
    let mut params = CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("valid names");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if !cn.is_empty() {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params
        .subject_alt_names
        .extend(ips.iter().copied().map(SanType::IpAddress));
    params
        .serialize_request(key)
        .expect("CSR")
        .pem()
        .expect("PEM")
}

pub fn csr(cn: &str, dns: &[&str]) -> String {
    csr_with(&ec_key(), cn, dns, &[])
}

/// A CSR made by the openssl CLI with an RSA key of `bits` (ring cannot make RSA keys).
pub fn rsa_csr(bits: u32, cn: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            &format!("rsa:{bits}"),
            "-nodes",
            "-keyout",
        ])
        .arg(&key)
        .args(["-subj", &format!("/CN={cn}")])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("PEM text")
}

/// The same CSR with one bit of its signature flipped.
pub fn tamper_signature(csr_pem: &str) -> String {
    let block = pem::parse(csr_pem).expect("PEM");
    let mut der = block.contents().to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der))
}

/// What tests check in an issued certificate.
#[derive(Debug)]
pub struct CertView {
    pub subject: String,
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub serial: String,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub extension_oids: Vec<String>,
}

pub fn view(cert_pem: &str) -> CertView {
    let block = pem::parse(cert_pem).expect("certificate PEM");
    let (_, cert) = X509Certificate::from_der(block.contents()).expect("certificate DER");
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) if b.len() == 4 => {
                    ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
                }
                _ => {}
            }
        }
    }
    CertView {
        subject: cert.subject().to_string(),
        dns,
        ips,
        serial: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca),
        extension_oids: cert
            .iter_extensions()
            .map(|e| e.oid.to_id_string())
            .collect(),
    }
}

/// Runs `openssl verify` of `leaf` against `root` with `intermediate` untrusted.
pub fn openssl_verify(root: &str, intermediate: &str, leaf: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{}\n", pem.trim_end())).expect("write PEM");
        path
    };
    let (root, intermediate, leaf) = (
        write("root.pem", root),
        write("int.pem", intermediate),
        write("leaf.pem", leaf),
    );
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(&root)
        .arg("-untrusted")
        .arg(&intermediate)
        .arg(&leaf)
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
