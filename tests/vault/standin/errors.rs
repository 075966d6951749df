//! The error table and the order of the sign checks: a request failing
//! several checks must get the error of the first one.

use serde_json::json;

use super::common::*;

const POLICY_DENIED: &str = "1 error occurred:\n\t* permission denied\n\n";

#[tokio::test]
async fn check_1_unknown_role_comes_before_everything() {
    let lab = Lab::start().await;
    let reply = lab.sign_at("pki_empty/sign/nope", "", json!({})).await;
    assert_eq!(
        (reply.status, reply.error()),
        (400, "unknown role: nope".to_owned())
    );
}

#[tokio::test]
async fn check_2_a_mount_without_ca_is_a_500() {
    let lab = Lab::start().await;
    let reply = lab.sign_at("pki_empty/sign/web", "", json!({})).await;
    assert_eq!(reply.status, 500);
    assert!(
        reply.error().starts_with(
            "1 error occurred:\n\t* could not fetch the CA certificate (was one set?): "
        ),
        "{:?}",
        reply.error()
    );
}

#[tokio::test]
async fn check_3_csr_must_be_present_and_parse() {
    let lab = Lab::start().await;
    let empty = lab.sign("web", "", json!({})).await;
    assert_eq!(
        (empty.status, empty.error()),
        (400, "\"csr\" is empty".to_owned())
    );
    let garbage = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
    let bad = lab.sign("web", garbage, json!({})).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.error()
            .starts_with("certificate request could not be parsed: "),
        "{}",
        bad.error()
    );
}

#[tokio::test]
async fn check_4_key_type_before_names() {
    let lab = Lab::start().await;
    let reply = lab
        .sign("rsa-only", &csr("bad.other.org", &[]), json!({}))
        .await;
    assert_eq!(reply.error(), "role requires keys of type rsa");
}

#[tokio::test]
async fn check_7_ip_sans_before_ttl() {
    let lab = Lab::start().await;
    let ip = "192.0.2.1".parse().unwrap();
    let reply = lab
        .sign(
            "noip",
            &csr_with(&ec_key(), "x.lab.example", &[], &[ip]),
            json!({ "ttl": "1h", "not_after": "2030-01-01T00:00:00Z" }),
        )
        .await;
    assert!(
        reply.error().starts_with("IP Subject Alternative Names"),
        "{}",
        reply.error()
    );
}

#[tokio::test]
async fn check_8_ttl_beyond_the_ca_is_refused_before_the_signature_check() {
    let lab = Lab::start().await;
    let tampered = tamper_signature(&csr("x.lab.example", &[]));
    let reply = lab
        .sign_at("pki_short/sign/web", &tampered, json!({ "ttl": "72h" }))
        .await;
    assert_eq!(reply.status, 400);
    let error = reply.error();
    assert!(
        error.starts_with("cannot satisfy request, as TTL would result in notAfter of "),
        "{error}"
    );
    assert!(
        error.contains("beyond the expiration of the CA certificate at "),
        "{error}"
    );

    let within = lab
        .sign_at(
            "pki_short/sign/web",
            &csr("x.lab.example", &[]),
            json!({ "ttl": "24h" }),
        )
        .await;
    assert_eq!(within.status, 200, "{:?}", within.body);
}

#[tokio::test]
async fn check_9_a_bad_csr_signature_is_refused() {
    let lab = Lab::start().await;
    let reply = lab
        .sign(
            "web",
            &tamper_signature(&csr("x.lab.example", &[])),
            json!({}),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (400, "request signature invalid".to_owned())
    );
    assert_eq!(lab.vault.issued_count(), 0);
}

#[tokio::test]
async fn missing_reads_are_404_with_an_empty_list() {
    let lab = Lab::start().await;
    for path in ["pki_int/roles/nope", "pki_int/cert/01:02:03"] {
        let reply = lab.call("GET", path, lab.root(), None).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.body, json!({ "errors": [] }), "{path}");
    }
}

#[tokio::test]
async fn policy_denial_is_403_permission_denied() {
    let lab = Lab::start().await;
    let reply = lab
        .call(
            "POST",
            "pki_int/sign/web",
            Some(READER_TOKEN),
            Some(json!({ "csr": csr("x.lab.example", &[]) })),
        )
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (403, POLICY_DENIED.to_owned())
    );
    let allowed = lab
        .call("GET", "pki_int/roles/web", Some(READER_TOKEN), None)
        .await;
    assert_eq!(allowed.status, 200);
    let no_token = lab.call("GET", "pki_int/roles/web", None, None).await;
    assert_eq!(no_token.status, 403);
    assert_eq!(
        lab.vault.sign_count(),
        0,
        "a denied request never reaches the handler"
    );
}

#[tokio::test]
async fn unknown_token_is_403_invalid_token() {
    let lab = Lab::start().await;
    let reply = lab
        .call("GET", "pki_int/roles/web", Some("hvs.not-a-token"), None)
        .await;
    assert_eq!(reply.status, 403);
    assert!(reply.error().contains("permission denied") && reply.error().contains("invalid token"));
}

#[tokio::test]
async fn unknown_path_in_a_mount_is_unsupported_path() {
    let lab = Lab::start().await;
    let reply = lab
        .call("GET", "pki_int/no/such/thing", lab.root(), None)
        .await;
    assert_eq!(
        (reply.status, reply.error()),
        (
            404,
            "1 error occurred:\n\t* unsupported path\n\n".to_owned()
        )
    );
    let wrong_method = lab.call("GET", "pki_int/sign/web", lab.root(), None).await;
    assert_eq!(wrong_method.status, 405);
}

#[tokio::test]
async fn bearer_authorization_is_accepted_like_x_vault_token() {
    let lab = Lab::start().await;
    let reply = lab
        .http
        .get(format!("{}/v1/pki_int/roles/web", lab.vault.addr()))
        .bearer_auth(lab.vault.root_token())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}
