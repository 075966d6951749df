//! CAA (RFC 8659, RFC 8657) against records served by a real BIND: the built
//! certgate, with a profile that names its CAA identity, refuses names whose
//! closest CAA record set authorizes another CA or another account, and
//! validates names whose records match.

use certgate_testkit::bind::BindServer;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{challenge_of, RawClient};
use serde_json::{json, Value};

const ZONE: &str = "lab.test";

struct Setup {
    bind: BindServer,
    http01: Http01Responder,
    _certgate: CertgateProcess,
    client: RawClient,
    _data_dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let bind = BindServer::start(&[ZONE]).await;
    let http01 = Http01Responder::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("certgate.toml");
    std::fs::write(
        &config,
        "[profiles.default]\nissuer = \"local\"\ncaa_identities = [\"certgate.test\"]\n",
    )
    .unwrap();
    let args = ServeArgs {
        http01_port: http01.port(),
        ..ServeArgs::new(data_dir.path(), bind.addr(), Some(config))
    };
    let certgate = CertgateProcess::start(&args).await;
    let client = RawClient::registered(
        &format!("https://{}/acme/directory", args.listen),
        &data_dir.path().join("ca/root.pem"),
    )
    .await;
    Setup {
        bind,
        http01,
        _certgate: certgate,
        client,
        _data_dir: data_dir,
    }
}

impl Setup {
    /// Orders `name`, answers its `kind` challenge correctly, and returns
    /// the challenge once validation (and CAA) has decided.
    async fn validate(&self, name: &str, kind: &str) -> Value {
        let (_, order) = self.client.new_order(&[name]).await;
        let authz_url = order["authorizations"][0].as_str().unwrap();
        let authz = self.client.post(authz_url, None).await.json();
        let challenge = challenge_of(&authz, kind).clone();
        let token = challenge["token"].as_str().unwrap();
        let key_authz = format!("{token}.{}", self.client.thumbprint());
        match kind {
            "http-01" => self.http01.serve(token, &key_authz),
            _ => {
                let base = authz["identifier"]["value"].as_str().unwrap();
                let value = certgate::validate::dns01_txt_value(&key_authz);
                self.bind.add(
                    &format!("_acme-challenge.{base}."),
                    60,
                    "TXT",
                    &format!("\"{value}\""),
                );
            }
        }
        let url = challenge["url"].as_str().unwrap();
        self.client.post(url, Some(json!({}))).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let challenge = self.client.post(url, None).await.json();
            if challenge["status"] != "processing" && challenge["status"] != "pending" {
                return challenge;
            }
            assert!(tokio::time::Instant::now() < deadline, "{challenge}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Publishes a CAA record at `name`, with the A record the zone's
    /// wildcard no longer supplies once the name has records of its own.
    fn caa(&self, name: &str, value: &str) {
        self.bind.add(&format!("{name}."), 60, "CAA", value);
        self.bind.add(&format!("{name}."), 60, "A", "127.0.0.1");
    }

    fn account_url(&self) -> &str {
        self.client.kid.as_deref().unwrap()
    }
}

fn assert_caa_refusal(challenge: &Value, mentions: &str) {
    assert_eq!(challenge["status"], "invalid", "{challenge}");
    assert_eq!(
        challenge["error"]["type"], "urn:ietf:params:acme:error:caa",
        "{challenge}"
    );
    let detail = challenge["error"]["detail"].as_str().unwrap();
    assert!(detail.contains(mentions), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn caa_records_decide_who_may_issue() {
    let setup = setup().await;

    // No CAA anywhere up the tree: issuance is not restricted.
    let plain = setup.validate("plain.lab.test", "http-01").await;
    assert_eq!(plain["status"], "valid", "{plain}");

    // Another CA named: refused.
    setup.caa("other.lab.test", "0 issue \"other-ca.test\"");
    let refused = setup.validate("other.lab.test", "http-01").await;
    assert_caa_refusal(&refused, "other-ca.test");

    // Our identity, but for another account: refused.
    setup.caa(
        "account.lab.test",
        "0 issue \"certgate.test; accounturi=https://elsewhere.test/acme/acct/someone-else\"",
    );
    let refused = setup.validate("account.lab.test", "http-01").await;
    assert_caa_refusal(&refused, "someone-else");

    // Our identity, our account, our method: valid.
    let ours = format!(
        "0 issue \"certgate.test; accounturi={}; validationmethods=http-01\"",
        setup.account_url()
    );
    setup.caa("ours.lab.test", &ours);
    let valid = setup.validate("ours.lab.test", "http-01").await;
    assert_eq!(valid["status"], "valid", "{valid}");

    // Our identity, but only for dns-01: http-01 is refused.
    setup.caa(
        "method.lab.test",
        "0 issue \"certgate.test; validationmethods=dns-01\"",
    );
    let refused = setup.validate("method.lab.test", "http-01").await;
    assert_caa_refusal(&refused, "dns-01");

    // The closest record set up the tree governs a name that has none.
    setup.caa("tree.lab.test", "0 issue \"other-ca.test\"");
    setup.bind.add("host.tree.lab.test.", 60, "A", "127.0.0.1");
    let refused = setup.validate("host.tree.lab.test", "http-01").await;
    assert_caa_refusal(&refused, "CAA at tree.lab.test");

    // A wildcard follows issuewild when there is one.
    setup.caa("wild.lab.test", "0 issue \"certgate.test\"");
    setup.caa("wild.lab.test", "0 issuewild \"other-ca.test\"");
    let refused = setup.validate("*.wild.lab.test", "dns-01").await;
    assert_caa_refusal(&refused, "issuewild");
    let valid = setup.validate("wild.lab.test", "http-01").await;
    assert_eq!(valid["status"], "valid", "{valid}");
}
