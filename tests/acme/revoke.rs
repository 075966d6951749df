//! revokeCert (RFC 8555 §7.6): certbot revoking through a Vault profile of
//! the built binary; a raw client covering who may revoke, the reasons, a
//! `no_store` role and a sealed Vault; and the embedded CA's CRL.

use std::path::Path;

use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::process::Command;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

use certgate::config::{Config, ServeFlags};
use certgate_testkit::chain_ders;
use certgate_testkit::clients::{certbot_command, require_tool, run_client};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::instance::Instance;
use certgate_testkit::process::{free_port, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{b64, AccountKey, RawClient, Reply};
use certgate_testkit::vault::{Role, StandinConfig, VaultStandin, SECRET_ID};

/// A Vault profile per (profile, role) of `pki_int`.
fn vault_profiles(profiles: &[(&str, &str)]) -> String {
    profiles
        .iter()
        .map(|(profile, role)| {
            format!(
                "[profiles.{profile}]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"{role}\"\n"
            )
        })
        .collect()
}

/// Lower-case hex pairs joined by `:`, as Vault and the stand-in print serials.
fn colon_serial(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The serial as certgate stores it: lower-case hex, no separators.
fn plain_serial(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An ACME key made from a certificate's P-256 private key (PKCS#8 DER),
/// to sign revokeCert with `jwk` = the certificate's key.
fn key_from_pkcs8(pkcs8_der: Vec<u8>) -> AccountKey {
    let pair = EcKeyPair::from_der(&pkcs8_der, Some(EcCurve::P256)).unwrap();
    let jwk = Value::Object(josekit::jwk::KeyPair::to_jwk_public_key(&pair).into());
    AccountKey { pkcs8_der, jwk }
}

/// revokeCert for `leaf_der`, with `reason` when given.
async fn revoke(client: &RawClient, leaf_der: &[u8], reason: Option<i64>) -> Reply {
    let mut payload = json!({"certificate": b64(leaf_der)});
    if let Some(reason) = reason {
        payload["reason"] = json!(reason);
    }
    client.post(&client.url("revokeCert"), Some(payload)).await
}

/// A certificate issued to `client` for `names`: (leaf DER, its key).
async fn issue(
    client: &RawClient,
    http01: &Http01Responder,
    names: &[&str],
) -> (Vec<u8>, rcgen::KeyPair) {
    let (chain, key) = client.issue_with_key(http01, names).await;
    (chain_ders(&chain).remove(0), key)
}

fn serial_of(leaf_der: &[u8]) -> Vec<u8> {
    let (_, leaf) = X509Certificate::from_der(leaf_der).unwrap();
    leaf.raw_serial().to_vec()
}

/// (revoked_at, revocation_reason) of the stored certificate with this serial.
async fn stored_revocation(
    store: &certgate::store::Store,
    leaf_der: &[u8],
) -> (Option<i64>, Option<i64>) {
    let stored = store
        .certificate_by_serial(&plain_serial(&serial_of(leaf_der)))
        .await
        .unwrap()
        .expect("certgate stored the certificate");
    (stored.revoked_at, stored.revocation_reason)
}

// --- 1. certbot against the binary, through a Vault profile --------------

#[tokio::test(flavor = "multi_thread")]
async fn certbot_revokes_a_vault_certificate_by_serial() {
    require_tool("certbot", "certbot");
    let standin = VaultStandin::start(StandinConfig::lab()).await;
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("certgate.toml");
    std::fs::write(
        &config,
        standin.approle_config(data_dir.path(), SECRET_ID)
            + &vault_profiles(&[("lab", "lab-internal")]),
    )
    .unwrap();
    let args = ServeArgs::new(data_dir.path(), dns.addr(), Some(config));
    let tls_root = data_dir.path().join("ca/root.pem");
    let directory = format!("https://{}/acme/lab/directory", args.listen);
    let mut certgate = CertgateProcess::start(&args).await;

    let certbot_dir = tempfile::tempdir().unwrap();
    let certbot = |subcommand: &str| {
        let mut command = certbot_command(certbot_dir.path(), &tls_root, &directory);
        command.arg(subcommand);
        command
    };
    let name = "revoked.lab.example";
    let mut certonly = certbot("certonly");
    certonly
        .args(["--standalone", "--preferred-challenges", "http"])
        .args(["--http-01-address", "127.0.0.1", "--http-01-port"])
        .arg(args.http01_port.to_string())
        .args(["--register-unsafely-without-email", "--key-type", "ecdsa"])
        .args(["-d", name]);
    run_client("certbot certonly", certonly, &|| certgate.log()).await;
    let live = certbot_dir.path().join("c/live").join(name);
    let leaf = ::pem::parse(std::fs::read(live.join("cert.pem")).unwrap()).unwrap();
    let leaf_der = leaf.contents().to_vec();
    let serial = serial_of(&leaf_der);
    assert!(standin.revocations().is_empty());

    let mut revoke_command = certbot("revoke");
    revoke_command
        .arg("--cert-path")
        .arg(live.join("cert.pem"))
        .args(["--reason", "keycompromise", "--no-delete-after-revoke"]);
    run_client("certbot revoke", revoke_command, &|| certgate.log()).await;

    let revocations = standin.revocations();
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0].mount, "pki_int");
    assert_eq!(revocations[0].serial, colon_serial(&serial));
    assert!(!revocations[0].by_pem, "revoked by serial: {revocations:?}");
    assert_eq!(revocations[0].status, 200);
    assert!(
        standin
            .stored_cert("pki_int", &colon_serial(&serial))
            .unwrap()
            .revoked_at
            .is_some(),
        "Vault holds the certificate as revoked"
    );
    assert!(
        certgate.log().contains("certificate revoked"),
        "the revocation is logged:\n{}",
        certgate.log()
    );

    // Again, signed with the certificate's own key this time.
    let key_pem = std::fs::read(live.join("privkey.pem")).unwrap();
    let pkcs8 = openssl::pkey::PKey::private_key_from_pem(&key_pem)
        .unwrap()
        .private_key_to_pkcs8()
        .unwrap();
    let mut client = RawClient::new(&directory, &tls_root).await;
    client.key = key_from_pkcs8(pkcs8);
    let again = revoke(&client, &leaf_der, None).await;
    assert_eq!(again.status, 400, "{:?}", again.json());
    assert_eq!(again.problem_type(), "alreadyRevoked");
    assert_eq!(
        standin.revocations().len(),
        1,
        "Vault was not asked a second time"
    );

    let status = certgate.stop().await;
    assert!(status.success(), "certgate stopped cleanly: {status}");
    let mut db = certgate_testkit::database::open_read_only(data_dir.path()).await;
    let (revoked_at, reason): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT revoked_at, revocation_reason FROM certificates WHERE serial = ?")
            .bind(plain_serial(&serial))
            .fetch_one(&mut db)
            .await
            .unwrap();
    db.close().await.unwrap();
    assert!(revoked_at.is_some());
    assert_eq!(reason, Some(1), "keyCompromise recorded");
}

// --- 2. a raw client, in-process, through Vault profiles ------------------

/// certgate in-process with Vault profiles `lab` (role `lab-internal`) and
/// `nostore` (role `nostore`, which keeps no copies); certgate's policy
/// allows `pki_int/revoke`.
struct Lab {
    standin: VaultStandin,
    instance: Instance,
    _secrets: tempfile::TempDir,
}

impl Lab {
    async fn start() -> Self {
        let roles = [
            Role::lab("lab-internal"),
            Role::lab("nostore").no_store(true),
        ];
        let standin =
            VaultStandin::start(StandinConfig::pki_int(roles).certgate_approle(SECRET_ID)).await;
        let secrets = tempfile::tempdir().unwrap();
        let config = format!(
            "default_profile = \"local\"\n{}[profiles.local]\nissuer = \"local\"\n{}",
            standin.approle_config(secrets.path(), SECRET_ID),
            vault_profiles(&[("lab", "lab-internal"), ("nostore", "nostore")])
        );
        let instance = Instance::start_with_config(Some(config)).await;
        Self {
            standin,
            instance,
            _secrets: secrets,
        }
    }

    /// A client of `profile`'s directory without an account.
    async fn anonymous(&self, profile: &str) -> RawClient {
        RawClient::new(
            &self.instance.profile_directory_url(profile),
            &self.instance.root_pem_path(),
        )
        .await
    }
}

#[tokio::test]
async fn who_may_revoke_with_which_reason_and_how_vault_is_asked() {
    let lab = Lab::start().await;
    let store = lab.instance.store();
    let http01 = &lab.instance.http01;
    let owner = lab.instance.registered_client("lab").await;
    let stranger = lab.instance.registered_client("lab").await;
    let (leaf, key) = issue(&owner, http01, &["own.lab.example"]).await;

    // A certificate this server never issued.
    let foreign_key = rcgen::KeyPair::generate().unwrap();
    let foreign = rcgen::CertificateParams::new(vec!["own.lab.example".to_owned()])
        .unwrap()
        .self_signed(&foreign_key)
        .unwrap();
    let reply = revoke(&owner, foreign.der(), None).await;
    assert_eq!(reply.status, 404, "{:?}", reply.json());
    assert_eq!(reply.problem_type(), "malformed");

    // Someone else's certificate, without authorizations for its name.
    let reply = revoke(&stranger, &leaf, Some(1)).await;
    assert_eq!(reply.status, 403, "{:?}", reply.json());
    assert_eq!(reply.problem_type(), "unauthorized");

    // Signed with a key that is neither an account's nor the certificate's.
    let anonymous = lab.anonymous("lab").await;
    let reply = revoke(&anonymous, &leaf, None).await;
    assert_eq!(reply.status, 403, "{:?}", reply.json());
    assert_eq!(reply.problem_type(), "unauthorized");

    // Reasons a subscriber may not give: 2 (cACompromise), 6 (hold), 7
    // (undefined), and ones out of range.
    for reason in [2, 6, 7, 8, 11, -1] {
        let reply = revoke(&owner, &leaf, Some(reason)).await;
        assert_eq!(reply.status, 400, "reason {reason}: {:?}", reply.json());
        assert_eq!(
            reply.problem_type(),
            "badRevocationReason",
            "reason {reason}"
        );
    }
    assert!(
        lab.standin.revocations().is_empty(),
        "nothing refused reached Vault"
    );
    assert_eq!(stored_revocation(store, &leaf).await, (None, None));

    // Signed with the certificate's own key (jwk), no account at all.
    let mut holder = lab.anonymous("lab").await;
    holder.key = key_from_pkcs8(key.serialize_der());
    let reply = revoke(&holder, &leaf, Some(4)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    assert!(reply.body.is_empty());
    let revocations = lab.standin.revocations();
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0].serial, colon_serial(&serial_of(&leaf)));
    assert!(!revocations[0].by_pem);
    let (revoked_at, reason) = stored_revocation(store, &leaf).await;
    assert!(revoked_at.is_some());
    assert_eq!(reason, Some(4), "superseded");

    let reply = revoke(&owner, &leaf, None).await;
    assert_eq!(reply.status, 400, "{:?}", reply.json());
    assert_eq!(reply.problem_type(), "alreadyRevoked");
    assert_eq!(lab.standin.revocations().len(), 1);

    // An account that did not order it but holds valid authorizations for
    // every name may revoke it.
    let (shared, _) = issue(&owner, http01, &["shared.lab.example"]).await;
    let reply = revoke(&stranger, &shared, None).await;
    assert_eq!(reply.problem_type(), "unauthorized");
    stranger.ready_order(http01, &["shared.lab.example"]).await;
    let reply = revoke(&stranger, &shared, Some(5)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    assert_eq!(stored_revocation(store, &shared).await.1, Some(5));
    assert_eq!(lab.standin.revocations().len(), 2);

    // A no_store role: Vault cannot find the serial, so the PEM goes.
    let nostore_owner = lab.instance.registered_client("nostore").await;
    let (unstored, _) = issue(&nostore_owner, http01, &["kept.lab.example"]).await;
    assert!(lab
        .standin
        .stored_cert("pki_int", &colon_serial(&serial_of(&unstored)))
        .is_none());
    let reply = revoke(&nostore_owner, &unstored, Some(0)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let revocations = lab.standin.revocations();
    assert_eq!(revocations.len(), 3, "{revocations:?}");
    assert_eq!(revocations[2].serial, colon_serial(&serial_of(&unstored)));
    assert!(revocations[2].by_pem, "{revocations:?}");
    assert_eq!(revocations[2].status, 200);
    assert_eq!(stored_revocation(store, &unstored).await.1, Some(0));
}

#[tokio::test]
async fn a_sealed_vault_records_nothing_and_asks_the_client_to_retry() {
    let lab = Lab::start().await;
    let owner = lab.instance.registered_client("lab").await;
    let (leaf, _) = issue(&owner, &lab.instance.http01, &["sealed.lab.example"]).await;

    lab.standin.seal();
    let reply = revoke(&owner, &leaf, Some(1)).await;
    assert_eq!(reply.status, 503, "{:?}", reply.json());
    assert_eq!(reply.problem_type(), "serverInternal");
    assert!(reply.header("retry-after").is_some());
    assert_eq!(
        stored_revocation(lab.instance.store(), &leaf).await,
        (None, None),
        "nothing recorded while Vault could not confirm"
    );

    lab.standin.unseal();
    let reply = revoke(&owner, &leaf, Some(1)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let revocations = lab.standin.revocations();
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    assert_eq!(revocations[0].status, 200);
    assert_eq!(
        stored_revocation(lab.instance.store(), &leaf).await.1,
        Some(1)
    );
}

// --- 3. the embedded CA and its CRL ---------------------------------------

/// The embedded CA's intermediate of a data directory.
fn intermediate_der(data_dir: &Path) -> Vec<u8> {
    ::pem::parse(std::fs::read(data_dir.join("ca/intermediate.pem")).unwrap())
        .unwrap()
        .into_contents()
}

/// The CRL distribution point URIs of a certificate.
fn crl_urls(leaf: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in leaf.iter_extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            urls.push(uri.to_string());
                        }
                    }
                }
            }
        }
    }
    urls
}

async fn fetch_crl(client: &RawClient, url: &str) -> Vec<u8> {
    let response = client.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/pkix-crl"
    );
    response.bytes().await.unwrap().to_vec()
}

fn parse_crl(der: &[u8]) -> CertificateRevocationList<'_> {
    let (rest, crl) = x509_parser::parse_x509_crl(der).expect("the CRL parses");
    assert!(rest.is_empty());
    crl
}

#[tokio::test]
async fn the_embedded_ca_lists_revoked_certificates_in_its_crl() {
    require_tool("openssl", "openssl");
    let dns = DnsStub::start().await;
    let http01 = Http01Responder::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("https://localhost:{port}");
    let config = Config::load_with_env(
        ServeFlags {
            listen: Some(format!("127.0.0.1:{port}").parse().unwrap()),
            data_dir: Some(data_dir.path().to_owned()),
            http01_port: Some(http01.port()),
            resolvers: vec![dns.addr().to_string()],
            external_url: Some(base.clone()),
            ..Default::default()
        },
        &|_| None,
    )
    .unwrap();
    let server = certgate::app::start(config).await.expect("certgate starts");
    let client = RawClient::registered(
        &format!("{base}/acme/directory"),
        &data_dir.path().join("ca/root.pem"),
    )
    .await;

    let (revoked, _) = issue(&client, &http01, &["gone.example.test"]).await;
    let (kept, _) = issue(&client, &http01, &["kept.example.test"]).await;
    let crl_url = format!("{base}/ca/crl.der");
    for leaf in [&revoked, &kept] {
        let (_, parsed) = X509Certificate::from_der(leaf).unwrap();
        assert_eq!(
            crl_urls(&parsed),
            [crl_url.as_str()],
            "the CRL distribution point"
        );
    }

    let before = fetch_crl(&client, &crl_url).await;
    let before = parse_crl(&before);
    assert_eq!(before.iter_revoked_certificates().count(), 0);

    let reply = revoke(&client, &revoked, Some(1)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());

    let der = fetch_crl(&client, &crl_url).await;
    let crl = parse_crl(&der);
    let intermediate_der = intermediate_der(data_dir.path());
    let (_, intermediate) = X509Certificate::from_der(&intermediate_der).unwrap();
    assert_eq!(crl.issuer(), intermediate.subject());
    crl.verify_signature(intermediate.public_key())
        .expect("the CRL is signed by the intermediate");
    let root_der = ::pem::parse(std::fs::read(data_dir.path().join("ca/root.pem")).unwrap())
        .unwrap()
        .into_contents();
    let (_, root) = X509Certificate::from_der(&root_der).unwrap();
    assert!(
        crl.verify_signature(root.public_key()).is_err(),
        "and not by the root"
    );
    assert!(crl
        .next_update()
        .is_some_and(|next| next > crl.last_update()));
    // openssl as an independent judge of the encoding and the signature.
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("crl.der"), &der).unwrap();
    let verify = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-in"])
        .arg(scratch.path().join("crl.der"))
        .arg("-CAfile")
        .arg(data_dir.path().join("ca/intermediate.pem"))
        .output()
        .await
        .expect("running openssl crl");
    let said = String::from_utf8_lossy(&verify.stderr).into_owned()
        + &String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && said.contains("verify OK"),
        "openssl crl: {said}"
    );
    assert!(
        crl.crl_number() > before.crl_number(),
        "CRL numbers grow: {:?} then {:?}",
        before.crl_number(),
        crl.crl_number()
    );

    let entries: Vec<_> = crl.iter_revoked_certificates().collect();
    assert_eq!(entries.len(), 1, "only the revoked certificate");
    assert_eq!(entries[0].raw_serial(), serial_of(&revoked).as_slice());
    assert_ne!(entries[0].raw_serial(), serial_of(&kept).as_slice());
    assert_eq!(
        entries[0].reason_code().map(|(_, code)| code),
        Some(ReasonCode::KeyCompromise)
    );
    let (revoked_at, _) = stored_revocation(&server.state().store, &revoked).await;
    assert_eq!(
        Some(entries[0].revocation_date.timestamp()),
        revoked_at,
        "the CRL gives the time certgate recorded"
    );

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_an_external_url_leaves_name_no_crl_but_it_is_served() {
    let instance = Instance::start().await;
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let (leaf, _) = issue(&client, &instance.http01, &["plain.example.test"]).await;
    let (_, parsed) = X509Certificate::from_der(&leaf).unwrap();
    assert!(crl_urls(&parsed).is_empty());
    let reply = revoke(&client, &leaf, None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let der = fetch_crl(&client, &format!("{}/ca/crl.der", instance.base_url())).await;
    let crl = parse_crl(&der);
    let entries: Vec<_> = crl.iter_revoked_certificates().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].raw_serial(), serial_of(&leaf).as_slice());
    // Unspecified is left out of the entry, as RFC 5280 §5.3.1 asks.
    assert_eq!(entries[0].reason_code(), None);
}
