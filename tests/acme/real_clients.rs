//! Real ACME clients against the built certgate binary: certbot and lego, as
//! Debian packages them, each get a two-name certificate over HTTP-01, then
//! renew with their existing accounts after certgate was restarted on the
//! same data directory. What the clients forgive and what they don't is the
//! point of this test, so nothing here is simulated.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sqlx::Connection;
use tokio::process::Command;

use certgate_testkit::clients::{
    certbot_command, check_certificate, only_entry, read_json, require_tool, run_client,
};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::process::{CertgateProcess, ServeArgs};

const LEGO_NAMES: [&str; 2] = ["host1.example.test", "host2.example.test"];
const CERTBOT_NAMES: [&str; 2] = ["host3.example.test", "host4.example.test"];

/// lego with its own working directory. Its account is stored under the
/// server's host and port, which is why certgate restarts on the same port.
struct Lego {
    dir: tempfile::TempDir,
    directory: String,
    root_pem: PathBuf,
    http01_port: u16,
}

impl Lego {
    fn command(&self) -> Command {
        let mut command = Command::new("lego");
        command
            .env("LEGO_CA_CERTIFICATES", &self.root_pem)
            .arg("--server")
            .arg(&self.directory)
            .arg("--path")
            .arg(self.dir.path())
            .args(["--email", "lego@example.test", "--accept-tos"])
            .args(["--key-type", "ec256", "--http", "--http.port"])
            .arg(format!("127.0.0.1:{}", self.http01_port));
        for name in LEGO_NAMES {
            command.args(["-d", name]);
        }
        command
    }

    async fn run(&self, certgate: &CertgateProcess) {
        let mut command = self.command();
        command.arg("run");
        run_client("lego run", command, &|| certgate.log()).await;
    }

    async fn renew(&self, certgate: &CertgateProcess) {
        let mut command = self.command();
        command.args(["renew", "--days", "99999", "--no-random-sleep"]);
        run_client("lego renew", command, &|| certgate.log()).await;
    }

    /// The leaf followed by the issuer.
    fn bundle(&self) -> PathBuf {
        self.certificates().join(format!("{}.crt", LEGO_NAMES[0]))
    }

    fn issuer(&self) -> PathBuf {
        self.certificates()
            .join(format!("{}.issuer.crt", LEGO_NAMES[0]))
    }

    fn certificates(&self) -> PathBuf {
        self.dir.path().join("certificates")
    }

    fn account_url(&self) -> String {
        let accounts = only_entry(&self.dir.path().join("accounts"));
        let account = read_json(&accounts.join("lego@example.test/account.json"));
        account["registration"]["uri"]
            .as_str()
            .expect("lego's account.json holds registration.uri")
            .to_owned()
    }
}

/// certbot with its own config, work and log directories.
struct Certbot {
    dir: tempfile::TempDir,
    directory: String,
    root_pem: PathBuf,
    http01_port: u16,
}

impl Certbot {
    fn command(&self) -> Command {
        certbot_command(self.dir.path(), &self.root_pem, &self.directory)
    }

    /// Flags for the standalone HTTP-01 responder, on certgate's port.
    fn standalone(&self, command: &mut Command) {
        command
            .args(["--standalone", "--preferred-challenges", "http"])
            .args(["--http-01-address", "127.0.0.1", "--http-01-port"])
            .arg(self.http01_port.to_string());
    }

    async fn certonly(&self, certgate: &CertgateProcess) {
        let mut command = self.command();
        command.arg("certonly");
        self.standalone(&mut command);
        command.args(["--register-unsafely-without-email", "--key-type", "ecdsa"]);
        for name in CERTBOT_NAMES {
            command.args(["-d", name]);
        }
        run_client("certbot certonly", command, &|| certgate.log()).await;
    }

    async fn renew(&self, certgate: &CertgateProcess) {
        let mut command = self.command();
        command.args(["renew", "--force-renewal", "--no-random-sleep-on-renew"]);
        command.args(["--cert-name", CERTBOT_NAMES[0]]);
        self.standalone(&mut command);
        run_client("certbot renew", command, &|| certgate.log()).await;
    }

    fn live(&self) -> PathBuf {
        self.dir.path().join("c/live").join(CERTBOT_NAMES[0])
    }

    fn account_url(&self) -> String {
        // accounts/<host:port>/acme/directory/<account key hash>/regr.json
        let by_server = only_entry(&self.dir.path().join("c/accounts"));
        let account = only_entry(&by_server.join("acme/directory"));
        read_json(&account.join("regr.json"))["uri"]
            .as_str()
            .expect("certbot's regr.json holds uri")
            .to_owned()
    }
}

/// Checks the certificate each client holds now; returns (lego's serial, certbot's).
async fn check_both(
    phase: &str,
    root_pem: &Path,
    lego: &Lego,
    certbot: &Certbot,
) -> (String, String) {
    let lego_serial = check_certificate(
        &format!("lego {phase}"),
        root_pem,
        &lego.bundle(),
        &lego.issuer(),
        &LEGO_NAMES,
    )
    .await;
    let certbot_serial = check_certificate(
        &format!("certbot {phase}"),
        root_pem,
        &certbot.live().join("cert.pem"),
        &certbot.live().join("chain.pem"),
        &CERTBOT_NAMES,
    )
    .await;
    (lego_serial, certbot_serial)
}

/// Account ids in certgate's database, read with certgate stopped.
async fn account_ids(data_dir: &Path) -> BTreeSet<String> {
    let mut db = certgate_testkit::database::open_read_only(data_dir).await;
    let ids = sqlx::query_scalar::<_, String>("SELECT id FROM accounts")
        .fetch_all(&mut db)
        .await
        .expect("reading accounts");
    db.close().await.unwrap();
    ids.into_iter().collect()
}

/// The account id is the last segment of the account URL.
fn account_id(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

async fn stop(certgate: &mut CertgateProcess) {
    let status = certgate.stop().await;
    assert!(
        status.success(),
        "certgate did not stop cleanly on SIGTERM ({status})\n--- certgate log ---\n{}",
        certgate.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn certbot_and_lego_issue_and_renew_across_a_restart() {
    require_tool("certbot", "certbot");
    require_tool("lego", "lego");
    require_tool("openssl", "openssl");

    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    // Both clients answer HTTP-01 on `args.http01_port`, one after the other; the
    // listen port stays the same across the restart because both clients
    // file their accounts under the server's host and port.
    let args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    let root_pem = data_dir.path().join("ca/root.pem");
    let directory = format!("https://{}/acme/directory", args.listen);
    let lego = Lego {
        dir: tempfile::tempdir().unwrap(),
        directory: directory.clone(),
        root_pem: root_pem.clone(),
        http01_port: args.http01_port,
    };
    let certbot = Certbot {
        dir: tempfile::tempdir().unwrap(),
        directory,
        root_pem: root_pem.clone(),
        http01_port: args.http01_port,
    };

    // First issuance.
    let mut certgate = CertgateProcess::start(&args).await;
    lego.run(&certgate).await;
    certbot.certonly(&certgate).await;
    let (lego_serial, certbot_serial) = check_both("issued", &root_pem, &lego, &certbot).await;
    stop(&mut certgate).await;

    let accounts = account_ids(data_dir.path()).await;
    let lego_account = lego.account_url();
    let certbot_account = certbot.account_url();
    assert_eq!(
        accounts,
        BTreeSet::from([account_id(&lego_account), account_id(&certbot_account)]),
        "one account per client, and the ones the clients hold"
    );

    // Renewal after a restart on the same data directory.
    let mut certgate = CertgateProcess::start(&args).await;
    lego.renew(&certgate).await;
    certbot.renew(&certgate).await;
    let (lego_renewed, certbot_renewed) = check_both("renewed", &root_pem, &lego, &certbot).await;
    stop(&mut certgate).await;

    assert_ne!(
        lego_serial, lego_renewed,
        "lego's renewal is a new certificate"
    );
    assert_ne!(
        certbot_serial, certbot_renewed,
        "certbot's renewal is a new certificate"
    );
    assert_eq!(
        account_ids(data_dir.path()).await,
        accounts,
        "renewals created no accounts"
    );
    assert_eq!(lego.account_url(), lego_account, "lego kept its account");
    assert_eq!(
        certbot.account_url(),
        certbot_account,
        "certbot kept its account"
    );
}

/// A Vault profile behind the binary: both clients are issued certificates
/// by the stand-in's intermediate, one `sign` call per order.
#[tokio::test(flavor = "multi_thread")]
async fn certbot_and_lego_issue_through_a_vault_profile() {
    require_tool("certbot", "certbot");
    require_tool("lego", "lego");
    require_tool("openssl", "openssl");

    let role = certgate_testkit::vault::Role::new("lab-internal")
        .allowed_domains(["example.test"])
        .allow_subdomains(true)
        .key_type("any");
    let standin = certgate_testkit::vault::VaultStandin::start(
        certgate_testkit::vault::StandinConfig::new()
            .mount(certgate_testkit::vault::Mount::new("pki_int").role(role))
            .policy(
                "certgate",
                ["pki_int/sign/lab-internal", "pki_int/roles/lab-internal"],
            )
            .certgate_approle(certgate_testkit::vault::SECRET_ID),
    )
    .await;
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("certgate.toml");
    std::fs::write(
        &config,
        standin.approle_config(data_dir.path(), certgate_testkit::vault::SECRET_ID)
            + "[profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n",
    )
    .unwrap();
    let args = ServeArgs::new(data_dir.path(), dns.addr(), Some(config));
    // Clients reach certgate over TLS made by the embedded CA, and check the
    // issued chain against Vault's root.
    let tls_root = data_dir.path().join("ca/root.pem");
    let vault_root = data_dir.path().join("vault-root.pem");
    std::fs::write(&vault_root, standin.root_ca_pem()).unwrap();
    let directory = format!("https://{}/acme/lab/directory", args.listen);
    let lego = Lego {
        dir: tempfile::tempdir().unwrap(),
        directory: directory.clone(),
        root_pem: tls_root.clone(),
        http01_port: args.http01_port,
    };
    let certbot = Certbot {
        dir: tempfile::tempdir().unwrap(),
        directory,
        root_pem: tls_root,
        http01_port: args.http01_port,
    };

    let mut certgate = CertgateProcess::start(&args).await;
    lego.run(&certgate).await;
    certbot.certonly(&certgate).await;
    check_both("issued through Vault", &vault_root, &lego, &certbot).await;
    stop(&mut certgate).await;

    let intermediate = pem::parse(standin.intermediate_pem("pki_int").unwrap()).unwrap();
    for chain_file in [lego.issuer(), certbot.live().join("chain.pem")] {
        let chain = pem::parse_many(std::fs::read(&chain_file).unwrap()).unwrap();
        assert_eq!(
            chain.first().map(|c| c.contents()),
            Some(intermediate.contents()),
            "{}: the issuer is Vault's intermediate",
            chain_file.display()
        );
    }
    assert_eq!(
        standin.sign_count(),
        2,
        "one sign call per order: {:?}",
        standin.sign_calls()
    );
    assert_eq!(standin.issued_count(), 2);
}
