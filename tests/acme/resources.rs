//! The resources around an order: directory, nonces, the account object and
//! authorization deactivation (RFC 8555 §7.1–7.5), read with a raw client so
//! every header and status is visible.

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::RawClient;
use serde_json::{json, Value};

#[tokio::test]
async fn directory_and_nonces_follow_rfc8555() {
    let instance = Instance::start().await;
    let client = RawClient::new(&instance.directory_url(), &instance.root_pem_path()).await;
    for field in [
        "newNonce",
        "newAccount",
        "newOrder",
        "revokeCert",
        "keyChange",
    ] {
        assert!(
            client.directory[field]
                .as_str()
                .unwrap()
                .starts_with("https://localhost:"),
            "{field}"
        );
    }
    assert_eq!(client.directory["meta"]["externalAccountRequired"], false);
    assert!(client.directory["meta"]["caaIdentities"].is_array());

    let head = client
        .http
        .head(client.url("newNonce"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let get = client
        .http
        .get(client.url("newNonce"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 204);
    for reply in [&head, &get] {
        assert_eq!(reply.headers()["cache-control"], "no-store");
        assert!(reply.headers().contains_key("replay-nonce"));
        let link = reply.headers()["link"].to_str().unwrap();
        assert_eq!(
            link,
            format!("<{}>;rel=\"index\"", instance.directory_url())
        );
    }
    assert_ne!(
        head.headers()["replay-nonce"],
        get.headers()["replay-nonce"]
    );

    let root = client
        .http
        .get(format!("{}/ca/root.pem", instance.base_url()))
        .send()
        .await
        .unwrap();
    let served = root.text().await.unwrap();
    assert_eq!(
        served,
        std::fs::read_to_string(instance.root_pem_path()).unwrap()
    );
    let health = client
        .http
        .get(format!("{}/health", instance.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn account_object_lookup_update_and_existing_key() {
    let instance = Instance::start().await;
    let mut client = RawClient::new(&instance.directory_url(), &instance.root_pem_path()).await;
    let created = client.register().await;
    let account_url = client.kid.clone().unwrap();
    assert_eq!(created.json()["status"], "valid");
    assert_eq!(created.json()["orders"], format!("{account_url}/orders"));

    // The same key again: 200 with the existing account's URL, no new account.
    let key_only = RawClient {
        kid: None,
        ..client
    };
    let again = key_only
        .post(
            &key_only.url("newAccount"),
            Some(json!({"termsOfServiceAgreed": true})),
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("location"), Some(account_url.as_str()));
    let existing = key_only
        .post(
            &key_only.url("newAccount"),
            Some(json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(
        (existing.status, existing.header("location")),
        (200, Some(account_url.as_str()))
    );
    let client = RawClient {
        kid: Some(account_url.clone()),
        ..key_only
    };

    let updated = client
        .post(
            &account_url,
            Some(json!({"contact": ["mailto:pki@lab.example"]})),
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json()["contact"], json!(["mailto:pki@lab.example"]));
    let read = client.post(&account_url, None).await;
    assert_eq!(read.json()["contact"], json!(["mailto:pki@lab.example"]));

    let (order_url, _) = client.new_order(&["one.lab.example"]).await;
    let list = client.post(&format!("{account_url}/orders"), None).await;
    assert_eq!(list.json()["orders"], json!([order_url]));
}

#[tokio::test]
async fn deactivating_an_authorization_invalidates_its_order() {
    let instance = Instance::start().await;
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let (order_url, order) = client.new_order(&["gone.lab.example"]).await;
    let authz_url = order["authorizations"][0].as_str().unwrap();
    let pending = client.post(authz_url, None).await;
    assert_eq!(pending.json()["status"], "pending");
    assert_eq!(
        pending.header("retry-after"),
        Some("1"),
        "pending authorizations say when to poll"
    );

    let reply = client
        .post(authz_url, Some(json!({"status": "deactivated"})))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "deactivated");
    let order = client.post(&order_url, None).await.json();
    assert_eq!(order["status"], "invalid");
    assert!(order["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("deactivated"));

    // Deactivated is final.
    let again = client
        .post(authz_url, Some(json!({"status": "deactivated"})))
        .await;
    assert_eq!(
        (again.status, again.problem_type().as_str()),
        (400, "malformed")
    );
}

#[tokio::test]
async fn the_orders_list_pages_with_link_next() {
    let instance = Instance::start().await;
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let mut created = Vec::new();
    for i in 0..101 {
        created.push(client.new_order(&[&format!("o{i}.lab.example")]).await.0);
    }
    let first = client
        .post(&format!("{}/orders", client.kid.as_ref().unwrap()), None)
        .await;
    let link = first.header("link").unwrap_or_default().to_owned();
    let links: Vec<&str> = first
        .headers
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let next = links
        .iter()
        .find(|l| l.ends_with("rel=\"next\""))
        .unwrap_or_else(|| panic!("no next link in {links:?} ({link})"));
    let next_url = next.trim_start_matches('<').split('>').next().unwrap();
    let second = client.post(next_url, None).await;
    assert_eq!(second.status, 200, "{:?}", second.json());
    assert!(second
        .headers
        .get_all("link")
        .iter()
        .all(|v| !v.to_str().unwrap().contains("next")));

    let mut listed: Vec<Value> = first.json()["orders"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 100);
    listed.extend(second.json()["orders"].as_array().unwrap().iter().cloned());
    assert_eq!(listed, created.iter().map(|u| json!(u)).collect::<Vec<_>>());
}
