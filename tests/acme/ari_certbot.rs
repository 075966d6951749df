//! ACME Renewal Information (RFC 9773) as certbot 5.x uses it, against the
//! built binary.
//!
//! What certbot 5 does, and so what these tests are built around:
//! - `certbot._internal.renewal.should_autorenew` asks
//!   `acme.client.ClientV2.renewal_time`, which fetches `renewalInfo/<certID>`
//!   and picks a uniformly random moment inside the suggested window; the
//!   certificate is renewed once that moment has passed.
//! - While an ARI answer says "not yet", certbot does not fall back to its
//!   lifetime rule (`_default_renewal_time`: half of a lifetime under ten
//!   days, else two thirds); that rule applies only when there is no ARI
//!   answer. `renew_before_expiry`, which would override both, is not set.
//! - certbot stores the server's Retry-After as `ari_retry_after` in the
//!   lineage's renewal configuration and does not ask again before then.
//! - Its newOrder carries no `replaces` (certbot 5.8); certgate's acceptance
//!   of one is shown with a newOrder signed by certbot's own account key.
//!
//! certbot comes from PyPI because Debian's predates ARI: `scripts/test.sh`
//! installs it into a virtualenv and names it in `CERTGATE_TEST_CERTBOT5`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::process::Command;
use x509_parser::extensions::ParsedExtension;

use certgate_testkit::clients::{only_entry, read_json, run_client};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{RawClient, Reply};

/// The variable naming certbot 5.x's executable.
const CERTBOT_ENV: &str = "CERTGATE_TEST_CERTBOT5";
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// certbot 5.x from `CERTGATE_TEST_CERTBOT5`. Fails (never skips) without it.
fn certbot5() -> PathBuf {
    let how = format!(
        "scripts/test.sh installs it; by hand: python3 -m venv target/certbot-venv && \
         target/certbot-venv/bin/pip install 'certbot>=5,<6' && \
         export {CERTBOT_ENV}=$PWD/target/certbot-venv/bin/certbot"
    );
    let program = std::env::var_os(CERTBOT_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!("{CERTBOT_ENV} is not set; it must name certbot 5.x from PyPI. {how}")
        });
    let output = std::process::Command::new(&program)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{CERTBOT_ENV}={} cannot be run ({e}); it must name certbot 5.x. {how}",
                program.display()
            )
        });
    let version = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && version.trim().starts_with("certbot 5."),
        "{CERTBOT_ENV}={} answers {:?} to --version, not certbot 5.x. {how}",
        program.display(),
        version.trim()
    );
    program
}

/// A leaf certificate as a client holds it.
#[derive(Debug, Clone, PartialEq)]
struct Leaf {
    /// Hex of the serial's DER content octets, as certgate stores it.
    serial: String,
    /// RFC 9773 §4.1, computed here independently of certgate.
    cert_id: String,
    not_before: i64,
    not_after: i64,
}

impl Leaf {
    fn read(path: &Path) -> Self {
        let text =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let pem = ::pem::parse(text).expect("a PEM certificate");
        let (_, cert) = x509_parser::parse_x509_certificate(pem.contents()).unwrap();
        let key_identifier = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })
            .expect("the leaf names its issuer's key identifier");
        let serial = cert.raw_serial();
        Self {
            serial: serial.iter().map(|b| format!("{b:02x}")).collect(),
            cert_id: format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(key_identifier),
                URL_SAFE_NO_PAD.encode(serial)
            ),
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        }
    }
}

/// certbot 5.x with its own config, work and log directories.
struct Certbot {
    program: PathBuf,
    dir: tempfile::TempDir,
    root_pem: PathBuf,
    http01_port: u16,
    /// Runs so far; each logs to its own directory, since certbot appends
    /// every run to the same file.
    runs: AtomicU32,
}

impl Certbot {
    fn new(root_pem: &Path, http01_port: u16) -> Self {
        Self {
            program: certbot5(),
            dir: tempfile::tempdir().unwrap(),
            root_pem: root_pem.to_owned(),
            http01_port,
            runs: AtomicU32::new(0),
        }
    }

    fn command(&self, subcommand: &str) -> Command {
        let dir = self.dir.path();
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let mut command = Command::new(&self.program);
        command
            .env("REQUESTS_CA_BUNDLE", &self.root_pem)
            .arg("--config-dir")
            .arg(dir.join("c"))
            .arg("--work-dir")
            .arg(dir.join("w"))
            .arg("--logs-dir")
            .arg(dir.join(format!("logs/{run}")))
            .args(["-n", subcommand]);
        command
    }

    /// A new lineage `name` from `directory`, over HTTP-01 on certgate's port.
    async fn certonly(&self, certgate: &CertgateProcess, directory: &str, name: &str) {
        let mut command = self.command("certonly");
        command
            .arg("--server")
            .arg(directory)
            .args(["--agree-tos", "--register-unsafely-without-email"])
            .args(["--key-type", "ecdsa", "--standalone"])
            .args(["--preferred-challenges", "http"])
            .args(["--http-01-address", "127.0.0.1", "--http-01-port"])
            .arg(self.http01_port.to_string())
            .args(["-d", name]);
        run_client(&format!("certbot certonly {name}"), command, &|| {
            certgate.log()
        })
        .await;
    }

    /// `certbot renew` as a timer runs it: without --force-renewal, each
    /// lineage with the server and settings it was issued with.
    async fn renew(&self, certgate: &CertgateProcess, only: Option<&str>) -> String {
        let mut command = self.command("renew");
        command.arg("--no-random-sleep-on-renew");
        if let Some(name) = only {
            command.args(["--cert-name", name]);
        }
        run_client("certbot renew", command, &|| certgate.log()).await
    }

    /// Revokes with the account key, keeping the lineage for renewal.
    async fn revoke(&self, certgate: &CertgateProcess, name: &str) {
        let mut command = self.command("revoke");
        command
            .args(["--cert-name", name])
            .arg("--no-delete-after-revoke");
        run_client("certbot revoke", command, &|| certgate.log()).await;
    }

    fn leaf(&self, name: &str) -> Leaf {
        Leaf::read(&self.dir.path().join("c/live").join(name).join("cert.pem"))
    }

    /// certbot's debug log of its latest run.
    fn last_log(&self) -> String {
        let run = self.runs.load(Ordering::SeqCst);
        let path = self.dir.path().join(format!("logs/{run}/letsencrypt.log"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
    }

    fn renewal_conf(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .join("c/renewal")
            .join(format!("{name}.conf"))
    }

    /// Sets the lineage's stored `ari_retry_after` into the past: what
    /// certbot sees once the Retry-After certgate sent (6 h) has elapsed.
    fn let_retry_after_elapse(&self, name: &str) {
        let path = self.renewal_conf(name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[acme_renewal_info]"),
            "certbot stored no ARI state in {}:\n{text}",
            path.display()
        );
        let mut found = false;
        let rewritten: Vec<String> = text
            .lines()
            .map(|line| {
                if line.trim_start().starts_with("ari_retry_after") {
                    found = true;
                    "ari_retry_after = 2000-01-01T00:00:00".to_owned()
                } else {
                    line.to_owned()
                }
            })
            .collect();
        assert!(found, "no ari_retry_after in {}:\n{text}", path.display());
        std::fs::write(&path, rewritten.join("\n") + "\n").unwrap();
    }

    /// The URL and private JWK of certbot's only account.
    fn account(&self) -> (String, josekit::jwk::Jwk) {
        // accounts/<host:port>/acme/directory/<account key hash>/
        let by_server = only_entry(&self.dir.path().join("c/accounts"));
        let account = only_entry(&by_server.join("acme/directory"));
        let regr = read_json(&account.join("regr.json"));
        let url = regr["uri"]
            .as_str()
            .expect("regr.json holds uri")
            .to_owned();
        let key = std::fs::read(account.join("private_key.json")).unwrap();
        (url, josekit::jwk::Jwk::from_bytes(key).unwrap())
    }
}

/// What `certbot renew` reported for lineage `name`: `success`, `skipped`
/// or `failure` (its summary lists `<live>/<name>/fullchain.pem (<outcome>)`).
fn outcome(output: &str, name: &str) -> Option<String> {
    let marker = format!("/live/{name}/fullchain.pem");
    output
        .lines()
        .map(str::trim_end)
        .filter(|line| line.contains(&marker) && line.ends_with(')'))
        .find_map(|line| {
            let open = line.rfind('(')?;
            Some(line[open + 1..line.len() - 1].to_owned())
        })
}

fn assert_outcome(output: &str, name: &str, expected: &str) {
    assert_eq!(
        outcome(output, name).as_deref(),
        Some(expected),
        "certbot renew's outcome for {name}\n--- certbot output ---\n{output}"
    );
}

/// Whether certbot's log shows it asked certgate for this certificate's
/// renewal information.
fn asked_ari(log: &str, renewal_info: &str, cert_id: &str) -> bool {
    log.contains(&format!("Sending GET request to {renewal_info}/{cert_id}."))
}

/// certgate's ARI endpoint, read as a client reads it.
struct Ari {
    http: reqwest::Client,
    /// The directory's `renewalInfo`.
    base: String,
}

impl Ari {
    async fn new(directory: &str, root_pem: &Path) -> Self {
        let http = certgate_testkit::raw_client::https_trusting(root_pem);
        let directory: Value = http
            .get(directory)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let base = directory["renewalInfo"]
            .as_str()
            .expect("the directory names renewalInfo")
            .to_owned();
        Self { http, base }
    }

    /// The suggested window (unix seconds) for a certificate.
    async fn window(&self, cert_id: &str) -> (i64, i64) {
        let response = self
            .http
            .get(format!("{}/{cert_id}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "renewalInfo for {cert_id}");
        let body: Value = response.json().await.unwrap();
        let at = |key: &str| {
            let text = body["suggestedWindow"][key]
                .as_str()
                .unwrap_or_else(|| panic!("suggestedWindow.{key} in {body}"));
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("suggestedWindow.{key} {text:?}: {e}"))
                .unix_timestamp()
        };
        (at("start"), at("end"))
    }
}

/// certgate's database, read-only beside the running server (WAL).
struct Db {
    conn: sqlx::SqliteConnection,
}

impl Db {
    async fn open(data_dir: &Path) -> Self {
        let conn = certgate_testkit::database::open_read_only(data_dir).await;
        Self { conn }
    }

    /// (order id, replaces) of every order for exactly the identifier `name`.
    async fn orders_for(&mut self, name: &str) -> Vec<(String, Option<String>)> {
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT id, identifiers, replaces FROM orders ORDER BY created_at, id")
                .fetch_all(&mut self.conn)
                .await
                .unwrap();
        rows.into_iter()
            .filter(|(_, identifiers, _)| {
                let identifiers: Value = serde_json::from_str(identifiers).unwrap();
                identifiers == json!([{"type": "dns", "value": name}])
            })
            .map(|(id, _, replaces)| (id, replaces))
            .collect()
    }

    /// (certificate id, order id, revoked_at) of the certificate with this serial.
    async fn certificate(&mut self, leaf: &Leaf) -> (String, String, Option<i64>) {
        sqlx::query_as("SELECT id, order_id, revoked_at FROM certificates WHERE serial = ?")
            .bind(&leaf.serial)
            .fetch_optional(&mut self.conn)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("certgate stored no certificate with serial {}", leaf.serial))
    }

    async fn replaces_of(&mut self, order_id: &str) -> Option<String> {
        sqlx::query_scalar("SELECT replaces FROM orders WHERE id = ?")
            .bind(order_id)
            .fetch_one(&mut self.conn)
            .await
            .unwrap()
    }

    async fn close(self) {
        self.conn.close().await.unwrap();
    }
}

/// newOrder signed with certbot's own account key (certbot's accounts are
/// RSA; an EC P-256 key is handled too).
async fn new_order_as_certbot(
    certbot: &Certbot,
    directory: &str,
    root_pem: &Path,
    payload: Value,
) -> Reply {
    let (kid, jwk) = certbot.account();
    let (alg, signer): (&str, Box<dyn josekit::jws::JwsSigner>) = match jwk.key_type() {
        "RSA" => (
            "RS256",
            Box::new(josekit::jws::RS256.signer_from_jwk(&jwk).unwrap()),
        ),
        "EC" => (
            "ES256",
            Box::new(josekit::jws::ES256.signer_from_jwk(&jwk).unwrap()),
        ),
        other => panic!("certbot's account key is of type {other}"),
    };
    let client = RawClient::new(directory, root_pem).await;
    let url = client.url("newOrder");
    let header = json!({"alg": alg, "kid": kid, "nonce": client.nonce().await, "url": url});
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let protected = b64(&serde_json::to_vec(&header).unwrap());
    let payload = b64(&serde_json::to_vec(&payload).unwrap());
    let signature = signer
        .sign(format!("{protected}.{payload}").as_bytes())
        .unwrap();
    let jws = json!({"protected": protected, "payload": payload, "signature": b64(&signature)});
    client.send_jws(&url, &jws).await
}

/// A 90-day certificate is not renewed while its window lies ahead; once
/// revoked, certgate moves its window into the past and certbot renews it,
/// while an identical certificate beside it stays. The new order's
/// `replaces` is checked, or shown to be accepted from certbot's account.
#[tokio::test(flavor = "multi_thread")]
async fn certbot_renews_a_revoked_certificate_and_not_one_whose_window_lies_ahead() {
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    let root_pem = data_dir.path().join("ca/root.pem");
    let directory = format!("https://{}/acme/directory", args.listen);
    let certgate = CertgateProcess::start(&args).await;
    let certbot = Certbot::new(&root_pem, args.http01_port);
    let ari = Ari::new(&directory, &root_pem).await;
    let (kept, revoked) = ("kept.example.test", "revoked.example.test");

    certbot.certonly(&certgate, &directory, kept).await;
    certbot.certonly(&certgate, &directory, revoked).await;
    let kept_leaf = certbot.leaf(kept);
    let old_leaf = certbot.leaf(revoked);
    for leaf in [&kept_leaf, &old_leaf] {
        let (start, _) = ari.window(&leaf.cert_id).await;
        assert!(
            start > unix_now() + 30 * 86_400,
            "a fresh 90-day certificate's window is weeks ahead: {leaf:?} starts {start}"
        );
    }

    // 1. Nothing is due: certbot asks ARI for each and renews neither.
    let output = certbot.renew(&certgate, None).await;
    let log = certbot.last_log();
    for (name, leaf) in [(kept, &kept_leaf), (revoked, &old_leaf)] {
        assert_outcome(&output, name, "skipped");
        assert!(
            asked_ari(&log, &ari.base, &leaf.cert_id),
            "certbot asked renewalInfo for {name}\n--- certbot log ---\n{log}"
        );
        assert_eq!(&certbot.leaf(name), leaf, "{name} is unchanged");
    }
    let mut db = Db::open(data_dir.path()).await;
    assert_eq!(
        db.orders_for(kept).await.len(),
        1,
        "no new order for {kept}"
    );
    assert_eq!(
        db.orders_for(revoked).await.len(),
        1,
        "no new order for {revoked}"
    );

    // 2. Revoked: certgate's window for it now lies in the past.
    certbot.revoke(&certgate, revoked).await;
    let (old_id, _, revoked_at) = db.certificate(&old_leaf).await;
    assert!(revoked_at.is_some(), "certgate recorded the revocation");
    let (_, end) = ari.window(&old_leaf.cert_id).await;
    assert!(end < unix_now(), "a revoked certificate's window is past");

    // certbot keeps to the Retry-After it was given and does not ask again
    // yet, so without ARI its lifetime rule says not due.
    let output = certbot.renew(&certgate, Some(revoked)).await;
    let log = certbot.last_log();
    assert_outcome(&output, revoked, "skipped");
    assert!(
        log.contains("Skipped ACME Renewal Info check because ari_retry_after")
            && !asked_ari(&log, &ari.base, &old_leaf.cert_id),
        "certbot waits out Retry-After before asking again\n--- certbot log ---\n{log}"
    );
    assert_eq!(certbot.leaf(revoked), old_leaf);

    // Once Retry-After has elapsed, the revoked one alone is renewed.
    certbot.let_retry_after_elapse(kept);
    certbot.let_retry_after_elapse(revoked);
    let output = certbot.renew(&certgate, None).await;
    let log = certbot.last_log();
    assert_outcome(&output, kept, "skipped");
    assert_outcome(&output, revoked, "success");
    for leaf in [&kept_leaf, &old_leaf] {
        assert!(
            asked_ari(&log, &ari.base, &leaf.cert_id),
            "certbot asked renewalInfo for {leaf:?}\n--- certbot log ---\n{log}"
        );
    }
    assert_eq!(certbot.leaf(kept), kept_leaf, "{kept} is unchanged");
    let new_leaf = certbot.leaf(revoked);
    assert_ne!(new_leaf.serial, old_leaf.serial, "{revoked} was renewed");
    assert_eq!(
        db.orders_for(kept).await.len(),
        1,
        "no new order for {kept}"
    );
    assert_eq!(db.orders_for(revoked).await.len(), 2, "one renewal order");

    // 3. `replaces`: what certbot's order carries, else a newOrder with it
    // from certbot's account.
    let (_, new_order, _) = db.certificate(&new_leaf).await;
    match db.replaces_of(&new_order).await {
        Some(replaced) => assert_eq!(replaced, old_id, "certbot's order replaces the old one"),
        None => {
            let reply = new_order_as_certbot(
                &certbot,
                &directory,
                &root_pem,
                json!({
                    "identifiers": [{"type": "dns", "value": revoked}],
                    "replaces": old_leaf.cert_id,
                }),
            )
            .await;
            assert_eq!(
                reply.status,
                201,
                "newOrder with replaces: {:?}",
                reply.json()
            );
            let order_id = reply
                .header("location")
                .and_then(|l| l.rsplit('/').next())
                .unwrap()
                .to_owned();
            assert_eq!(
                db.replaces_of(&order_id).await,
                Some(old_id.clone()),
                "certgate records the replaced certificate"
            );
        }
    }
    db.close().await;
}

/// Two certificates of the same short lifetime from profiles that differ
/// only in `renewal_window_start`: once the early one's window has passed
/// and both are past half their life (where certbot's own rule for short
/// certificates would renew), one `certbot renew` renews the early one and
/// leaves the late one, whose window lies ahead. Only ARI tells them apart;
/// with ARI out of the way, certbot's rule renews the late one as well.
#[tokio::test(flavor = "multi_thread")]
async fn certbot_renews_once_the_window_has_passed_and_not_before() {
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("certgate.toml");
    std::fs::write(
        &config,
        "[profiles.default]\nissuer = \"local\"\n\
         [profiles.early]\nissuer = \"local\"\nttl = \"45s\"\nrenewal_window_start = 0.1\n\
         [profiles.late]\nissuer = \"local\"\nttl = \"45s\"\nrenewal_window_start = 0.99\n",
    )
    .unwrap();
    let args = ServeArgs::new(data_dir.path(), dns.addr(), Some(config));
    let root_pem = data_dir.path().join("ca/root.pem");
    let profile_directory =
        |profile: &str| format!("https://{}/acme/{profile}/directory", args.listen);
    let certgate = CertgateProcess::start(&args).await;
    let certbot = Certbot::new(&root_pem, args.http01_port);
    let ari = Ari::new(&profile_directory("early"), &root_pem).await;
    let (early, late) = ("early.example.test", "late.example.test");

    // The late one first, so that it is the older of the two.
    certbot
        .certonly(&certgate, &profile_directory("late"), late)
        .await;
    certbot
        .certonly(&certgate, &profile_directory("early"), early)
        .await;
    let early_leaf = certbot.leaf(early);
    let late_leaf = certbot.leaf(late);
    let lifetime = late_leaf.not_after - late_leaf.not_before;
    assert!(
        (early_leaf.not_after - early_leaf.not_before - lifetime).abs() <= 1,
        "both certificates have the same lifetime: {early_leaf:?} {late_leaf:?}"
    );

    // Wait, by asking certgate, until the early window has passed.
    let deadline = unix_now() + 60;
    loop {
        let (_, end) = ari.window(&early_leaf.cert_id).await;
        if end < unix_now() {
            break;
        }
        assert!(
            unix_now() < deadline,
            "the early window (ending {end}) did not pass"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // certbot's rule without ARI: renew after half the lifetime (under 10 days).
    let half_life = late_leaf.not_before + lifetime / 2 + 1;
    while unix_now() <= half_life {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (late_start, _) = ari.window(&late_leaf.cert_id).await;

    let output = certbot.renew(&certgate, None).await;
    let finished = unix_now();
    assert!(
        finished < late_start && finished < early_leaf.not_after,
        "certbot renew ended at {finished}, after the late window opened ({late_start}) \
         or the early certificate expired ({}); too slow for this test to mean anything",
        early_leaf.not_after
    );
    let log = certbot.last_log();
    for leaf in [&early_leaf, &late_leaf] {
        assert!(
            asked_ari(&log, &ari.base, &leaf.cert_id),
            "certbot asked renewalInfo for {leaf:?}\n--- certbot log ---\n{log}"
        );
    }
    assert_outcome(&output, early, "success");
    assert_outcome(&output, late, "skipped");
    assert_ne!(
        certbot.leaf(early).serial,
        early_leaf.serial,
        "{early} was renewed"
    );
    assert_eq!(certbot.leaf(late), late_leaf, "{late} is unchanged");
    let mut db = Db::open(data_dir.path()).await;
    assert_eq!(db.orders_for(early).await.len(), 2, "one renewal order");
    assert_eq!(
        db.orders_for(late).await.len(),
        1,
        "no new order for {late}"
    );

    // The control: within the Retry-After certgate sent, certbot does not ask
    // again, and without an ARI answer its own rule renews the late one at
    // once. So it was ARI that held it back above.
    let output = certbot.renew(&certgate, Some(late)).await;
    let log = certbot.last_log();
    assert!(
        log.contains("Skipped ACME Renewal Info check because ari_retry_after")
            && !asked_ari(&log, &ari.base, &late_leaf.cert_id),
        "certbot did not ask ARI again\n--- certbot log ---\n{log}"
    );
    assert_outcome(&output, late, "success");
    assert_ne!(certbot.leaf(late).serial, late_leaf.serial);
    assert_eq!(db.orders_for(late).await.len(), 2, "one renewal order");
    db.close().await;
}
