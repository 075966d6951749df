//! certgate's Vault client (`certgate::vault::Vault`) logging in and keeping
//! its token, against the Vault stand-in.
//!
//! Every Vault profile depends on one token that certgate obtains at start and
//! must keep valid for as long as it runs, so these tests pin down each auth
//! method as configured in the `[vault]` table, renewal before expiry, a fresh
//! login when the token is refused or cannot be renewed (and only one), HA
//! address lists, standby redirects, namespaces, and a sealed Vault. They use
//! the production client directly rather than through ACME, so a failure
//! points at the Vault layer.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certgate::config::vault::VaultFile;
use certgate::config::VaultSettings;
use certgate::vault::{TokenInfo, Vault, VaultError};
use certgate_testkit::vault::{Grant, Login, Role, StandinConfig, VaultStandin, ROLE_ID};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const MOUNT: &str = "pki_int";
const ROLE: &str = "lab-internal";

/// A policy that may sign but not read roles.
const SIGN_ONLY_POLICY: &str = "certgate-sign-only";

const STATIC_TOKEN: &str = "hvs.certgate-static-token";
const SECRET_ID: &str = "certgate-secret-id-7d41c9";
const K8S_ROLE: &str = "certgate";
const K8S_JWT: &str = "k8s-service-account-jwt";
const JWT_MOUNT: &str = "jwt-nomad";
const JWT_ROLE: &str = "certgate-nomad";
const NOMAD_JWT: &str = "eyJhbGciOi.nomad-workload.signature";

/// A lease short enough to watch renewals happen. The stand-in counts time
/// in whole seconds, so a token can expire up to a second early by the real
/// clock; certgate renews a third of the lease before the end, which must
/// stay over that second.
const SHORT_TTL: u64 = 4;

/// How long a test waits for something the renewal loop should cause.
const PATIENCE: Duration = Duration::from_secs(20);

// --- the stand-in ----------------------------------------------------------

/// pki_int with the lab role, the `certgate` policy, a static token, and
/// AppRole, Kubernetes and JWT (at `jwt-nomad`) logins that all give `grant`.
fn standin_config(grant: Grant) -> StandinConfig {
    StandinConfig::pki_int([Role::lab(ROLE)])
        .policy(SIGN_ONLY_POLICY, ["pki_int/sign/*"])
        .token(STATIC_TOKEN, Grant::new(["certgate"]))
        .approle("approle", ROLE_ID, SECRET_ID, grant.clone())
        .kubernetes("kubernetes", K8S_ROLE, K8S_JWT, grant.clone())
        .jwt(JWT_MOUNT, JWT_ROLE, NOMAD_JWT, grant)
}

async fn standin(grant: Grant) -> VaultStandin {
    VaultStandin::start(standin_config(grant)).await
}

/// A one-hour renewable login with the full certgate policy.
fn certgate_grant() -> Grant {
    Grant::new(["certgate"])
}

fn login(method: &str, mount: &str, role: &str) -> Login {
    Login {
        method: method.to_owned(),
        mount: mount.to_owned(),
        role: role.to_owned(),
        status: 200,
    }
}

fn approle_login() -> Login {
    login("approle", "approle", ROLE_ID)
}

// --- certgate's settings ---------------------------------------------------

/// Credential files, removed with the test.
struct Credentials(tempfile::TempDir);

impl Credentials {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("temporary folder"))
    }

    /// Writes `value` (with a trailing newline, as tools write them) to `name`.
    fn write(&self, name: &str, value: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, format!("{value}\n")).expect("write a credential file");
        path
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

/// A string as a TOML value, quoted and escaped.
fn toml_string(text: &str) -> String {
    toml::Value::from(text).to_string()
}

fn toml_path(path: &std::path::Path) -> String {
    toml_string(path.to_str().expect("a UTF-8 path"))
}

/// A `[vault]` table: `address = [...]`, any `top` lines, then `[auth]` lines.
fn vault_table(addresses: &[&str], top: &str, auth: &str) -> String {
    let addresses = toml::Value::Array(addresses.iter().map(|a| (*a).into()).collect());
    format!("address = {addresses}\n{top}\n[auth]\n{auth}\n")
}

/// The `[auth]` lines of an AppRole login, the secret ID read from a file.
fn approle_auth(credentials: &Credentials) -> String {
    let secret_id = credentials.write("secret-id", SECRET_ID);
    format!(
        "method = \"approle\"\nrole_id = \"{ROLE_ID}\"\nsecret_id_file = {}",
        toml_path(&secret_id)
    )
}

/// Parses and resolves `table`, with `env` as the only environment.
fn settings(table: &str, env: &[(&str, &str)]) -> VaultSettings {
    let file: VaultFile =
        toml::from_str(table).unwrap_or_else(|e| panic!("[vault] table {table:?}: {e}"));
    let lookup = |name: &str| {
        env.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    };
    file.resolve(&lookup, "a vault profile")
        .unwrap_or_else(|e| panic!("[vault] table {table:?}: {e}"))
}

fn client(table: &str, env: &[(&str, &str)]) -> Arc<Vault> {
    Arc::new(Vault::new(settings(table, env), Arc::default()).expect("build the Vault client"))
}

/// A client logging in to `addresses` with AppRole.
fn approle_client(addresses: &[&str], top: &str, credentials: &Credentials) -> Arc<Vault> {
    client(
        &vault_table(addresses, top, &approle_auth(credentials)),
        &[],
    )
}

// --- checks and waiting ----------------------------------------------------

/// Logs in (or checks the token), then reads the lab role with the token.
async fn connect_and_read_role(vault: &Vault) -> TokenInfo {
    let info = vault.connect().await.expect("connect to Vault");
    assert_role_readable(vault).await;
    info
}

async fn assert_role_readable(vault: &Vault) {
    let rules = vault
        .read_role(MOUNT, ROLE)
        .await
        .expect("read the lab role");
    assert_eq!(rules.allowed_domains, ["lab.example"]);
    assert!(rules.allow_subdomains);
}

fn lookups(standin: &VaultStandin) -> usize {
    standin
        .requests()
        .iter()
        .filter(|r| r.path == "auth/token/lookup-self" && r.status == 200)
        .count()
}

fn successful_renewals(standin: &VaultStandin) -> usize {
    standin
        .renewals()
        .iter()
        .filter(|r| r.status == 200)
        .count()
}

/// Polls `condition` every 50 ms; panics naming `what` after [`PATIENCE`].
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "gave up after {PATIENCE:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// certgate's renewal loop, stopped when dropped.
struct Renewer(JoinHandle<()>);

impl Renewer {
    fn spawn(vault: &Arc<Vault>) -> Self {
        let vault = vault.clone();
        Self(tokio::spawn(async move { vault.keep_token_fresh().await }))
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A port on which nothing listens: bound, read, and released.
fn closed_port_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A TCP relay in front of a stand-in that keeps every byte clients send,
/// so a test can read the headers certgate put on its requests.
struct Sniffer {
    addr: String,
    sent: Arc<Mutex<Vec<u8>>>,
    task: JoinHandle<()>,
}

impl Sniffer {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the sniffer");
        let addr = format!("http://{}", listener.local_addr().expect("sniffer address"));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let kept = sent.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(Self::relay(client, upstream, kept.clone()));
            }
        });
        Self { addr, sent, task }
    }

    async fn relay(client: TcpStream, upstream: SocketAddr, sent: Arc<Mutex<Vec<u8>>>) {
        let Ok(server) = TcpStream::connect(upstream).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        let answers = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        });
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
            sent.lock().unwrap().extend_from_slice(&buffer[..n]);
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
        let _ = answers.await;
    }

    /// Everything sent so far, lower-cased (HTTP header names are case-insensitive).
    fn sent_text(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).to_lowercase()
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// --- 1. each auth method ---------------------------------------------------

#[tokio::test]
async fn token_from_the_environment_is_checked_with_lookup_self() {
    let standin = standin(certgate_grant()).await;
    let vault = client(
        &vault_table(&[&standin.addr()], "", ""),
        &[("VAULT_TOKEN", STATIC_TOKEN)],
    );
    let info = connect_and_read_role(&vault).await;
    assert!(info.policies.contains(&"certgate".to_owned()), "{info:?}");
    assert!(info.renewable);
    assert!(info.ttl > Duration::ZERO, "{info:?}");
    assert_eq!(standin.logins(), []);
    assert_eq!(lookups(&standin), 1);
}

#[tokio::test]
async fn token_from_a_file_is_checked_with_lookup_self() {
    let standin = standin(certgate_grant()).await;
    let credentials = Credentials::new();
    let token_file = credentials.write("token", STATIC_TOKEN);
    let auth = format!(
        "method = \"token\"\ntoken_file = {}",
        toml_path(&token_file)
    );
    let vault = client(&vault_table(&[&standin.addr()], "", &auth), &[]);
    connect_and_read_role(&vault).await;
    assert_eq!(standin.logins(), []);
    assert_eq!(lookups(&standin), 1);
}

#[tokio::test]
async fn approle_logs_in_with_the_secret_id_from_a_file() {
    let standin = standin(certgate_grant()).await;
    let credentials = Credentials::new();
    let vault = approle_client(&[&standin.addr()], "", &credentials);
    let info = connect_and_read_role(&vault).await;
    assert!(info.policies.contains(&"certgate".to_owned()), "{info:?}");
    assert_eq!(standin.logins(), [approle_login()]);
}

#[tokio::test]
async fn approle_secret_id_may_come_from_the_environment() {
    let standin = standin(certgate_grant()).await;
    let auth = format!("method = \"approle\"\nrole_id = \"{ROLE_ID}\"");
    let vault = client(
        &vault_table(&[&standin.addr()], "", &auth),
        &[("CERTGATE_VAULT_SECRET_ID", SECRET_ID)],
    );
    connect_and_read_role(&vault).await;
    assert_eq!(standin.logins(), [approle_login()]);
}

#[tokio::test]
async fn kubernetes_logs_in_with_the_service_account_jwt() {
    let standin = standin(certgate_grant()).await;
    let credentials = Credentials::new();
    let jwt = credentials.write("sa-token", K8S_JWT);
    let auth = format!(
        "method = \"kubernetes\"\nrole = \"{K8S_ROLE}\"\njwt_file = {}",
        toml_path(&jwt)
    );
    let vault = client(&vault_table(&[&standin.addr()], "", &auth), &[]);
    connect_and_read_role(&vault).await;
    assert_eq!(
        standin.logins(),
        [login("kubernetes", "kubernetes", K8S_ROLE)]
    );
}

#[tokio::test]
async fn jwt_logs_in_on_a_non_default_mount() {
    let standin = standin(certgate_grant()).await;
    let credentials = Credentials::new();
    let jwt = credentials.write("nomad-identity", NOMAD_JWT);
    let auth = format!(
        "method = \"jwt\"\nmount = \"{JWT_MOUNT}\"\nrole = \"{JWT_ROLE}\"\njwt_file = {}",
        toml_path(&jwt)
    );
    let vault = client(&vault_table(&[&standin.addr()], "", &auth), &[]);
    connect_and_read_role(&vault).await;
    assert_eq!(standin.logins(), [login("jwt", JWT_MOUNT, JWT_ROLE)]);
}

#[tokio::test]
async fn a_wrong_approle_secret_fails_without_showing_the_secret() {
    let standin = standin(certgate_grant()).await;
    let wrong_secret = "wrong-secret-id-93be0a";
    let credentials = Credentials::new();
    let secret_id = credentials.write("secret-id", wrong_secret);
    let auth = format!(
        "method = \"approle\"\nrole_id = \"{ROLE_ID}\"\nsecret_id_file = {}",
        toml_path(&secret_id)
    );
    let vault = client(&vault_table(&[&standin.addr()], "", &auth), &[]);
    let err = vault
        .connect()
        .await
        .expect_err("a wrong secret ID must fail");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(wrong_secret), "the secret leaked: {shown}");
    }
    assert!(!err.is_temporary(), "{err}");
    assert_eq!(
        standin
            .logins()
            .iter()
            .map(|l| l.status)
            .collect::<Vec<_>>(),
        [400]
    );
}

#[tokio::test]
async fn a_missing_jwt_file_is_a_credentials_error_naming_the_path() {
    let standin = standin(certgate_grant()).await;
    let credentials = Credentials::new();
    let missing = credentials.path("no-such-identity");
    let auth = format!(
        "method = \"jwt\"\nmount = \"{JWT_MOUNT}\"\nrole = \"{JWT_ROLE}\"\njwt_file = {}",
        toml_path(&missing)
    );
    let vault = client(&vault_table(&[&standin.addr()], "", &auth), &[]);
    let err = vault.connect().await.expect_err("no JWT to present");
    match &err {
        VaultError::Credentials(message) => assert!(
            message.contains(missing.to_str().unwrap()),
            "the path is not named: {message}"
        ),
        other => panic!("expected a credentials error, got {other:?}"),
    }
    assert_eq!(standin.logins(), [], "nothing was sent without a JWT");
}

// --- 2-5. keeping the token --------------------------------------------------

#[tokio::test]
async fn a_renewable_token_is_renewed_rather_than_replaced() {
    let ttl = SHORT_TTL;
    let standin = standin(certgate_grant().ttl(ttl)).await;
    let credentials = Credentials::new();
    let vault = approle_client(&[&standin.addr()], "", &credentials);
    let logged_in = Instant::now();
    let info = vault.connect().await.expect("log in");
    assert!(info.renewable);
    assert!(info.ttl <= Duration::from_secs(ttl), "{info:?}");

    let _renewer = Renewer::spawn(&vault);
    // Renewals come two thirds into each lease, so a second one proves the
    // token outlived the TTL it was first given.
    wait_until("the stand-in renewed the token twice", || {
        successful_renewals(&standin) >= 2
    })
    .await;
    assert!(
        logged_in.elapsed() >= Duration::from_secs(ttl),
        "two renewals within the first TTL: {:?}",
        logged_in.elapsed()
    );

    assert_role_readable(&vault).await;
    assert_eq!(standin.logins(), [approle_login()], "renewed, not replaced");
    assert!(
        standin.renewals().iter().all(|r| r.status == 200),
        "{:?}",
        standin.renewals()
    );
}

#[tokio::test]
async fn an_expired_token_is_replaced_by_a_fresh_login() {
    let standin = standin(certgate_grant()).await;
    let credentials = Credentials::new();
    let vault = approle_client(&[&standin.addr()], "", &credentials);
    connect_and_read_role(&vault).await;

    standin.expire_all_tokens();
    assert_role_readable(&vault).await;
    assert_eq!(standin.logins(), [approle_login(), approle_login()]);
    let refused = standin
        .requests()
        .iter()
        .filter(|r| r.path == "pki_int/roles/lab-internal" && r.status == 403)
        .count();
    assert_eq!(refused, 1, "one refusal, then the fresh token worked");
}

#[tokio::test]
async fn a_token_that_cannot_be_renewed_is_replaced_by_a_fresh_login() {
    let standin = standin(certgate_grant().renewable(false).ttl(2)).await;
    let credentials = Credentials::new();
    let vault = approle_client(&[&standin.addr()], "", &credentials);
    let info = vault.connect().await.expect("log in");
    assert!(!info.renewable);

    let _renewer = Renewer::spawn(&vault);
    wait_until("certgate logged in a second time", || {
        standin.logins().len() >= 2
    })
    .await;
    assert!(
        standin.logins().iter().all(|l| *l == approle_login()),
        "{:?}",
        standin.logins()
    );
    assert_eq!(
        standin.renewals(),
        [],
        "a non-renewable token is not renewed"
    );
    assert_role_readable(&vault).await;
}

#[tokio::test]
async fn a_token_at_its_maximum_life_is_replaced_by_a_fresh_login() {
    let standin = standin(certgate_grant().ttl(SHORT_TTL).max_ttl(SHORT_TTL + 1)).await;
    let credentials = Credentials::new();
    let vault = approle_client(&[&standin.addr()], "", &credentials);
    vault.connect().await.expect("log in");

    let _renewer = Renewer::spawn(&vault);
    wait_until("certgate logged in a second time", || {
        standin.logins().len() >= 2
    })
    .await;
    assert!(
        successful_renewals(&standin) >= 1,
        "renewed while it could: {:?}",
        standin.renewals()
    );
    assert_role_readable(&vault).await;
}

#[tokio::test]
async fn a_policy_denial_is_returned_after_one_fresh_login() {
    let standin = standin(Grant::new([SIGN_ONLY_POLICY])).await;
    let credentials = Credentials::new();
    let vault = approle_client(&[&standin.addr()], "", &credentials);
    vault.connect().await.expect("log in");

    let err = vault
        .read_role(MOUNT, ROLE)
        .await
        .expect_err("the policy does not cover roles");
    assert!(err.is_permission_denied(), "{err}");
    assert!(!err.is_temporary(), "{err}");
    assert_eq!(
        standin.logins(),
        [approle_login(), approle_login()],
        "one fresh login, then certgate gives up"
    );
}

// --- 6-9. where Vault is and what state it is in -----------------------------

#[tokio::test]
async fn an_unreachable_first_address_falls_through_to_the_next() {
    let standin = standin(certgate_grant()).await;
    let closed = closed_port_address();
    let credentials = Credentials::new();

    let vault = approle_client(&[&closed, &standin.addr()], "", &credentials);
    connect_and_read_role(&vault).await;
    assert_role_readable(&vault).await;
    assert_eq!(standin.logins(), [approle_login()]);

    let nowhere = approle_client(&[&closed], "", &credentials);
    let err = nowhere.connect().await.expect_err("nothing listens");
    assert!(matches!(err, VaultError::Unreachable(_)), "{err:?}");
    assert!(err.is_temporary(), "{err}");
}

#[tokio::test]
async fn a_standby_redirects_to_the_active_node() {
    let active = standin(certgate_grant()).await;
    let standby = standin(certgate_grant()).await;
    standby.standby_redirect(Some(&active.addr()));
    let credentials = Credentials::new();

    let vault = approle_client(&[&standby.addr()], "", &credentials);
    connect_and_read_role(&vault).await;

    assert_eq!(active.logins(), [approle_login()]);
    assert_eq!(standby.logins(), []);
    let redirected = standby.requests();
    assert!(
        redirected.len() >= 2 && redirected.iter().all(|r| r.status == 307),
        "the standby answers every request with a redirect: {redirected:?}"
    );
    assert!(
        active
            .requests()
            .iter()
            .any(|r| r.path == "pki_int/roles/lab-internal" && r.status == 200),
        "{:?}",
        active.requests()
    );
}

#[tokio::test]
async fn the_namespace_is_sent_with_every_request() {
    let standin = standin(certgate_grant()).await;
    let sniffer = Sniffer::start(standin.socket_addr()).await;
    let credentials = Credentials::new();

    let vault = approle_client(&[&sniffer.addr], "namespace = \"lab\"", &credentials);
    connect_and_read_role(&vault).await;
    let chain = vault.read_ca_chain(MOUNT).await.expect("read the CA chain");
    let intermediate = standin.intermediate_pem(MOUNT).expect("pki_int has a CA");
    assert!(chain.contains(intermediate.trim()), "{chain}");

    let sent = sniffer.sent_text();
    let requests = sent.matches(" http/1.1\r\n").count();
    let with_namespace = sent.matches("\r\nx-vault-namespace: lab\r\n").count();
    assert_eq!(requests, 3, "login, role and chain: {sent}");
    assert_eq!(with_namespace, requests, "{sent}");
}

#[tokio::test]
async fn a_sealed_vault_is_a_temporary_error_until_unsealed() {
    let standin = standin(certgate_grant()).await;
    let credentials = Credentials::new();
    let vault = approle_client(&[&standin.addr()], "", &credentials);
    connect_and_read_role(&vault).await;

    standin.seal();
    let err = vault
        .read_role(MOUNT, ROLE)
        .await
        .expect_err("a sealed Vault answers nothing");
    assert!(err.is_temporary(), "{err}");
    assert!(!err.is_permission_denied(), "{err}");

    standin.unseal();
    assert_role_readable(&vault).await;
    assert_eq!(standin.logins(), [approle_login()], "the token survived");
}
