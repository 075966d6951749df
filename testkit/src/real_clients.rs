//! certbot and lego as Debian packages them, each getting and renewing a
//! two-name certificate over HTTP-01 (their own standalone responders), with
//! the checks of what they saved. Shared by the tests that drive certgate
//! through real clients, directly or behind a load balancer.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use crate::clients::{certbot_command, check_certificate, only_entry, read_json, run_client};

pub const LEGO_NAMES: [&str; 2] = ["host1.example.test", "host2.example.test"];
pub const CERTBOT_NAMES: [&str; 2] = ["host3.example.test", "host4.example.test"];

/// What each client is given: a directory of its own, the server, the root
/// it trusts and the port its HTTP-01 responder listens on.
struct Setup {
    dir: tempfile::TempDir,
    directory: String,
    root_pem: PathBuf,
    http01_port: u16,
}

impl Setup {
    fn new(directory: &str, root_pem: &Path, http01_port: u16) -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            directory: directory.to_owned(),
            root_pem: root_pem.to_owned(),
            http01_port,
        }
    }
}

/// lego with its own working directory. Its account is stored under the
/// server's host and port, which is why certgate restarts on the same port.
pub struct Lego(Setup);

impl Lego {
    /// lego in a fresh working directory, for the ACME `directory`,
    /// trusting `root_pem`, answering HTTP-01 on `http01_port`.
    pub fn new(directory: &str, root_pem: &Path, http01_port: u16) -> Self {
        Self(Setup::new(directory, root_pem, http01_port))
    }

    fn command(&self) -> Command {
        self.command_for(&LEGO_NAMES)
    }

    fn command_for(&self, names: &[&str]) -> Command {
        let mut command = Command::new("lego");
        command
            .env("LEGO_CA_CERTIFICATES", &self.0.root_pem)
            .arg("--server")
            .arg(&self.0.directory)
            .arg("--path")
            .arg(self.0.dir.path())
            .args(["--email", "lego@example.test", "--accept-tos"])
            .args(["--key-type", "ec256", "--http", "--http.port"])
            .arg(format!("127.0.0.1:{}", self.0.http01_port));
        for name in names {
            command.args(["-d", name]);
        }
        command
    }

    pub async fn run(&self, logs: &dyn Fn() -> String) {
        let mut command = self.command();
        command.arg("run");
        run_client("lego run", command, logs).await;
    }

    pub async fn renew(&self, logs: &dyn Fn() -> String) {
        let mut command = self.command();
        command.args(["renew", "--days", "99999", "--no-random-sleep"]);
        run_client("lego renew", command, logs).await;
    }

    /// Revokes the certificate `run` or `renew` saved (lego files it
    /// under its first name, and revokes one file per `-d`).
    pub async fn revoke(&self, logs: &dyn Fn() -> String) {
        let mut command = self.command_for(&LEGO_NAMES[..1]);
        command.arg("revoke");
        run_client("lego revoke", command, logs).await;
    }

    /// The leaf followed by the issuer.
    fn bundle(&self) -> PathBuf {
        self.certificates().join(format!("{}.crt", LEGO_NAMES[0]))
    }

    pub fn issuer(&self) -> PathBuf {
        self.certificates()
            .join(format!("{}.issuer.crt", LEGO_NAMES[0]))
    }

    fn certificates(&self) -> PathBuf {
        self.0.dir.path().join("certificates")
    }

    pub fn account_url(&self) -> String {
        let accounts = only_entry(&self.0.dir.path().join("accounts"));
        let account = read_json(&accounts.join("lego@example.test/account.json"));
        account["registration"]["uri"]
            .as_str()
            .expect("lego's account.json holds registration.uri")
            .to_owned()
    }
}

/// certbot with its own config, work and log directories.
pub struct Certbot(Setup);

impl Certbot {
    /// certbot in fresh directories, for the ACME `directory`, trusting
    /// `root_pem`, answering HTTP-01 on `http01_port`.
    pub fn new(directory: &str, root_pem: &Path, http01_port: u16) -> Self {
        Self(Setup::new(directory, root_pem, http01_port))
    }

    fn command(&self) -> Command {
        certbot_command(self.0.dir.path(), &self.0.root_pem, &self.0.directory)
    }

    /// Flags for the standalone HTTP-01 responder, on certgate's port.
    fn standalone(&self, command: &mut Command) {
        command
            .args(["--standalone", "--preferred-challenges", "http"])
            .args(["--http-01-address", "127.0.0.1", "--http-01-port"])
            .arg(self.0.http01_port.to_string());
    }

    pub async fn certonly(&self, logs: &dyn Fn() -> String) {
        let mut command = self.command();
        command.arg("certonly");
        self.standalone(&mut command);
        command.args(["--register-unsafely-without-email", "--key-type", "ecdsa"]);
        for name in CERTBOT_NAMES {
            command.args(["-d", name]);
        }
        run_client("certbot certonly", command, logs).await;
    }

    pub async fn renew(&self, logs: &dyn Fn() -> String) {
        let mut command = self.command();
        command.args(["renew", "--force-renewal", "--no-random-sleep-on-renew"]);
        command.args(["--cert-name", CERTBOT_NAMES[0]]);
        self.standalone(&mut command);
        run_client("certbot renew", command, logs).await;
    }

    pub fn live(&self) -> PathBuf {
        self.0.dir.path().join("c/live").join(CERTBOT_NAMES[0])
    }

    pub fn account_url(&self) -> String {
        // accounts/<host:port>/acme/directory/<account key hash>/regr.json
        let by_server = only_entry(&self.0.dir.path().join("c/accounts"));
        let account = only_entry(&by_server.join("acme/directory"));
        read_json(&account.join("regr.json"))["uri"]
            .as_str()
            .expect("certbot's regr.json holds uri")
            .to_owned()
    }
}

/// Checks the certificate each client holds now; returns (lego's serial, certbot's).
pub async fn check_both(
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
