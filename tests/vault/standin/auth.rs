//! Logins, the token's own lookup and renewal, and expiry by the stand-in's clock.

use std::time::Duration;

use serde_json::{json, Value};

use super::common::*;

/// Every field vaultrs' `AuthInfo` needs, present and of the right type.
fn assert_complete_auth(auth: &Value) {
    for field in ["client_token", "accessor", "entity_id", "token_type"] {
        assert!(auth[field].is_string(), "{field} in {auth}");
    }
    for field in ["policies", "token_policies"] {
        assert!(auth[field].is_array(), "{field} in {auth}");
    }
    assert!(auth["lease_duration"].is_u64(), "{auth}");
    assert!(
        auth["renewable"].is_boolean() && auth["orphan"].is_boolean(),
        "{auth}"
    );
    assert!(auth.get("metadata").is_some(), "{auth}");
    assert_eq!(auth["token_type"], "service");
}

/// Logs in, then proves the token works by signing with it.
async fn login_and_sign(lab: &Lab, path: &str, body: Value) -> String {
    let reply = lab.call("POST", path, None, Some(body)).await;
    assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    assert_eq!(reply.body["data"], Value::Null);
    let auth = &reply.body["auth"];
    assert_complete_auth(auth);
    assert_eq!(auth["lease_duration"], 3600);
    assert!(auth["policies"]
        .as_array()
        .unwrap()
        .contains(&json!("signer")));
    let token = auth["client_token"].as_str().unwrap().to_owned();
    let signed = lab
        .call(
            "POST",
            "pki_int/sign/web",
            Some(&token),
            Some(json!({ "csr": csr("l.lab.example", &[]) })),
        )
        .await;
    assert_eq!(signed.status, 200, "token from {path} signs");
    token
}

#[tokio::test]
async fn approle_login() {
    let lab = Lab::start().await;
    login_and_sign(
        &lab,
        "auth/approle/login",
        json!({ "role_id": "role-id-1", "secret_id": "secret-id-1" }),
    )
    .await;
    let wrong = lab
        .call(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({ "role_id": "role-id-1", "secret_id": "nope" })),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.error()),
        (400, "invalid role or secret ID".to_owned())
    );
    let logins = lab.vault.logins();
    assert_eq!(
        logins.iter().map(|l| l.status).collect::<Vec<_>>(),
        [200, 400]
    );
    assert!(logins.iter().all(|l| l.method == "approle"));
}

#[tokio::test]
async fn kubernetes_login() {
    let lab = Lab::start().await;
    login_and_sign(
        &lab,
        "auth/kubernetes/login",
        json!({ "role": "certgate", "jwt": "k8s-service-account-jwt" }),
    )
    .await;
    let unknown = lab
        .call(
            "POST",
            "auth/kubernetes/login",
            None,
            Some(json!({ "role": "x", "jwt": "k8s-service-account-jwt" })),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.error()),
        (400, "invalid role name \"x\"".to_owned())
    );
    let wrong = lab
        .call(
            "POST",
            "auth/kubernetes/login",
            None,
            Some(json!({ "role": "certgate", "jwt": "other" })),
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.error().contains("permission denied"));
}

#[tokio::test]
async fn jwt_login_with_and_without_role() {
    let lab = Lab::start().await;
    login_and_sign(
        &lab,
        "auth/jwt/login",
        json!({ "role": "certgate", "jwt": "eyJhbGciOi.payload.signature" }),
    )
    .await;
    login_and_sign(
        &lab,
        "auth/jwt/login",
        json!({ "jwt": "eyJhbGciOi.payload.signature" }),
    )
    .await;
    let wrong = lab
        .call(
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({ "jwt": "forged" })),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.error().starts_with("error validating token: "),
        "{}",
        wrong.error()
    );
}

#[tokio::test]
async fn lookup_and_renew_self() {
    let lab = Lab::start().await;
    lab.vault.advance_clock(Duration::from_secs(100));
    let lookup = lab
        .call("GET", "auth/token/lookup-self", Some(SIGNER_TOKEN), None)
        .await;
    assert_eq!(lookup.status, 200);
    let data = lookup.data();
    assert_eq!(data["ttl"], 500);
    assert_eq!(data["creation_ttl"], 600);
    assert_eq!(data["renewable"], true);
    assert_eq!(data["policies"], json!(["signer"]));
    assert!(data["expire_time"].is_string());
    for field in ["explicit_max_ttl", "num_uses", "creation_time"] {
        assert!(data[field].is_u64(), "{field} is an integer");
    }

    let renewed = lab
        .call(
            "POST",
            "auth/token/renew-self",
            Some(SIGNER_TOKEN),
            Some(json!({ "increment": "5m" })),
        )
        .await;
    assert_eq!(renewed.status, 200, "{:?}", renewed.body);
    assert_complete_auth(&renewed.body["auth"]);
    assert_eq!(renewed.body["auth"]["client_token"], SIGNER_TOKEN);
    assert_eq!(renewed.body["auth"]["lease_duration"], 300);

    // max_ttl is 1000 s from creation and 100 s have passed: 900 s remain.
    let capped = lab
        .call(
            "POST",
            "auth/token/renew-self",
            Some(SIGNER_TOKEN),
            Some(json!({ "increment": 5000 })),
        )
        .await;
    assert_eq!(capped.body["auth"]["lease_duration"], 900);
    assert_eq!(capped.body["warnings"].as_array().map(Vec::len), Some(1));
    assert_eq!(lab.vault.renewals().len(), 2);

    let root = lab
        .call("POST", "auth/token/renew-self", lab.root(), Some(json!({})))
        .await;
    assert_eq!(root.status, 400, "the root token does not renew");
}

#[tokio::test]
async fn tokens_expire_by_the_stand_in_clock() {
    let lab = Lab::start().await;
    let path = "pki_int/roles/web";
    assert_eq!(
        lab.call("GET", path, Some(SIGNER_TOKEN), None).await.status,
        200
    );
    lab.vault.advance_clock(Duration::from_secs(601));
    let expired = lab.call("GET", path, Some(SIGNER_TOKEN), None).await;
    assert_eq!(expired.status, 403);
    assert!(expired.error().contains("invalid token"));
    assert_eq!(
        lab.call("GET", path, lab.root(), None).await.status,
        200,
        "root never expires"
    );

    lab.vault.expire_all_tokens();
    assert_eq!(lab.call("GET", path, lab.root(), None).await.status, 403);
    lab.vault
        .add_token("hvs.fresh", certgate_testkit::vault::Grant::root());
    assert_eq!(
        lab.call("GET", path, Some("hvs.fresh"), None).await.status,
        200
    );
}
