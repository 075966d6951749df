//! Real ACME clients against the built certgate binary: certbot and lego, as
//! Debian packages them, each get a two-name certificate over HTTP-01, then
//! renew with their existing accounts after certgate was restarted on the
//! same data directory. What the clients forgive and what they don't is the
//! point of this test, so nothing here is simulated.

use std::collections::BTreeSet;
use std::path::Path;

use sqlx::Connection;

use certgate_testkit::clients::require_tool;
use certgate_testkit::dns::DnsStub;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::real_clients::{check_both, Certbot, Lego};

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
    let lego = Lego::new(&directory, &root_pem, args.http01_port);
    let certbot = Certbot::new(&directory, &root_pem, args.http01_port);

    // First issuance.
    let mut certgate = CertgateProcess::start(&args).await;
    lego.run(&|| certgate.log()).await;
    certbot.certonly(&|| certgate.log()).await;
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
    lego.renew(&|| certgate.log()).await;
    certbot.renew(&|| certgate.log()).await;
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
    let lego = Lego::new(&directory, &tls_root, args.http01_port);
    let certbot = Certbot::new(&directory, &tls_root, args.http01_port);

    let mut certgate = CertgateProcess::start(&args).await;
    lego.run(&|| certgate.log()).await;
    certbot.certonly(&|| certgate.log()).await;
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
