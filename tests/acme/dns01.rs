//! DNS-01 against a real BIND: lego and certbot, through their RFC 2136
//! plugins, get certificates for a name and its wildcard from the built
//! binary; a raw client checks what a wildcard authorization offers and that
//! an `_acme-challenge` CNAME into another zone is followed, as operators
//! who delegate validation to a dedicated zone rely on.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::process::Command;

use certgate_testkit::bind::BindServer;
use certgate_testkit::clients::{certbot_command, check_certificate, require_tool, run_client};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{b64, challenge_of, RawClient};

/// Validation of one TXT lookup takes milliseconds; this bounds a stuck one.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(20);

/// The built binary with its own data directory, asking `resolver` for
/// every DNS lookup of a validation.
struct Certgate {
    process: CertgateProcess,
    data_dir: tempfile::TempDir,
    directory: String,
}

impl Certgate {
    async fn start(resolver: std::net::SocketAddr) -> Self {
        let data_dir = tempfile::tempdir().unwrap();
        let args = ServeArgs::new(data_dir.path(), resolver, None);
        let process = CertgateProcess::start(&args).await;
        let directory = format!("https://{}/acme/directory", args.listen);
        Self {
            process,
            data_dir,
            directory,
        }
    }

    /// The root that signs both certgate's HTTPS certificate and what it issues.
    fn root_pem(&self) -> PathBuf {
        self.data_dir.path().join("ca/root.pem")
    }

    async fn registered_client(&self) -> RawClient {
        RawClient::registered(&self.directory, &self.root_pem()).await
    }
}

/// RFC 8555 §8.4, computed here rather than borrowed from certgate, so that
/// a mistake there cannot cancel out.
fn txt_value(token: &str, thumbprint: &str) -> String {
    b64(&Sha256::digest(format!("{token}.{thumbprint}").as_bytes()))
}

/// The authorizations of an order, fetched with POST-as-GET.
async fn authorizations(client: &RawClient, order: &Value) -> Vec<Value> {
    let mut found = Vec::new();
    for url in order["authorizations"].as_array().expect("authorizations") {
        let reply = client.post(url.as_str().unwrap(), None).await;
        assert_eq!(reply.status, 200, "authorization {url}: {:?}", reply.json());
        found.push(reply.json());
    }
    found
}

fn challenge_types(authz: &Value) -> Vec<&str> {
    authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .map(|c| c["type"].as_str().expect("challenge type"))
        .collect()
}

/// The dns-01 challenge of the single authorization of a one-name order.
async fn dns01_challenge(client: &RawClient, name: &str) -> Value {
    let (_, order) = client.new_order(&[name]).await;
    let authzs = authorizations(client, &order).await;
    assert_eq!(authzs.len(), 1, "one authorization for {name}: {authzs:?}");
    challenge_of(&authzs[0], "dns-01").clone()
}

/// certgate's log, then named's: the cause of a failure may be in either.
fn logs(certgate: &Certgate, bind: &BindServer) -> String {
    format!(
        "{}\n--- named log ---\n{}",
        certgate.process.log(),
        bind.log()
    )
}

/// Asks certgate to validate `challenge` and polls it until it is no longer
/// pending or processing; returns it then.
async fn answer_and_wait(
    client: &RawClient,
    challenge: &Value,
    certgate: &Certgate,
    bind: &BindServer,
) -> Value {
    let url = challenge["url"].as_str().unwrap();
    let reply = client.post(url, Some(json!({}))).await;
    assert_eq!(reply.status, 200, "answering {url}: {:?}", reply.json());
    let deadline = tokio::time::Instant::now() + VALIDATION_TIMEOUT;
    let mut current = reply.json();
    while matches!(current["status"].as_str(), Some("pending" | "processing")) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "challenge still {} after {VALIDATION_TIMEOUT:?}: {current}\n--- certgate log ---\n{}",
            current["status"],
            logs(certgate, bind)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        current = client.post(url, None).await.json();
    }
    current
}

/// Both certificate tests use this zone; each client has its own name in it.
const ZONE: &str = "lab.test";

#[tokio::test(flavor = "multi_thread")]
async fn lego_rfc2136_gets_a_name_and_its_wildcard() {
    require_tool("lego", "lego");
    require_tool("openssl", "openssl");
    let names = ["lego.lab.test", "*.lego.lab.test"];
    let bind = BindServer::start(&[ZONE]).await;
    let certgate = Certgate::start(bind.addr()).await;
    let work = tempfile::tempdir().unwrap();
    let nameserver = bind.addr().to_string();

    let mut command = Command::new("lego");
    command
        .env("LEGO_CA_CERTIFICATES", certgate.root_pem())
        .env("RFC2136_NAMESERVER", &nameserver)
        .env("RFC2136_TSIG_KEY", bind.tsig_name())
        .env("RFC2136_TSIG_SECRET", bind.tsig_secret())
        // lego (miekg/dns) names algorithms as fully qualified domain names.
        .env(
            "RFC2136_TSIG_ALGORITHM",
            format!("{}.", bind.tsig_algorithm()),
        )
        .env("RFC2136_PROPAGATION_TIMEOUT", "20")
        .env("RFC2136_POLLING_INTERVAL", "1")
        // The name and its wildcard share one TXT name, so lego solves them
        // one after the other, waiting this long (60 s by default) between.
        .env("RFC2136_SEQUENCE_INTERVAL", "1")
        .env("RFC2136_DNS_TIMEOUT", "10")
        .arg("--server")
        .arg(&certgate.directory)
        .arg("--path")
        .arg(work.path())
        .args(["--email", "lego@example.test", "--accept-tos"])
        .args(["--key-type", "ec256", "--dns", "rfc2136"])
        .args(["--dns.resolvers", &nameserver, "--dns.disable-cp"]);
    for name in names {
        command.args(["-d", name]);
    }
    command.arg("run");
    run_client("lego run", command, &|| logs(&certgate, &bind)).await;

    let certificates = work.path().join("certificates");
    check_certificate(
        "lego",
        &certgate.root_pem(),
        &certificates.join(format!("{}.crt", names[0])),
        &certificates.join(format!("{}.issuer.crt", names[0])),
        &names,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certbot_rfc2136_gets_a_name_and_its_wildcard() {
    require_tool("certbot", "certbot python3-certbot-dns-rfc2136");
    require_tool("openssl", "openssl");
    let names = ["certbot.lab.test", "*.certbot.lab.test"];
    let bind = BindServer::start(&[ZONE]).await;
    let certgate = Certgate::start(bind.addr()).await;
    let work = tempfile::tempdir().unwrap();

    let credentials = work.path().join("rfc2136.ini");
    std::fs::write(
        &credentials,
        format!(
            "dns_rfc2136_server = {}\ndns_rfc2136_port = {}\ndns_rfc2136_name = {}\n\
             dns_rfc2136_secret = {}\ndns_rfc2136_algorithm = {}\n",
            bind.addr().ip(),
            bind.addr().port(),
            bind.tsig_name(),
            bind.tsig_secret(),
            bind.tsig_algorithm().to_ascii_uppercase(),
        ),
    )
    .unwrap();
    // certbot warns about credentials others can read.
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o600)).unwrap();

    let dir = work.path();
    let mut command = certbot_command(dir, &certgate.root_pem(), &certgate.directory);
    command
        .arg("certonly")
        .args([
            "--authenticator",
            "dns-rfc2136",
            "--dns-rfc2136-credentials",
        ])
        .arg(&credentials)
        // BIND answers from the updated zone at once; the default is 60 s.
        .args(["--dns-rfc2136-propagation-seconds", "1"])
        .args(["--register-unsafely-without-email", "--key-type", "ecdsa"]);
    for name in names {
        command.args(["-d", name]);
    }
    run_client("certbot certonly", command, &|| logs(&certgate, &bind)).await;

    let live = dir.join("c/live").join(names[0]);
    check_certificate(
        "certbot",
        &certgate.root_pem(),
        &live.join("cert.pem"),
        &live.join("chain.pem"),
        &names,
    )
    .await;
}

/// RFC 8555 §7.1.3 and §8: a wildcard can only be proven through DNS, and
/// its authorization is for the base name, marked `wildcard`.
#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_authorization_offers_only_dns01() {
    // No validation happens here, so the stub is resolver enough.
    let dns = DnsStub::start().await;
    let certgate = Certgate::start(dns.addr()).await;
    let client = certgate.registered_client().await;

    let (_, order) = client.new_order(&["x.lab.test", "*.x.lab.test"]).await;
    let authzs = authorizations(&client, &order).await;
    assert_eq!(authzs.len(), 2, "one authorization per name: {authzs:?}");
    let (wildcard, plain): (Vec<&Value>, Vec<&Value>) =
        authzs.iter().partition(|a| a.get("wildcard").is_some());

    assert_eq!(wildcard.len(), 1, "one wildcard authorization: {authzs:?}");
    let wildcard = wildcard[0];
    assert_eq!(wildcard["wildcard"], json!(true), "{wildcard}");
    assert_eq!(
        wildcard["identifier"],
        json!({"type": "dns", "value": "x.lab.test"}),
        "the wildcard authorization is for the base name: {wildcard}"
    );
    assert_eq!(challenge_types(wildcard), ["dns-01"], "{wildcard}");

    // RFC 8555 §7.1.4: `wildcard` is absent from other authorizations.
    assert_eq!(plain.len(), 1, "one plain authorization: {authzs:?}");
    let plain = plain[0];
    assert_eq!(
        plain["identifier"],
        json!({"type": "dns", "value": "x.lab.test"}),
        "{plain}"
    );
    let offered = challenge_types(plain);
    for kind in ["http-01", "dns-01"] {
        assert!(
            offered.contains(&kind),
            "the plain name offers {kind}: {plain}"
        );
    }
    let distinct: BTreeSet<&str> = offered.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        offered.len(),
        "no challenge type twice: {plain}"
    );
}

/// Operators often keep the API key of their main zone away from ACME
/// clients by pointing `_acme-challenge` at a zone only for validation.
/// An authoritative server answers such a query with the CNAME alone; the
/// TXT record behind it must still be found.
#[tokio::test(flavor = "multi_thread")]
async fn a_challenge_delegated_by_cname_into_another_zone_validates() {
    let bind = BindServer::start(&[ZONE, "acme-delegate.test"]).await;
    let certgate = Certgate::start(bind.addr()).await;
    let client = certgate.registered_client().await;

    let challenge = dns01_challenge(&client, "deleg.lab.test").await;
    let token = challenge["token"].as_str().unwrap();
    bind.add(
        "_acme-challenge.deleg.lab.test.",
        60,
        "CNAME",
        "deleg.acme-delegate.test.",
    );
    bind.add(
        "deleg.acme-delegate.test.",
        60,
        "TXT",
        &format!("\"{}\"", txt_value(token, &client.thumbprint())),
    );

    let done = answer_and_wait(&client, &challenge, &certgate, &bind).await;
    assert_eq!(
        done["status"],
        "valid",
        "challenge: {done}\n--- certgate log ---\n{}",
        certgate.process.log()
    );
}

/// The failing case of the delegation: the value behind the CNAME is wrong,
/// and the problem tells the operator which name was looked up and what
/// was found there.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_value_behind_a_delegating_cname_is_invalid_and_named() {
    let bind = BindServer::start(&[ZONE, "acme-delegate.test"]).await;
    let certgate = Certgate::start(bind.addr()).await;
    let client = certgate.registered_client().await;

    let challenge = dns01_challenge(&client, "wrong.lab.test").await;
    let token = challenge["token"].as_str().unwrap();
    // Well-formed, but for another account's key.
    let wrong = txt_value(token, &b64(&Sha256::digest(b"some other account key")));
    bind.add(
        "_acme-challenge.wrong.lab.test.",
        60,
        "CNAME",
        "wrong.acme-delegate.test.",
    );
    bind.add(
        "wrong.acme-delegate.test.",
        60,
        "TXT",
        &format!("\"{wrong}\""),
    );

    let done = answer_and_wait(&client, &challenge, &certgate, &bind).await;
    assert_eq!(done["status"], "invalid", "challenge: {done}");
    let error = &done["error"];
    assert_eq!(
        error["type"], "urn:ietf:params:acme:error:incorrectResponse",
        "a TXT record was found, with the wrong value: {done}"
    );
    let detail = error["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("_acme-challenge.wrong.lab.test"),
        "the detail names the record looked up: {detail:?}"
    );
    assert!(
        detail.contains(&wrong),
        "the detail shows the value found behind the CNAME: {detail:?}"
    );
}
