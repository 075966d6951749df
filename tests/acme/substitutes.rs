//! A clock and an issuer of the test's own, put in place through the
//! composition root (`app::start_with`): expiry without waiting days, and an
//! issuer that refuses, without a CA that would.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use certgate::app::Substitutes;
use certgate::issuer::{IssueError, IssuedCertificate, Issuer, RevokeRequest, SignRequest};
use serde_json::json;

use certgate_testkit::instance::{Instance, SettableClock};
use certgate_testkit::raw_client::{challenge_of, csr, RawClient};

#[tokio::test]
async fn a_pending_order_and_its_authorization_expire_when_the_clock_passes_their_lifetime() {
    let clock = SettableClock::now_real();
    let substitutes = Substitutes {
        clock: Some(clock.clone()),
        ..Substitutes::default()
    };
    let instance = Instance::start_with_substitutes(None, substitutes).await;
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let (order_url, order) = client.new_order(&["expiring.lab.example"]).await;
    let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
    assert_eq!(order["status"], "pending");

    // A pending order lives 7 days: one second short of that, still pending.
    clock.advance(Duration::from_secs(7 * 86_400 - 1));
    assert_eq!(
        client.post(&order_url, None).await.json()["status"],
        "pending"
    );

    clock.advance(Duration::from_secs(1));
    assert_eq!(
        client.post(&order_url, None).await.json()["status"],
        "invalid"
    );
    let authz = client.post(&authz_url, None).await.json();
    assert_eq!(authz["status"], "expired");
    // An expired authorization's challenge can no longer be answered.
    let challenge = challenge_of(&authz, "http-01");
    let reply = client
        .post(challenge["url"].as_str().unwrap(), Some(json!({})))
        .await;
    assert_ne!(reply.json()["status"], "valid", "{:?}", reply.json());
}

/// Refuses every CSR, as a CA whose policy the request breaks would.
struct RefusingIssuer;

#[async_trait]
impl Issuer for RefusingIssuer {
    async fn sign(&self, _request: &SignRequest) -> Result<IssuedCertificate, IssueError> {
        Err(IssueError::Rejected(
            "the test's issuer refuses every CSR".into(),
        ))
    }

    async fn revoke(&self, _certificate: &RevokeRequest) -> Result<(), IssueError> {
        Ok(())
    }

    fn describe(&self) -> String {
        "refusing test issuer".into()
    }
}

#[tokio::test]
async fn an_issuer_that_refuses_turns_the_order_invalid_with_bad_csr() {
    let substitutes = Substitutes {
        issuer: Some(Arc::new(RefusingIssuer)),
        ..Substitutes::default()
    };
    let instance = Instance::start_with_substitutes(None, substitutes).await;
    let client = RawClient::registered(&instance.directory_url(), &instance.root_pem_path()).await;
    let name = "refused.lab.example";
    let (order_url, order) = client.ready_order(&instance.http01, &[name]).await;
    let key = rcgen::KeyPair::generate().unwrap();
    let reply = client
        .post(
            order["finalize"].as_str().unwrap(),
            Some(json!({"csr": csr(&[name], &key)})),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    let order = client
        .wait_for_order(&order_url, &["valid", "invalid"])
        .await;
    assert_eq!(order["status"], "invalid", "{order}");
    assert_eq!(order["error"]["type"], "urn:ietf:params:acme:error:badCSR");
    assert!(order["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("the test's issuer refuses every CSR"));
}
