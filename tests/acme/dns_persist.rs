//! dns-persist-01 (draft-ietf-acme-dns-persist-01) against the built binary
//! and a real BIND: a record published once proves a name and a wildcard for
//! order after order; each way a record can fail to authorize is refused
//! with its own problem; and `certgate dns-persist record` prints what the
//! directory and the challenges say.
//!
//! The client side (the record's text, where it goes) is written here from
//! the draft, not taken from certgate, so that a mistake there cannot
//! cancel out.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use certgate_testkit::bind::BindServer;
use certgate_testkit::clients::sans;
use certgate_testkit::process::{certgate_command, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{challenge_of, csr, RawClient};

const ZONE: &str = "lab.test";
/// The profile's CAA identities, and so its issuer domain names.
const ISSUERS: [&str; 2] = ["ca.lab.test", "acme.lab.test"];
/// The profile's `dns_persist_reuse`.
const REUSE_CAP: Duration = Duration::from_secs(3600);
const PERSIST: &str = "dns-persist-01";

const CONFIG: &str = r#"
[profiles.default]
issuer = "local"
caa_identities = ["ca.lab.test", "acme.lab.test"]
dns_persist = true
dns_persist_reuse = "1h"

[profiles.plain]
issuer = "local"
"#;

/// The record's text as draft §4.1 puts it: issuer-domain-name, then
/// `accounturi`, `policy=wildcard` and `persistUntil` parameters.
fn record(issuer: &str, account: &str, wildcard: bool, until: Option<i64>) -> String {
    let mut text = format!("{issuer}; accounturi={account}");
    if wildcard {
        text += "; policy=wildcard";
    }
    if let Some(until) = until {
        text += &format!("; persistUntil={until}");
    }
    text
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

struct Setup {
    bind: BindServer,
    args: ServeArgs,
    _certgate: CertgateProcess,
    client: RawClient,
    _data_dir: tempfile::TempDir,
}

impl Setup {
    async fn start() -> Self {
        let bind = BindServer::start(&[ZONE]).await;
        let data_dir = tempfile::tempdir().unwrap();
        let config = data_dir.path().join("certgate.toml");
        std::fs::write(&config, CONFIG).unwrap();
        let args = ServeArgs::new(data_dir.path(), bind.addr(), Some(config));
        let certgate = CertgateProcess::start(&args).await;
        let client = RawClient::registered(&args.directory_url(), &args.root_pem()).await;
        Self {
            bind,
            args,
            _certgate: certgate,
            client,
            _data_dir: data_dir,
        }
    }

    fn account(&self) -> String {
        self.client.kid.clone().expect("registered")
    }

    /// Publishes `text` at `_validation-persist.<name>`, as the operator
    /// does once.
    fn publish(&self, name: &str, text: &str) {
        self.bind.add(
            &format!("_validation-persist.{name}."),
            300,
            "TXT",
            &format!("\"{text}\""),
        );
    }

    /// The dns-persist-01 challenge of each authorization of `order`,
    /// checked for what the draft says it carries.
    async fn persist_challenges(&self, order: &Value) -> Vec<(String, Value)> {
        let mut found = Vec::new();
        for url in order["authorizations"].as_array().unwrap() {
            let url = url.as_str().unwrap().to_owned();
            let authz = self.client.post(&url, None).await.json();
            let challenge = challenge_of(&authz, PERSIST).clone();
            assert_eq!(
                challenge["issuer-domain-names"],
                json!(ISSUERS),
                "{challenge}"
            );
            assert!(challenge.get("token").is_none(), "no token: {challenge}");
            found.push((url, challenge));
        }
        found
    }

    /// Orders `names`, answers each dns-persist-01 challenge (the record is
    /// already in DNS), finalizes and downloads. Returns the certificate's
    /// SANs and the authorization URLs, which must all be fresh.
    async fn issue(&self, names: &[&str]) -> (Vec<String>, Vec<String>) {
        let (order_url, order) = self.client.new_order(names).await;
        let mut authz_urls = Vec::new();
        for (url, challenge) in self.persist_challenges(&order).await {
            let answered = self
                .client
                .answer_challenge(challenge["url"].as_str().unwrap())
                .await;
            assert_eq!(answered["status"], "valid", "{answered}");
            let authz = self.client.post(&url, None).await.json();
            let expires = OffsetDateTime::parse(authz["expires"].as_str().unwrap(), &Rfc3339)
                .unwrap()
                .unix_timestamp();
            assert!(
                expires > now() && expires <= now() + REUSE_CAP.as_secs() as i64 + 60,
                "the profile's dns_persist_reuse caps the authorization: {authz}"
            );
            authz_urls.push(url);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let finalized = self
            .client
            .post(
                order["finalize"].as_str().unwrap(),
                Some(json!({"csr": csr(names, &key)})),
            )
            .await;
        assert_eq!(finalized.status, 200, "finalize: {:?}", finalized.json());
        let order = self
            .client
            .wait_for_order(&order_url, &["valid", "invalid"])
            .await;
        assert_eq!(order["status"], "valid", "{order}");
        let chain = self
            .client
            .post(order["certificate"].as_str().unwrap(), None)
            .await;
        let blocks = ::pem::parse_many(&chain.body).expect("a PEM chain");
        let (_, leaf) = x509_parser::parse_x509_certificate(blocks[0].contents()).unwrap();
        (sans(&leaf), authz_urls)
    }

    /// Orders `name` (under `profile` when given) and answers its
    /// dns-persist-01 challenge; returns the challenge as it ended.
    async fn attempt(&self, name: &str) -> Value {
        let (_, order) = self.client.new_order(&[name]).await;
        let (_, challenge) = self.persist_challenges(&order).await.remove(0);
        self.client
            .answer_challenge(challenge["url"].as_str().unwrap())
            .await
    }

    /// `certgate dns-persist record` against this server's config and data.
    async fn print_record(&self, extra: &[&str]) -> std::process::Output {
        certgate_command()
            .arg("dns-persist")
            .arg("--config")
            .arg(self.args.config.as_ref().unwrap())
            .arg("--data-dir")
            .arg(&self.args.data_dir)
            .arg("record")
            .args(extra)
            .output()
            .await
            .unwrap()
    }
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_name_and_a_wildcard_are_issued_twice_from_one_record() {
    let setup = Setup::start().await;
    let account = setup.account();
    setup.publish("nas.lab.test", &record(ISSUERS[0], &account, false, None));
    setup.publish("wild.lab.test", &record(ISSUERS[1], &account, true, None));

    let mut authorizations = BTreeSet::new();
    let started = Instant::now();
    for round in 1..=2 {
        for names in [&["nas.lab.test"][..], &["wild.lab.test", "*.wild.lab.test"]] {
            let (issued, authz_urls) = setup.issue(names).await;
            assert_eq!(issued, sorted(names), "round {round}");
            for url in authz_urls {
                assert!(
                    authorizations.insert(url.clone()),
                    "a fresh authorization: {url}"
                );
                // Given up, so that the next order must read the record again
                // instead of reusing this authorization.
                let reply = setup
                    .client
                    .post(&url, Some(json!({"status": "deactivated"})))
                    .await;
                assert_eq!(reply.json()["status"], "deactivated");
            }
        }
    }
    assert_eq!(
        authorizations.len(),
        6,
        "two rounds of three authorizations"
    );
    eprintln!(
        "4 certificates, 6 validations from 2 records in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn each_way_a_record_fails_is_refused_with_its_own_problem() {
    let setup = Setup::start().await;
    let account = setup.account();
    let other = RawClient::registered(&setup.args.directory_url(), &setup.args.root_pem()).await;
    let other_account = other.kid.clone().unwrap();
    let issuer = ISSUERS[0];

    setup.publish(
        "other-account.lab.test",
        &record(issuer, &other_account, true, None),
    );
    setup.publish(
        "other-ca.lab.test",
        &record("other-ca.test", &account, true, None),
    );
    setup.publish(
        "expired.lab.test",
        &record(issuer, &account, true, Some(now() - 3600)),
    );
    setup.publish("nowild.lab.test", &record(issuer, &account, false, None));
    setup.publish(
        "malformed.lab.test",
        &format!("{issuer}; accounturi={account}; accounturi={account}"),
    );
    setup.publish(
        "caa-limited.lab.test",
        &record(issuer, &account, false, None),
    );
    setup.bind.add(
        "caa-limited.lab.test.",
        300,
        "CAA",
        &format!("0 issue \"{issuer}; validationmethods=dns-01\""),
    );

    let unauthorized = "urn:ietf:params:acme:error:unauthorized";
    let cases = [
        (
            "other-account.lab.test",
            unauthorized,
            format!("is for account {other_account}"),
        ),
        (
            "other-ca.lab.test",
            unauthorized,
            "name other CAs (other-ca.test)".to_owned(),
        ),
        (
            "expired.lab.test",
            unauthorized,
            "expired at persistUntil=".to_owned(),
        ),
        (
            "*.nowild.lab.test",
            unauthorized,
            "no policy=wildcard, which *.nowild.lab.test needs".to_owned(),
        ),
        (
            "malformed.lab.test",
            "urn:ietf:params:acme:error:malformed",
            "parameter \"accounturi\" appears more than once".to_owned(),
        ),
        (
            "caa-limited.lab.test",
            "urn:ietf:params:acme:error:caa",
            "not dns-persist-01".to_owned(),
        ),
        (
            "absent.lab.test",
            unauthorized,
            "no TXT record at _validation-persist.absent.lab.test".to_owned(),
        ),
    ];
    let mut details = BTreeSet::new();
    for (name, kind, needle) in &cases {
        let challenge = setup.attempt(name).await;
        assert_eq!(challenge["status"], "invalid", "{name}: {challenge}");
        let detail = challenge["error"]["detail"].as_str().unwrap_or_default();
        assert_eq!(challenge["error"]["type"], *kind, "{name}: {challenge}");
        assert!(
            detail.contains(needle.as_str()),
            "{name}: {needle:?} in {detail:?}"
        );
        assert!(
            detail.contains(&format!(
                "_validation-persist.{}",
                name.trim_start_matches("*.")
            )) || *kind == "urn:ietf:params:acme:error:caa",
            "{name}: the detail names the record: {detail:?}"
        );
        details.insert(detail.to_owned());
    }
    assert_eq!(
        details.len(),
        cases.len(),
        "every refusal has its own detail"
    );

    // A profile without dns_persist neither offers the challenge nor
    // advertises issuer domain names.
    let reply = setup
        .client
        .post(
            &setup.client.url("newOrder"),
            Some(json!({"identifiers": [{"type": "dns", "value": "plain.lab.test"}], "profile": "plain"})),
        )
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    let authz = setup
        .client
        .post(reply.json()["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    let types: Vec<&str> = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["http-01", "dns-01", "tls-alpn-01"], "{authz}");
    let plain = RawClient::new(
        &setup
            .args
            .directory_url()
            .replace("/acme/directory", "/acme/plain/directory"),
        &setup.args.root_pem(),
    )
    .await;
    assert_eq!(plain.directory["meta"]["caaIdentities"], json!([]));
}

#[tokio::test]
async fn the_printed_record_agrees_with_the_directory_and_challenge_and_validates() {
    let setup = Setup::start().await;
    let account = setup.account();
    assert_eq!(
        setup.client.directory["meta"]["caaIdentities"],
        json!(ISSUERS)
    );

    // persistUntil half an hour away: the authorization it proves must not
    // outlive it, though the profile would allow an hour.
    let until = now() + 1800;
    let until_text = OffsetDateTime::from_unix_timestamp(until)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    let output = setup
        .print_record(&[
            "--profile",
            "default",
            "--account",
            &account,
            "--name",
            "*.printed.lab.test",
            "--wildcard",
            "--until",
            &until_text,
        ])
        .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<(&str, &str)> = printed
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(|l| l.split_once(" IN TXT ").expect("<owner> IN TXT \"<text>\""))
        .collect();
    let owner = "_validation-persist.printed.lab.test.";
    let expected: Vec<(&str, String)> = ISSUERS
        .iter()
        .map(|issuer| {
            (
                owner,
                format!("\"{}\"", record(issuer, &account, true, Some(until))),
            )
        })
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|(o, t)| (*o, t.to_string()))
            .collect::<Vec<_>>(),
        expected,
        "{printed}"
    );

    // Published as printed, the second line proves the wildcard; the
    // challenge names the same issuers the directory and the record do.
    let (owner, text) = lines[1];
    setup.bind.add(owner, 300, "TXT", text);
    let (_, order) = setup.client.new_order(&["*.printed.lab.test"]).await;
    let (authz_url, challenge) = setup.persist_challenges(&order).await.remove(0);
    let answered = setup
        .client
        .answer_challenge(challenge["url"].as_str().unwrap())
        .await;
    assert_eq!(answered["status"], "valid", "{answered}");
    let authz = setup.client.post(&authz_url, None).await.json();
    let expires = OffsetDateTime::parse(authz["expires"].as_str().unwrap(), &Rfc3339)
        .unwrap()
        .unix_timestamp();
    assert!(
        expires <= until && expires > now(),
        "persistUntil caps the authorization: {authz}"
    );

    // The same account's next order reuses it, within persistUntil.
    let (_, again) = setup.client.new_order(&["*.printed.lab.test"]).await;
    assert_eq!(again["authorizations"][0], json!(authz_url));
    assert_eq!(again["status"], "ready");

    // check-config accepts the profile, and refuses dns_persist with no
    // issuer domain name to offer.
    let checked = certgate_command()
        .args(["check-config", "--offline", "--config"])
        .arg(setup.args.config.as_ref().unwrap())
        .arg("--data-dir")
        .arg(&setup.args.data_dir)
        .output()
        .await
        .unwrap();
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stdout)
    );
    let nameless = setup.args.data_dir.join("nameless.toml");
    std::fs::write(
        &nameless,
        "[profiles.default]\nissuer = \"local\"\ndns_persist = true\n",
    )
    .unwrap();
    let refused = certgate_command()
        .args(["check-config", "--offline", "--config"])
        .arg(&nameless)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(
        !refused.status.success() && said.contains("dns_persist needs an issuer domain name"),
        "{said}"
    );

    // A profile without dns-persist-01 has no record to print.
    let refused = setup
        .print_record(&["--profile", "plain", "--account", &account])
        .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("does not offer dns-persist-01"), "{stderr}");
}
