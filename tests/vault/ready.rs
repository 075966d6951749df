//! `/ready` and `/health` with a Vault profile signing through the Vault
//! stand-in: readiness follows Vault (sealed, token refused, unreachable)
//! and says why in its body, while liveness never depends on it.

use certgate_testkit::instance::Instance;
use certgate_testkit::process::free_port;
use certgate_testkit::raw_client::RawClient;
use certgate_testkit::vault::{Grant, Role, StandinConfig, VaultStandin};

const TOKEN: &str = "hvs.certgate-ready-test";

/// The stand-in: `pki_int/lab-internal` and a token for certgate.
async fn standin() -> VaultStandin {
    VaultStandin::start(
        StandinConfig::pki_int([Role::lab("lab-internal")]).token(TOKEN, Grant::new(["certgate"])),
    )
    .await
}

/// certgate with an embedded-CA profile and two Vault profiles sharing one
/// role, logging in to the Vault at `vault_address` with a token from a file.
struct Lab {
    instance: Instance,
    client: RawClient,
    vault_address: String,
    _secrets: tempfile::TempDir,
}

impl Lab {
    async fn start(vault_address: String) -> Self {
        let secrets = tempfile::tempdir().unwrap();
        let token_file = secrets.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let vault_profile = |name: &str, ttl: &str| {
            format!(
                "[profiles.{name}]\nissuer = \"vault\"\nmount = \"pki_int\"\n\
                 role = \"lab-internal\"\nttl = \"{ttl}\"\n"
            )
        };
        let config = format!(
            "default_profile = \"local\"\n\
             [vault]\naddress = \"{vault_address}\"\n\
             [vault.auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n\
             [profiles.local]\nissuer = \"local\"\n{}{}",
            token_file.display(),
            vault_profile("lab", "72h"),
            vault_profile("lab-short", "1h"),
        );
        let instance = Instance::start_with_config(Some(config)).await;
        let client = RawClient::new(&instance.directory_url(), &instance.root_pem_path()).await;
        Self {
            instance,
            client,
            vault_address,
            _secrets: secrets,
        }
    }

    /// GET `path`: (status, body).
    async fn get(&self, path: &str) -> (u16, String) {
        let reply = self
            .client
            .http
            .get(format!("{}{path}", self.instance.base_url()))
            .send()
            .await
            .unwrap();
        (reply.status().as_u16(), reply.text().await.unwrap())
    }

    /// GET /ready, asserting its status; returns the body's lines.
    async fn ready(&self, status: u16) -> Vec<String> {
        let (got, body) = self.get("/ready").await;
        assert_eq!(got, status, "/ready:\n{body}");
        body.lines().map(str::to_owned).collect()
    }

    /// The start of the Vault's line in `/ready`.
    fn vault_subject(&self) -> String {
        format!("vault {}:", self.vault_address)
    }

    async fn assert_alive(&self) {
        assert_eq!(self.get("/health").await, (200, "ok\n".to_owned()));
    }
}

/// The paths of the requests `standin` answered while `during` ran.
async fn vault_paths_during(
    standin: &VaultStandin,
    during: impl std::future::Future,
) -> Vec<String> {
    let before = standin.requests().len();
    during.await;
    standin.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect()
}

/// The line of `/ready` that starts with `subject`.
fn line<'a>(lines: &'a [String], subject: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(subject))
        .unwrap_or_else(|| panic!("no line for {subject}: {lines:?}"))
}

#[tokio::test]
async fn ready_follows_a_sealed_vault_and_health_does_not() {
    let standin = standin().await;
    let lab = Lab::start(standin.addr()).await;
    let vault_subject = lab.vault_subject();

    let lines = lab.ready(200).await;
    assert_eq!(lines.len(), 5, "database, vault, three profiles: {lines:?}");
    assert_eq!(line(&lines, "database:"), "database: ok");
    assert!(
        line(&lines, &vault_subject).contains(": ok (token valid for "),
        "{lines:?}"
    );
    for profile in ["lab", "lab-short"] {
        assert_eq!(
            line(&lines, &format!("profile {profile} ")),
            format!("profile {profile} (vault pki_int/lab-internal): ok")
        );
    }
    assert_eq!(
        line(&lines, "profile local "),
        "profile local (embedded CA): ok"
    );
    // One token lookup for the Vault, one role read for the two profiles
    // that share the role.
    let mut paths = vault_paths_during(&standin, lab.ready(200)).await;
    paths.sort();
    assert_eq!(
        paths,
        ["auth/token/lookup-self", "pki_int/roles/lab-internal"]
    );

    standin.seal();
    let paths = vault_paths_during(&standin, async {
        let lines = lab.ready(503).await;
        assert_eq!(
            line(&lines, &vault_subject),
            format!("{vault_subject} Vault is sealed")
        );
        for profile in ["lab", "lab-short"] {
            assert_eq!(
                line(&lines, &format!("profile {profile} ")),
                format!("profile {profile} (vault pki_int/lab-internal): Vault is sealed")
            );
        }
        assert_eq!(line(&lines, "database:"), "database: ok");
        assert_eq!(
            line(&lines, "profile local "),
            "profile local (embedded CA): ok"
        );
    })
    .await;
    assert_eq!(
        paths,
        ["auth/token/lookup-self"],
        "a sealed Vault is asked once"
    );
    lab.assert_alive().await;

    standin.unseal();
    let lines = lab.ready(200).await;
    assert!(lines.iter().all(|l| l.contains(": ok")), "{lines:?}");
    lab.assert_alive().await;
}

#[tokio::test]
async fn ready_says_when_vault_refuses_the_token() {
    let standin = standin().await;
    let lab = Lab::start(standin.addr()).await;
    lab.ready(200).await;

    standin.expire_all_tokens();
    let lines = lab.ready(503).await;
    // Vault's own words for an expired token.
    let refused = "Vault refused certgate's token: permission denied; invalid token";
    assert_eq!(
        line(&lines, &lab.vault_subject()),
        format!("{} {refused}", lab.vault_subject())
    );
    assert!(
        line(&lines, "profile lab ").ends_with(&format!("): {refused}")),
        "{lines:?}"
    );
    lab.assert_alive().await;
}

#[tokio::test]
async fn ready_says_when_vault_cannot_be_reached() {
    // A port nothing listens on: connections are refused.
    let address = format!("http://127.0.0.1:{}", free_port());
    let lab = Lab::start(address.clone()).await;
    let lines = lab.ready(503).await;
    let unreachable = line(&lines, &lab.vault_subject());
    assert!(
        unreachable.starts_with(&format!(
            "{} cannot reach {address}/v1/",
            lab.vault_subject()
        )),
        "{lines:?}"
    );
    assert!(unreachable.contains("Connection refused"), "{lines:?}");
    assert_eq!(line(&lines, "database:"), "database: ok");
    lab.assert_alive().await;
}

#[tokio::test]
async fn a_burst_of_ready_requests_shares_the_vault_checks() {
    let standin = standin().await;
    let lab = Lab::start(standin.addr()).await;
    // A slow Vault keeps the first check running while the others arrive.
    standin.set_delay(std::time::Duration::from_millis(300));
    const BURST: usize = 8;
    let url = format!("{}/ready", lab.instance.base_url());
    let paths = vault_paths_during(&standin, async {
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..BURST {
            let (http, url) = (lab.client.http.clone(), url.clone());
            requests.spawn(async move { http.get(url).send().await.unwrap().status() });
        }
        while let Some(status) = requests.join_next().await {
            assert_eq!(status.unwrap(), 200);
        }
    })
    .await;
    // Each check asks twice (token, role); one request per check would be
    // 2 × BURST. Requests that arrive during a check take its result; a
    // request that reached certgate only after the first check finished may
    // run a second one.
    assert!(
        paths.len() <= 4,
        "{BURST} concurrent /ready requests asked Vault {} times: {paths:?}",
        paths.len()
    );
}
