//! External account binding (RFC 8555 §7.3.4): keys made with the built
//! binary's `certgate eab create` while the server runs, used by lego and
//! certbot, and by a raw client for everything a real client would never
//! send: no binding, a wrong MAC, a key used twice, a revoked or expired
//! key, and orders outside a key's `--names`.

use std::path::PathBuf;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tokio::process::Command;

use certgate_testkit::clients::{certbot_command, leaf_sans, require_tool, run_client};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::eab::{binding, certgate_eab, create_key, new_account, register, EabKey};
use certgate_testkit::instance::Instance;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{challenge_of, csr, RawClient};

/// Two profiles: `default` needs a binding, `open` needs none.
const CONFIG: &str = "[profiles.default]\nissuer = \"local\"\neab = \"required\"\n\
                      [profiles.open]\nissuer = \"local\"\neab = \"off\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn lego_and_certbot_issue_with_external_account_binding() {
    require_tool("lego", "lego");
    require_tool("certbot", "certbot");

    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("certgate.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let args = ServeArgs::new(data_dir.path(), dns.addr(), Some(config.clone()));
    let mut certgate = CertgateProcess::start(&args).await;
    let root_pem = data_dir.path().join("ca/root.pem");
    let directory = format!("https://{}/acme/directory", args.listen);

    // Keys are made while the server runs, and bind without a restart.
    let lego_key = create_key(data_dir.path(), &config, &["--note", "lego"]).await;
    let certbot_key = create_key(
        data_dir.path(),
        &config,
        &["--names", "certbot.example.test", "--expires", "1h"],
    )
    .await;

    let lego_dir = tempfile::tempdir().unwrap();
    let mut lego = Command::new("lego");
    lego.env("LEGO_CA_CERTIFICATES", &root_pem)
        .arg("--server")
        .arg(&directory)
        .arg("--path")
        .arg(lego_dir.path())
        .args(["--email", "lego@example.test", "--accept-tos"])
        .args(["--key-type", "ec256", "--http", "--http.port"])
        .arg(format!("127.0.0.1:{}", args.http01_port))
        .args(["--eab", "--kid", &lego_key.kid, "--hmac", &lego_key.hmac])
        .args(["-d", "lego.example.test", "run"]);
    run_client("lego run", lego, &|| certgate.log()).await;
    assert_eq!(
        leaf_sans(&lego_dir.path().join("certificates/lego.example.test.crt")),
        ["lego.example.test"]
    );

    let certbot_dir = tempfile::tempdir().unwrap();
    let dir = certbot_dir.path();
    let mut certbot = certbot_command(dir, &root_pem, &directory);
    certbot
        .args(["certonly", "--standalone"])
        .args(["--preferred-challenges", "http"])
        .args(["--http-01-address", "127.0.0.1", "--http-01-port"])
        .arg(args.http01_port.to_string())
        .args(["--register-unsafely-without-email", "--key-type", "ecdsa"])
        // The `=` form: an HMAC key may start with '-'.
        .arg(format!("--eab-kid={}", certbot_key.kid))
        .arg(format!("--eab-hmac-key={}", certbot_key.hmac))
        .args(["-d", "certbot.example.test"]);
    run_client("certbot certonly", certbot, &|| certgate.log()).await;
    assert_eq!(
        leaf_sans(&dir.join("c/live/certbot.example.test/cert.pem")),
        ["certbot.example.test"]
    );

    let listing = certgate_eab(data_dir.path(), &config, &["list"]).await;
    for key in [&lego_key, &certbot_key] {
        let line = listing
            .lines()
            .find(|l| l.starts_with(&format!("kid={} ", key.kid)))
            .unwrap_or_else(|| panic!("{} not listed:\n{listing}", key.kid));
        assert!(line.contains("state=bound:"), "{line}");
        assert!(!listing.contains(&key.hmac), "list never shows HMAC keys");
    }
    let json = certgate_eab(data_dir.path(), &config, &["list", "--json"]).await;
    let keys: Vec<serde_json::Value> = serde_json::from_str(&json).expect(&json);
    for key in [&lego_key, &certbot_key] {
        let entry = keys
            .iter()
            .find(|k| k["kid"] == key.kid.as_str())
            .unwrap_or_else(|| panic!("{} not in the JSON listing:\n{json}", key.kid));
        assert_eq!(entry["state"], "bound", "{entry}");
        assert_eq!(entry["profile"], "default", "{entry}");
        assert!(
            entry["account"].is_string() && entry["bound"].is_string(),
            "{entry}"
        );
        assert!(
            !json.contains(&key.hmac),
            "the JSON listing never shows HMAC keys"
        );
    }
    let log = certgate.log();
    assert!(
        !log.contains(&lego_key.hmac) && !log.contains(&certbot_key.hmac),
        "HMAC keys are never logged"
    );
    assert!(certgate.stop().await.success());
}

async fn order(
    client: &RawClient,
    names: &[&str],
    profile: Option<&str>,
) -> certgate_testkit::raw_client::Reply {
    let identifiers: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    let mut payload = json!({"identifiers": identifiers});
    if let Some(profile) = profile {
        payload["profile"] = json!(profile);
    }
    client.post(&client.url("newOrder"), Some(payload)).await
}

struct Setup {
    instance: Instance,
    config: PathBuf,
}

impl Setup {
    async fn start() -> Self {
        let instance = Instance::start_with_config(Some(CONFIG.to_owned())).await;
        let config = instance.data_dir.path().join("certgate.toml");
        Self { instance, config }
    }

    async fn key(&self, extra: &[&str]) -> EabKey {
        create_key(self.instance.data_dir.path(), &self.config, extra).await
    }

    async fn client(&self) -> RawClient {
        RawClient::new(
            &self.instance.directory_url(),
            &self.instance.root_pem_path(),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_account_needs_a_valid_unused_binding() {
    let setup = Setup::start().await;
    let client = setup.client().await;
    assert_eq!(client.directory["meta"]["externalAccountRequired"], true);

    // No binding.
    let reply = new_account(&client, None).await;
    assert_eq!(
        reply.problem_type(),
        "externalAccountRequired",
        "{:?}",
        reply.json()
    );
    assert_eq!(reply.status, 403);

    // A wrong HMAC key, and a binding for another URL or another key.
    let key = setup.key(&[]).await;
    let url = client.url("newAccount");
    let wrong = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let reply = new_account(&client, Some(binding(&client, &key.kid, &wrong, &url))).await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
    assert!(reply.json()["detail"].as_str().unwrap().contains("MAC"));
    let other_url = format!("{}/acme/open/new-account", setup.instance.base_url());
    let reply = new_account(
        &client,
        Some(binding(&client, &key.kid, &key.hmac, &other_url)),
    )
    .await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
    let stranger = setup.client().await;
    let reply = new_account(&client, Some(binding(&stranger, &key.kid, &key.hmac, &url))).await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
    let reply = new_account(
        &client,
        Some(binding(&client, "no-such-kid", &key.hmac, &url)),
    )
    .await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
    let reply = new_account(
        &client,
        Some(json!({"protected": "e30", "payload": "", "signature": ""})),
    )
    .await;
    assert_eq!(reply.problem_type(), "malformed", "{:?}", reply.json());

    // The right key binds; asking again with the same account key returns the account.
    let mut first = client;
    register(&mut first, &key).await;
    let account_url = first.kid.take();
    let again = new_account(&first, Some(binding(&first, &key.kid, &key.hmac, &url))).await;
    assert_eq!(again.status, 200, "{:?}", again.json());
    assert_eq!(again.header("location"), account_url.as_deref());

    // A second account cannot use the same key.
    let second = setup.client().await;
    let reply = new_account(&second, Some(binding(&second, &key.kid, &key.hmac, &url))).await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
    assert!(
        reply.json()["detail"]
            .as_str()
            .unwrap()
            .contains("already bound"),
        "{:?}",
        reply.json()
    );
    assert_eq!(
        reply.json()["detail"]
            .as_str()
            .map(|d| d.contains(&key.hmac)),
        Some(false)
    );

    // A revoked key is refused.
    let revoked = setup.key(&[]).await;
    let out = certgate_eab(
        setup.instance.data_dir.path(),
        &setup.config,
        &["revoke", &revoked.kid],
    )
    .await;
    assert!(out.contains("revoked"), "{out}");
    let reply = new_account(
        &second,
        Some(binding(&second, &revoked.kid, &revoked.hmac, &url)),
    )
    .await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
    assert!(reply.json()["detail"].as_str().unwrap().contains("revoked"));

    // An expired key is refused.
    let expiring = setup.key(&["--expires", "1s"]).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let reply = new_account(
        &second,
        Some(binding(&second, &expiring.kid, &expiring.hmac, &url)),
    )
    .await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
    assert!(reply.json()["detail"].as_str().unwrap().contains("expired"));

    // None of the refusals left an account behind.
    let accounts = setup
        .instance
        .store()
        .account_by_thumbprint(&second.thumbprint())
        .await
        .unwrap();
    assert!(accounts.is_none(), "a refused binding creates no account");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_key_binds_one_account_even_when_two_race() {
    let setup = Setup::start().await;
    let key = setup.key(&[]).await;
    let clients = [setup.client().await, setup.client().await];
    let url = clients[0].url("newAccount");
    let (a, b) = tokio::join!(
        new_account(
            &clients[0],
            Some(binding(&clients[0], &key.kid, &key.hmac, &url))
        ),
        new_account(
            &clients[1],
            Some(binding(&clients[1], &key.kid, &key.hmac, &url))
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 403], "{:?} {:?}", a.json(), b.json());
    let mut bound = 0;
    for client in &clients {
        if setup
            .instance
            .store()
            .account_by_thumbprint(&client.thumbprint())
            .await
            .unwrap()
            .is_some()
        {
            bound += 1;
        }
    }
    assert_eq!(bound, 1, "exactly one account exists");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_names_limited_key_orders_only_its_names() {
    let setup = Setup::start().await;
    let key = setup
        .key(&[
            "--names",
            "nas.lab.example,*.nas.lab.example",
            "--note",
            "the NAS",
        ])
        .await;
    let mut client = setup.client().await;
    register(&mut client, &key).await;

    let refused = order(&client, &["other.lab.example"], None).await;
    assert_eq!(
        refused.problem_type(),
        "rejectedIdentifier",
        "{:?}",
        refused.json()
    );
    let mixed = order(
        &client,
        &["nas.lab.example", "other.lab.example", "lab.example"],
        None,
    )
    .await;
    assert_eq!(
        mixed.problem_type(),
        "rejectedIdentifier",
        "{:?}",
        mixed.json()
    );
    let refused: Vec<String> = mixed.json()["subproblems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["identifier"]["value"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        refused,
        ["other.lab.example", "lab.example"],
        "one subproblem per refused name"
    );
    // Another profile's directory does not lift the limit either.
    let elsewhere = order(&client, &["other.lab.example"], Some("open")).await;
    assert_eq!(
        elsewhere.problem_type(),
        "rejectedIdentifier",
        "{:?}",
        elsewhere.json()
    );

    for names in [
        &["nas.lab.example"][..],
        &["nas.lab.example", "*.nas.lab.example"],
    ] {
        let reply = order(&client, names, None).await;
        assert_eq!(reply.status, 201, "{names:?}: {:?}", reply.json());
    }

    // Revoking the key stops its account from ordering.
    certgate_eab(
        setup.instance.data_dir.path(),
        &setup.config,
        &["revoke", &key.kid],
    )
    .await;
    let reply = order(&client, &["nas.lab.example"], None).await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_without_a_binding_cannot_order_in_a_profile_that_requires_one() {
    let setup = Setup::start().await;
    let mut open = RawClient::new(
        &setup.instance.profile_directory_url("open"),
        &setup.instance.root_pem_path(),
    )
    .await;
    assert_eq!(open.directory["meta"]["externalAccountRequired"], false);
    open.register().await;
    let reply = order(&open, &["host.example.test"], None).await;
    assert_eq!(
        reply.status,
        201,
        "the open profile needs no binding: {:?}",
        reply.json()
    );
    let reply = order(&open, &["host.example.test"], Some("default")).await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
}

#[tokio::test]
async fn the_database_holds_no_usable_hmac_key() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("certgate.db").display());
    let store = certgate::store::Store::open(&url).await.unwrap();
    let keyring = certgate::domain::eab::Keyring::at(&dir.path().join("eab.key"));
    let created = certgate::domain::eab::create_key(
        &store,
        &keyring,
        "default",
        Some(certgate::domain::eab::NamesLimit::parse("nas.lab.example").unwrap()),
        None,
        Some("the NAS".into()),
        1_700_000_000,
    )
    .await
    .unwrap();
    let encoded = created.hmac_key.encoded();
    let raw = URL_SAFE_NO_PAD.decode(&encoded).unwrap();
    assert_eq!(raw.len(), 32);

    let record = store.eab_key(&created.record.kid).await.unwrap().unwrap();
    for column in [&record.key_ciphertext, &record.key_nonce] {
        assert!(!contains(column, &raw));
        assert!(!contains(column, encoded.as_bytes()));
    }
    // Everything SQLite wrote: the database and its write-ahead log, read
    // while the log still holds the writes and again after the close has
    // checkpointed (and usually deleted) it.
    let no_key_on_disk = || {
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("certgate.db")
            {
                continue;
            }
            let bytes = match std::fs::read(&path) {
                Ok(bytes) => bytes,
                // Checkpointed away between listing and reading.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => panic!("reading {}: {e}", path.display()),
            };
            assert!(
                !contains(&bytes, &raw),
                "{} has the raw key",
                path.display()
            );
            assert!(
                !contains(&bytes, encoded.as_bytes()),
                "{} has the encoded key",
                path.display()
            );
        }
    };
    no_key_on_disk();
    store.close().await;
    no_key_on_disk();
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(keyring.path())
            .unwrap()
            .permissions()
            .mode()
    };
    assert_eq!(mode & 0o777, 0o600, "eab.key is private to its owner");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Issue 14: revoking a key stops its account at every step, not only at
/// newOrder. An order already ready cannot be finalized, and a pending
/// one's challenge cannot be started; with `--deactivate-account` the
/// account itself is gone.
#[tokio::test(flavor = "multi_thread")]
async fn revoking_a_key_stops_what_its_account_already_started() {
    let setup = Setup::start().await;
    let http01 = &setup.instance.http01;
    let key = setup.key(&[]).await;
    let mut client = setup.client().await;
    register(&mut client, &key).await;

    let (_, ready) = client.ready_order(http01, &["ready.lab.example"]).await;
    let (_, pending) = client.new_order(&["pending.lab.example"]).await;
    let authz_url = pending["authorizations"][0].as_str().unwrap();
    let authz = client.post(authz_url, None).await.json();
    let challenge = challenge_of(&authz, "http-01");
    let token = challenge["token"].as_str().unwrap();
    http01.serve(token, &format!("{token}.{}", client.thumbprint()));

    certgate_eab(
        setup.instance.data_dir.path(),
        &setup.config,
        &["revoke", &key.kid],
    )
    .await;

    let started = client
        .post(challenge["url"].as_str().unwrap(), Some(json!({})))
        .await;
    assert_eq!(started.status, 403, "{:?}", started.json());
    assert_eq!(started.problem_type(), "unauthorized");
    assert!(started.json()["detail"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    let authz = client.post(authz_url, None).await.json();
    assert_eq!(authz["status"], "pending", "nothing was validated: {authz}");

    let cert_key = rcgen::KeyPair::generate().unwrap();
    let finalized = client
        .post(
            ready["finalize"].as_str().unwrap(),
            Some(json!({"csr": csr(&["ready.lab.example"], &cert_key)})),
        )
        .await;
    assert_eq!(finalized.status, 403, "{:?}", finalized.json());
    assert_eq!(finalized.problem_type(), "unauthorized");

    // Reading stays open to the account.
    let account = client.post(client.kid.as_deref().unwrap(), None).await;
    assert_eq!(account.status, 200, "{:?}", account.json());

    // The operator's harder choice: the bound account is deactivated too.
    let other = setup.key(&[]).await;
    let mut second = setup.client().await;
    register(&mut second, &other).await;
    let (second_order_url, _) = second.new_order(&["second.lab.example"]).await;
    let out = certgate_eab(
        setup.instance.data_dir.path(),
        &setup.config,
        &["revoke", &other.kid, "--deactivate-account"],
    )
    .await;
    assert!(out.contains("deactivated account"), "{out}");
    let reply = second.post(second.kid.as_deref().unwrap(), None).await;
    assert_eq!(reply.problem_type(), "unauthorized", "{:?}", reply.json());
    assert_eq!(reply.status, 401, "RFC 8555 §7.3.6: {:?}", reply.json());
    let order = setup
        .instance
        .store()
        .order(second_order_url.rsplit('/').next().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.status.to_string(), "invalid", "pending orders end");
}
