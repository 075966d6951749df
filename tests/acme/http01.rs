//! HTTP-01 as RFC 8555 §8.3 and certgate's limits define it: redirects are
//! followed up to ten, trailing whitespace is forgiven, and a huge body is
//! read only as far as needed to see that it is wrong.

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::RawClient;
use serde_json::Value;

/// Orders `name` as a fresh account and runs its http-01 challenge, set up by `answer`.
async fn validate(instance: &Instance, name: &str, answer: impl FnOnce(&str, &str)) -> Value {
    RawClient::registered(&instance.directory_url(), &instance.root_pem_path())
        .await
        .attempt_http01(name, answer)
        .await
}

#[tokio::test]
async fn trailing_whitespace_is_forgiven() {
    let instance = Instance::start().await;
    let challenge = validate(&instance, "ws.lab.example", |token, key_authz| {
        instance
            .http01
            .serve(token, &format!("{key_authz}\r\n  \n"));
    })
    .await;
    assert_eq!(challenge["status"], "valid", "{challenge}");
}

#[tokio::test]
async fn ten_redirects_are_followed_and_eleven_are_not() {
    let instance = Instance::start().await;
    let challenge = validate(&instance, "ten.lab.example", |token, key_authz| {
        instance.http01.serve_after_redirects(token, key_authz, 10);
    })
    .await;
    assert_eq!(challenge["status"], "valid", "{challenge}");

    let challenge = validate(&instance, "eleven.lab.example", |token, key_authz| {
        instance.http01.serve_after_redirects(token, key_authz, 11);
    })
    .await;
    assert_eq!(challenge["status"], "invalid");
    assert_eq!(
        challenge["error"]["type"],
        "urn:ietf:params:acme:error:connection"
    );
    let detail = challenge["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("redirects"), "{detail}");
}

#[tokio::test]
async fn a_huge_body_is_counted_and_a_wrong_key_authorization_quoted() {
    let instance = Instance::start().await;
    let challenge = validate(&instance, "huge.lab.example", |token, _| {
        instance.http01.serve(token, &"x".repeat(4 << 20));
    })
    .await;
    assert_eq!(challenge["status"], "invalid");
    assert_eq!(
        challenge["error"]["type"],
        "urn:ietf:params:acme:error:incorrectResponse"
    );
    let detail = challenge["error"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("at least 8192 bytes (not quoted") && !detail.contains("xxxx"),
        "{detail}"
    );

    let challenge = validate(&instance, "wrong.lab.example", |token, _| {
        instance
            .http01
            .serve(token, &format!("{token}.not-the-thumbprint"));
    })
    .await;
    assert_eq!(
        challenge["error"]["type"],
        "urn:ietf:params:acme:error:incorrectResponse"
    );
    let detail = challenge["error"]["detail"].as_str().unwrap();
    assert!(detail.contains(".not-the-thumbprint\""), "{detail}");
}

#[tokio::test]
async fn a_redirect_to_another_port_is_not_followed() {
    let instance = Instance::start().await;
    let challenge = validate(&instance, "ssh.lab.example", |token, _| {
        instance.http01.redirect(token, "http://127.0.0.1:22/");
    })
    .await;
    assert_eq!(challenge["status"], "invalid");
    let detail = challenge["error"]["detail"].as_str().unwrap();
    assert!(detail.contains("only ports 80, 443"), "{detail}");
}

#[tokio::test]
async fn a_redirect_to_a_cloud_metadata_address_is_refused() {
    let instance = Instance::start().await;
    for target in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
    ] {
        let challenge = validate(&instance, "meta.lab.example", |token, _| {
            instance.http01.redirect(token, target);
        })
        .await;
        assert_eq!(challenge["status"], "invalid", "{target}");
        assert_eq!(
            challenge["error"]["type"],
            "urn:ietf:params:acme:error:connection"
        );
        let detail = challenge["error"]["detail"].as_str().unwrap();
        assert!(
            detail.contains("a network validation may not connect to"),
            "{target}: {detail}"
        );
        assert!(detail.contains(target.trim_end_matches('/')), "{detail}");
    }
}

#[tokio::test]
async fn an_ip_identifier_validates_over_http01_at_the_address_itself() {
    let instance = Instance::start().await;
    let challenge = validate(&instance, "127.0.0.1", |token, key_authz| {
        instance.http01.serve(token, key_authz);
    })
    .await;
    assert_eq!(challenge["status"], "valid", "{challenge}");
}
