//! HTTP-01 as RFC 8555 §8.3 and certgate's limits define it: redirects are
//! followed up to ten, trailing whitespace is forgiven, and a huge body is
//! read only as far as needed to see that it is wrong.

use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{challenge_of, RawClient};
use serde_json::{json, Value};

/// Orders `name`, lets `answer` set up the responder for the http-01 token
/// and key authorization, triggers validation and returns the challenge.
async fn validate(instance: &Instance, name: &str, answer: impl Fn(&str, &str)) -> Value {
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let (_, order) = client.new_order(&[name]).await;
    let authz = client
        .post(order["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    let challenge = challenge_of(&authz, "http-01").clone();
    let token = challenge["token"].as_str().unwrap();
    answer(token, &format!("{token}.{}", client.thumbprint()));
    let url = challenge["url"].as_str().unwrap();
    let mut reply = client.post(url, Some(json!({}))).await.json();
    while reply["status"] == "processing" {
        // The server said how long to wait; the validation has a 10 s bound.
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        reply = client.post(url, None).await.json();
    }
    reply
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
async fn a_wrong_or_huge_body_is_an_incorrect_response_quoting_its_start() {
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
        detail.contains("xxxx") && detail.len() < 1024,
        "bounded quote: {detail}"
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
