//! Renewing against certgate: ACME profiles chosen in newOrder with their own
//! lifetimes, authorizations reused by a renewal, and ACME Renewal
//! Information (RFC 9773) windows and `replaces`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use certgate_testkit::chain_ders;
use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{challenge_of, csr, RawClient, Reply};
use serde_json::{json, Value};
use x509_parser::prelude::*;

const PROFILES: &str = "default_profile = \"default\"\n\
    [profiles.default]\nissuer = \"local\"\n\
    [profiles.services]\nissuer = \"local\"\nttl = \"24h\"\ndescription = \"24 h certificates for services\"\n\
    [profiles.batch]\nissuer = \"local\"\nttl = \"1h\"\n";

async fn client(instance: &Instance) -> RawClient {
    RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await
}

async fn new_order(client: &RawClient, body: Value) -> Reply {
    client.post(&client.url("newOrder"), Some(body)).await
}

fn dns(names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect()
}

/// Validates, finalizes and downloads an order that is already `ready` or
/// becomes so over http-01; returns the leaf certificate (DER).
async fn issue(
    instance: &Instance,
    client: &RawClient,
    order_url: &str,
    names: &[&str],
) -> Vec<u8> {
    let order = client.post(order_url, None).await.json();
    for authz_url in order["authorizations"].as_array().unwrap() {
        let authz = client.post(authz_url.as_str().unwrap(), None).await.json();
        if authz["status"] == "valid" {
            continue;
        }
        let challenge = challenge_of(&authz, "http-01");
        let token = challenge["token"].as_str().unwrap();
        instance
            .http01
            .serve(token, &format!("{token}.{}", client.thumbprint()));
        client
            .post(challenge["url"].as_str().unwrap(), Some(json!({})))
            .await;
    }
    let order = client.wait_for_order(order_url, &["ready"]).await;
    let key = rcgen::KeyPair::generate().unwrap();
    client
        .post(
            order["finalize"].as_str().unwrap(),
            Some(json!({"csr": csr(names, &key)})),
        )
        .await;
    let order = client.wait_for_order(order_url, &["valid"]).await;
    let chain = client
        .post(order["certificate"].as_str().unwrap(), None)
        .await;
    chain_ders(std::str::from_utf8(&chain.body).unwrap()).remove(0)
}

/// RFC 9773 §4.1, computed here independently of certgate's own code.
fn cert_id(leaf_der: &[u8]) -> String {
    let (_, leaf) = X509Certificate::from_der(leaf_der).unwrap();
    let aki = leaf
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => aki.key_identifier.clone(),
            _ => None,
        })
        .expect("an AKI");
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(aki.0),
        URL_SAFE_NO_PAD.encode(leaf.raw_serial())
    )
}

fn lifetime_secs(leaf_der: &[u8]) -> i64 {
    let (_, leaf) = X509Certificate::from_der(leaf_der).unwrap();
    leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp()
}

#[tokio::test]
async fn new_order_selects_a_profile_with_its_own_lifetime() {
    let instance = Instance::start_with_config(Some(PROFILES.to_owned())).await;
    let client = client(&instance).await;
    let profiles = &client.directory["meta"]["profiles"];
    assert_eq!(
        profiles["services"], "24 h certificates for services",
        "{profiles}"
    );
    assert!(profiles["batch"].is_string() && profiles["default"].is_string());

    for (profile, hours) in [("services", 24), ("batch", 1)] {
        let name = format!("{profile}.lab.example");
        let reply = new_order(
            &client,
            json!({"identifiers": dns(&[&name]), "profile": profile}),
        )
        .await;
        assert_eq!(reply.status, 201, "{:?}", reply.json());
        assert_eq!(reply.json()["profile"], profile);
        let order_url = reply.header("location").unwrap().to_owned();
        let leaf = issue(&instance, &client, &order_url, &[&name]).await;
        // The embedded CA back-dates notBefore by up to a minute for clock skew.
        let extra = lifetime_secs(&leaf) - hours * 3600;
        assert!((0..=60).contains(&extra), "{profile}: {extra}");
    }

    let reply = new_order(
        &client,
        json!({"identifiers": dns(&["x.lab.example"]), "profile": "nightly"}),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.problem_type(), "invalidProfile");
}

#[tokio::test]
async fn a_renewal_reuses_valid_authorizations_of_the_same_account_and_profile() {
    let instance = Instance::start_with_config(Some(PROFILES.to_owned())).await;
    let client = client(&instance).await;
    let names = ["reuse.lab.example"];
    let (order_url, order) = client.ready_order(&instance.http01, &names).await;
    issue(&instance, &client, &order_url, &names).await;

    let again = new_order(&client, json!({"identifiers": dns(&names)})).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.json()["status"], "ready", "no validation needed");
    assert_eq!(again.json()["authorizations"], order["authorizations"]);

    // Another profile validates under its own rules, so it does not reuse.
    let other_profile = new_order(
        &client,
        json!({"identifiers": dns(&names), "profile": "services"}),
    )
    .await;
    assert_eq!(other_profile.json()["status"], "pending");

    // Nor does another account.
    let stranger = self::client(&instance).await;
    let theirs = new_order(&stranger, json!({"identifiers": dns(&names)})).await;
    assert_eq!(theirs.json()["status"], "pending");
    assert_ne!(theirs.json()["authorizations"], order["authorizations"]);
}

#[tokio::test]
async fn renewal_info_suggests_a_window_and_replaces_is_checked() {
    let instance = Instance::start_with_config(Some(PROFILES.to_owned())).await;
    let client = client(&instance).await;
    let names = ["ari.lab.example"];
    let (order_url, _) = client.ready_order(&instance.http01, &names).await;
    let leaf = issue(&instance, &client, &order_url, &names).await;
    let id = cert_id(&leaf);

    let base = client.url("renewalInfo");
    let reply = client
        .http
        .get(format!("{base}/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let retry_after: u64 = reply.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let info: Value = reply.json().await.unwrap();
    let (_, parsed) = X509Certificate::from_der(&leaf).unwrap();
    let not_before = parsed.validity().not_before.timestamp();
    let lifetime = lifetime_secs(&leaf);
    let start = ::time::OffsetDateTime::parse(
        info["suggestedWindow"]["start"].as_str().unwrap(),
        &::time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert!(
        (start - (not_before + lifetime * 2 / 3)).abs() <= 1,
        "window opens at two thirds: {info}"
    );

    for (bad, status) in [("no-dot", 400), ("AAAA.AAAA", 404)] {
        let reply = client
            .http
            .get(format!("{base}/{bad}"))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), status, "{bad}");
    }

    // A stranger may not claim to replace our certificate.
    let stranger = self::client(&instance).await;
    let reply = new_order(
        &stranger,
        json!({"identifiers": dns(&names), "replaces": id}),
    )
    .await;
    assert_eq!(reply.status, 403, "{:?}", reply.json());
    // The account that holds it may, once.
    let reply = new_order(&client, json!({"identifiers": dns(&names), "replaces": id})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    let reply = new_order(&client, json!({"identifiers": dns(&names), "replaces": id})).await;
    assert_eq!(reply.status, 409);
    assert_eq!(reply.problem_type(), "alreadyReplaced");
    // A replacement must share a name with what it replaces.
    let reply = new_order(
        &client,
        json!({"identifiers": dns(&["elsewhere.lab.example"]), "replaces": id}),
    )
    .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn the_reuse_window_is_how_long_a_valid_authorization_lives() {
    let config = format!("authorization_reuse = \"2h\"\n{PROFILES}");
    let instance = Instance::start_with_config(Some(config)).await;
    let client = client(&instance).await;
    let (_, order) = client
        .ready_order(&instance.http01, &["window.lab.example"])
        .await;
    let authz = client
        .post(order["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    assert_eq!(authz["status"], "valid");
    let expires = ::time::OffsetDateTime::parse(
        authz["expires"].as_str().unwrap(),
        &::time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = (expires - ::time::OffsetDateTime::now_utc()).whole_seconds();
    assert!((7190..=7200).contains(&left), "valid for {left} s more");
}
