//! The Vault inventory sync: certificates signed at a Vault mount without
//! certgate (Vault Agent, `vault write pki_int/sign/...`) appear in
//! `certs list` with source `vault` after one sync, revoked ones marked,
//! certgate's own listed once, and the certificate of an order whose answer
//! was lost linked to that order.

use certgate_testkit::instance::Instance;
use certgate_testkit::inventory::certs_listed;
use certgate_testkit::vault::{StandinConfig, VaultStandin, SECRET_ID};
use serde_json::{json, Value};

struct Lab {
    standin: VaultStandin,
    instance: Instance,
    _secrets: tempfile::TempDir,
}

async fn start() -> Lab {
    let standin = VaultStandin::start(StandinConfig::lab()).await;
    let secrets = tempfile::tempdir().unwrap();
    let config = format!(
        "default_profile = \"local\"\n{}[profiles.local]\nissuer = \"local\"\n\
         [profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n",
        standin.approle_config(secrets.path(), SECRET_ID)
    );
    let instance = Instance::start_with_config(Some(config)).await;
    Lab {
        standin,
        instance,
        _secrets: secrets,
    }
}

async fn revoke_at_vault(standin: &VaultStandin, serial: &str) {
    let status = reqwest::Client::new()
        .post(format!("{}/v1/pki_int/revoke", standin.addr()))
        .header("X-Vault-Token", standin.root_token())
        .json(&json!({ "serial_number": serial }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

fn plain(serial: &str) -> String {
    serial.replace(':', "")
}

fn find<'a>(listed: &'a [Value], serial: &str) -> Vec<&'a Value> {
    listed
        .iter()
        .filter(|c| c["serial"] == plain(serial))
        .collect()
}

async fn sync(lab: &Lab) {
    let sync = lab
        .instance
        .server()
        .inventory_sync()
        .expect("a Vault profile's mount is inventoried");
    for report in sync.sync_all().await {
        report.expect("the sync succeeds");
    }
}

#[tokio::test]
async fn certificates_signed_at_vault_are_listed_after_one_sync_and_revocations_follow() {
    let lab = start().await;
    let agent = lab.standin.sign_as_an_operator("agent.lab.example").await;
    let revoked = lab.standin.sign_as_an_operator("gone.lab.example").await;
    revoke_at_vault(&lab.standin, &revoked).await;

    // One of certgate's own, which Vault lists too.
    let client = lab.instance.registered_client("lab").await;
    let names = ["acme.lab.example"];
    let (order_url, order) = client.ready_order(&lab.instance.http01, &names).await;
    client.finalize(&order, &names).await;
    let order = client.wait_for_order(&order_url, &["valid"]).await;
    assert_eq!(order["status"], "valid");

    sync(&lab).await;
    let listed = certs_listed(lab.instance.data_dir.path(), &[]).await;
    let found = find(&listed, &agent);
    assert_eq!(found.len(), 1, "{listed:?}");
    assert_eq!(found[0]["source"], "vault");
    assert_eq!(found[0]["mount"], "pki_int");
    assert_eq!(found[0]["status"], "valid");
    assert_eq!(found[0]["names"], json!(["agent.lab.example"]));
    let found = find(&listed, &revoked);
    assert_eq!(found.len(), 1, "{listed:?}");
    assert_eq!(found[0]["status"], "revoked");
    let acme: Vec<&Value> = listed.iter().filter(|c| c["source"] == "acme").collect();
    assert_eq!(acme.len(), 1, "certgate's own is listed once: {listed:?}");
    assert_eq!(acme[0]["names"], json!(["acme.lab.example"]));
    assert_eq!(
        listed.len(),
        3,
        "the mount's CA certificate is not listed: {listed:?}"
    );

    // The expiry gauges count it by mount, apart from certgate's own.
    let http = certgate_testkit::raw_client::https_trusting(&lab.instance.root_pem_path());
    let text = http
        .get(format!("{}/metrics", lab.instance.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = certgate_testkit::openmetrics::parse(&text).unwrap();
    let pki_int = [("mount", "pki_int")];
    assert_eq!(
        scrape.value("certgate_vault_certificates_valid", &pki_int),
        1.0,
        "the revoked one is not counted"
    );
    assert_eq!(
        scrape.value(
            "certgate_vault_certificates_expiring",
            &[("mount", "pki_int"), ("within", "30d")]
        ),
        0.0
    );
    assert_eq!(
        scrape.sum("certgate_certificates_valid", &[]),
        1.0,
        "certgate's own is counted once, by its profile"
    );

    // A revocation at Vault after the first sync is marked by the next.
    revoke_at_vault(&lab.standin, &agent).await;
    sync(&lab).await;
    let listed = certs_listed(lab.instance.data_dir.path(), &["--revoked"]).await;
    assert_eq!(find(&listed, &agent).len(), 1, "{listed:?}");
    assert_eq!(find(&listed, &agent)[0]["status"], "revoked");
}

#[tokio::test]
async fn a_lost_answer_is_linked_to_its_order_by_the_next_sync() {
    let lab = start().await;
    let client = lab.instance.registered_client("lab").await;
    let names = ["lost.lab.example"];
    let (order_url, order) = client.ready_order(&lab.instance.http01, &names).await;
    lab.standin.drop_next_responses(1);
    client.finalize(&order, &names).await;
    let order = client
        .wait_for_order(&order_url, &["valid", "invalid"])
        .await;
    assert_eq!(order["status"], "invalid", "{order}");
    let signed = lab.standin.sign_calls();
    let serial = signed
        .iter()
        .find_map(|call| call.serial.clone())
        .expect("Vault signed it");
    // Another certificate for the same name, over another key, is not the
    // order's.
    let other = lab.standin.sign_as_an_operator("lost.lab.example").await;

    sync(&lab).await;
    let listed = certs_listed(lab.instance.data_dir.path(), &["--all"]).await;
    let order_id = order_url.rsplit('/').next().unwrap();
    let found = find(&listed, &serial);
    assert_eq!(found.len(), 1, "{listed:?}");
    assert_eq!(found[0]["source"], "vault");
    assert_eq!(found[0]["order"], order_id);
    assert_eq!(found[0]["profile"], "lab");
    assert_eq!(found[0]["role"], "lab-internal");
    assert!(!found[0]["account"].as_str().unwrap().is_empty());
    let found = find(&listed, &other);
    assert_eq!(found.len(), 1, "{listed:?}");
    assert!(found[0].get("order").is_none(), "{listed:?}");
}
