//! TLS-ALPN-01 (RFC 8737, and RFC 8738 for IP addresses): lego obtains a
//! certificate from the built binary answering only TLS-ALPN-01; a raw
//! client, against certgate in process, shows that a correct challenge
//! certificate validates a DNS name and an IP address, and that a wrong
//! acmeIdentifier or an extra subjectAltName make the challenge invalid with
//! a detail that says which.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Command;

use certgate_testkit::clients::{check_certificate, require_tool, run_client};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::instance::Instance;
use certgate_testkit::process::{free_port, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{challenge_of, RawClient};
use certgate_testkit::tls_alpn::{ChallengeCert, TlsAlpnResponder};

/// One handshake with a local responder takes milliseconds; certgate bounds
/// a stuck one at 10 s, so this leaves room without hiding a hang.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(20);
const LEGO_NAMES: [&str; 2] = ["alpn1.example.test", "alpn2.example.test"];
const TLS_PROBLEM: &str = "urn:ietf:params:acme:error:tls";

#[tokio::test(flavor = "multi_thread")]
async fn lego_obtains_a_certificate_over_tls_alpn01() {
    require_tool("lego", "lego");
    require_tool("openssl", "openssl");

    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    // lego listens here; certgate, told the port through its config file,
    // connects here for every name, since the stub resolves all to 127.0.0.1.
    let tls_port = free_port();
    let config_dir = tempfile::tempdir().unwrap();
    let config = config_dir.path().join("certgate.toml");
    std::fs::write(&config, format!("tls_alpn01_port = {tls_port}\n")).unwrap();
    // Nothing answers on `args.http01_port`, so an HTTP-01 attempt could not succeed.
    let args = ServeArgs::new(data_dir.path(), dns.addr(), Some(config));
    let root_pem = data_dir.path().join("ca/root.pem");
    // Each challenge found valid is a DEBUG line of the validators.
    let validations_logged = [("RUST_LOG", "info,certgate::validate=debug")];
    let mut certgate = CertgateProcess::start_with(&args, &[], &validations_logged).await;

    let lego_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("lego");
    command
        .env("LEGO_CA_CERTIFICATES", &root_pem)
        .arg("--server")
        .arg(format!("https://{}/acme/directory", args.listen))
        .arg("--path")
        .arg(lego_dir.path())
        .args(["--email", "lego@example.test", "--accept-tos"])
        .args(["--key-type", "ec256", "--tls", "--tls.port"])
        .arg(format!("127.0.0.1:{tls_port}"));
    for name in LEGO_NAMES {
        command.args(["-d", name]);
    }
    command.arg("run");
    run_client("lego run", command, &|| certgate.log()).await;

    let certificates: PathBuf = lego_dir.path().join("certificates");
    check_certificate(
        "lego",
        &root_pem,
        &certificates.join(format!("{}.crt", LEGO_NAMES[0])),
        &certificates.join(format!("{}.issuer.crt", LEGO_NAMES[0])),
        &LEGO_NAMES,
    )
    .await;
    let log = certgate.log();
    for name in LEGO_NAMES {
        assert!(
            log.lines().any(|l| l.contains("challenge valid")
                && l.contains(name)
                && l.contains("tls-alpn-01")),
            "certgate logged no valid tls-alpn-01 challenge for {name}:\n{log}"
        );
    }

    let status = certgate.stop().await;
    assert!(
        status.success(),
        "certgate did not stop cleanly on SIGTERM ({status})\n--- certgate log ---\n{}",
        certgate.log()
    );
}

/// certgate in process, checking TLS-ALPN-01 against its own responder, and
/// a registered client.
struct Setup {
    /// Kept for as long as the test runs; dropping it stops certgate.
    _instance: Instance,
    responder: TlsAlpnResponder,
    client: RawClient,
}

impl Setup {
    async fn start() -> Self {
        let responder = TlsAlpnResponder::start().await;
        let instance =
            Instance::start_with_config(Some(format!("tls_alpn01_port = {}\n", responder.port())))
                .await;
        let client =
            RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
        Self {
            _instance: instance,
            responder,
            client,
        }
    }

    /// A new order for the single `identifier` ({"type", "value"}); returns
    /// (order URL, authorization URL, authorization JSON).
    async fn order(&self, identifier: Value) -> (String, String, Value) {
        let reply = self
            .client
            .post(
                &self.client.url("newOrder"),
                Some(json!({"identifiers": [identifier]})),
            )
            .await;
        assert_eq!(reply.status, 201, "newOrder: {}", reply.json());
        let order_url = reply.header("location").unwrap().to_owned();
        let authorizations = reply.json()["authorizations"].clone();
        let authz_url = match authorizations.as_array().map(Vec::as_slice) {
            Some([url]) => url.as_str().unwrap().to_owned(),
            _ => panic!("one identifier, one authorization: {authorizations}"),
        };
        let authz = self.client.post(&authz_url, None).await.json();
        assert_eq!(authz["status"], "pending", "{authz}");
        (order_url, authz_url, authz)
    }

    /// Serves the certificate `kind` for the authorization's identifier,
    /// answers its tls-alpn-01 challenge, and returns the authorization
    /// once that challenge is neither pending nor processing.
    async fn answer(&self, authz_url: &str, authz: &Value, kind: ChallengeCert) -> Value {
        let challenge = challenge_of(authz, "tls-alpn-01");
        let token = challenge["token"].as_str().unwrap();
        let key_authorization = format!("{token}.{}", self.client.thumbprint());
        let identifier = authz["identifier"]["value"].as_str().unwrap();
        self.responder.serve(identifier, &key_authorization, kind);

        let url = challenge["url"].as_str().unwrap();
        let reply = self.client.post(url, Some(json!({}))).await;
        assert_eq!(
            reply.status,
            200,
            "answering the challenge: {}",
            reply.json()
        );
        self.settled(authz_url).await
    }

    /// Polls the authorization until its tls-alpn-01 challenge is done.
    async fn settled(&self, authz_url: &str) -> Value {
        let deadline = tokio::time::Instant::now() + VALIDATION_TIMEOUT;
        loop {
            let authz = self.client.post(authz_url, None).await.json();
            let status = &challenge_of(&authz, "tls-alpn-01")["status"];
            if status != "pending" && status != "processing" {
                return authz;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the tls-alpn-01 challenge is still {status} after {VALIDATION_TIMEOUT:?}: {authz}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn dns(name: &str) -> Value {
    json!({"type": "dns", "value": name})
}

/// Asserts the challenge failed with a TLS problem whose detail contains
/// every one of `words`; returns the detail.
fn assert_tls_problem(authz: &Value, words: &[&str]) -> String {
    let challenge = challenge_of(authz, "tls-alpn-01");
    assert_eq!(challenge["status"], "invalid", "{authz}");
    assert_eq!(authz["status"], "invalid", "{authz}");
    assert_eq!(challenge["error"]["type"], TLS_PROBLEM, "{authz}");
    let detail = challenge["error"]["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no error detail: {authz}"))
        .to_owned();
    for word in words {
        assert!(detail.contains(word), "{word:?} not in {detail:?}");
    }
    detail
}

#[tokio::test]
async fn a_correct_challenge_certificate_validates_a_dns_name() {
    let setup = Setup::start().await;
    let name = "good.alpn.example";
    let (order_url, authz_url, authz) = setup.order(dns(name)).await;
    let authz = setup
        .answer(&authz_url, &authz, ChallengeCert::Correct)
        .await;

    let challenge = challenge_of(&authz, "tls-alpn-01");
    assert_eq!(challenge["status"], "valid", "{authz}");
    assert!(challenge["validated"].is_string(), "{authz}");
    assert_eq!(authz["status"], "valid", "{authz}");
    setup.client.wait_for_order(&order_url, &["ready"]).await;
    assert!(
        setup.responder.server_names().contains(&Some(name.into())),
        "certgate sent the name as SNI: {:?}",
        setup.responder.server_names()
    );
}

#[tokio::test]
async fn a_wrong_acme_identifier_makes_the_challenge_invalid() {
    let setup = Setup::start().await;
    let (order_url, authz_url, authz) = setup.order(dns("digest.alpn.example")).await;
    let authz = setup
        .answer(&authz_url, &authz, ChallengeCert::WrongDigest)
        .await;

    let detail = assert_tls_problem(&authz, &["acmeIdentifier"]);
    assert!(
        detail.contains("digest") || detail.contains("match"),
        "the detail says the acmeIdentifier does not match: {detail}"
    );
    setup.client.wait_for_order(&order_url, &["invalid"]).await;
}

#[tokio::test]
async fn an_extra_subject_alt_name_makes_the_challenge_invalid() {
    let setup = Setup::start().await;
    let name = "extra.alpn.example";
    let (order_url, authz_url, authz) = setup.order(dns(name)).await;
    let authz = setup
        .answer(&authz_url, &authz, ChallengeCert::ExtraSan)
        .await;

    let detail = assert_tls_problem(&authz, &["subjectAltName"]);
    assert!(
        detail.contains(&format!("extra.{name}")),
        "the detail names the SAN found: {detail}"
    );
    setup.client.wait_for_order(&order_url, &["invalid"]).await;
}

#[tokio::test]
async fn a_non_critical_acme_identifier_makes_the_challenge_invalid() {
    let setup = Setup::start().await;
    let (_, authz_url, authz) = setup.order(dns("lax.alpn.example")).await;
    let authz = setup
        .answer(&authz_url, &authz, ChallengeCert::NotCritical)
        .await;

    assert_tls_problem(&authz, &["acmeIdentifier", "critical"]);
}

#[tokio::test]
async fn an_ip_address_is_offered_http01_and_tls_alpn01_and_proven_with_an_ip_san() {
    let setup = Setup::start().await;
    let identifier = json!({"type": "ip", "value": "127.0.0.1"});
    let (order_url, authz_url, authz) = setup.order(identifier.clone()).await;
    assert_eq!(authz["identifier"], identifier, "{authz}");

    let offered: BTreeSet<&str> = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        BTreeSet::from(["http-01", "tls-alpn-01"]),
        "an IP address is never offered dns-01: {authz}"
    );
    assert_eq!(
        authz["challenges"].as_array().unwrap().len(),
        2,
        "each type once: {authz}"
    );

    let authz = setup
        .answer(&authz_url, &authz, ChallengeCert::Correct)
        .await;
    assert_eq!(
        challenge_of(&authz, "tls-alpn-01")["status"],
        "valid",
        "{authz}"
    );
    assert_eq!(authz["status"], "valid", "{authz}");
    setup.client.wait_for_order(&order_url, &["ready"]).await;
    let names = setup.responder.server_names();
    assert!(
        names.contains(&Some("1.0.0.127.in-addr.arpa".into())),
        "certgate sent the reverse-DNS name as SNI (RFC 8738 §6): {names:?}"
    );
}
