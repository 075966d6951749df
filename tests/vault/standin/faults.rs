//! Health statuses and the fault switches, from the handle and over HTTP.

use std::time::{Duration, Instant};

use serde_json::json;

use super::common::*;
use certgate_testkit::vault::HealthOverride;

async fn health(lab: &Lab, query: &str) -> Reply {
    lab.call("GET", &format!("sys/health{query}"), None, None)
        .await
}

#[tokio::test]
async fn sealed_and_unsealed() {
    let lab = Lab::start().await;
    let healthy = health(&lab, "").await;
    assert_eq!(healthy.status, 200);
    assert_eq!(
        (
            healthy.body["initialized"].clone(),
            healthy.body["sealed"].clone()
        ),
        (json!(true), json!(false))
    );
    assert!(healthy.body["version"].is_string() && healthy.body["server_time_utc"].is_i64());
    assert!(
        healthy.body.get("request_id").is_none(),
        "health is not wrapped in the envelope"
    );

    lab.vault.seal();
    assert_eq!(health(&lab, "").await.status, 503);
    assert_eq!(health(&lab, "").await.body["sealed"], true);
    let sign = lab.sign("web", &csr("s.lab.example", &[]), json!({})).await;
    assert_eq!(
        (sign.status, sign.error()),
        (503, "Vault is sealed".to_owned())
    );
    let read = lab.call("GET", "pki_int/ca_chain", None, None).await;
    assert_eq!(read.status, 503);
    assert_eq!(lab.vault.sign_count(), 0);

    lab.vault.unseal();
    assert_eq!(health(&lab, "").await.status, 200);
    assert_eq!(
        lab.sign("web", &csr("s.lab.example", &[]), json!({}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn health_statuses() {
    let lab = Lab::start().await;
    lab.vault.standby_redirect(Some("http://127.0.0.1:1"));
    assert_eq!(health(&lab, "").await.status, 429);
    assert_eq!(health(&lab, "?standbyok=true").await.status, 200);
    lab.vault.standby_redirect(None);
    let cases = [
        (HealthOverride::PerformanceStandby, 473),
        (HealthOverride::DrSecondary, 472),
        (HealthOverride::Uninitialized, 501),
    ];
    for (state, status) in cases {
        lab.vault.set_health(Some(state));
        assert_eq!(health(&lab, "").await.status, status, "{state:?}");
    }
    lab.vault.set_health(None);
    assert_eq!(health(&lab, "").await.status, 200);
}

#[tokio::test]
async fn standby_redirects_to_the_active_node_with_the_same_path() {
    let lab = Lab::start().await;
    lab.vault.standby_redirect(Some("http://10.0.0.9:8200"));
    let reply = lab
        .call("GET", "pki_int/roles/web?x=1", lab.root(), None)
        .await;
    assert_eq!(reply.status, 307);
    assert_eq!(
        reply.headers["location"],
        "http://10.0.0.9:8200/v1/pki_int/roles/web?x=1"
    );
    assert_eq!(reply.body, json!(""), "no body");
}

#[tokio::test]
async fn rate_limit_and_injected_failures_are_counted() {
    let lab = Lab::start().await;
    lab.vault.rate_limit_next(1);
    let limited = lab.sign("web", &csr("q.lab.example", &[]), json!({})).await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.error(),
        "request path \"pki_int/sign/web\": rate limit quota exceeded"
    );
    assert!(limited.headers.contains_key("retry-after"));

    lab.vault.fail_next(2, 502);
    assert_eq!(
        lab.sign("web", &csr("q.lab.example", &[]), json!({}))
            .await
            .status,
        502
    );
    assert_eq!(
        lab.sign("web", &csr("q.lab.example", &[]), json!({}))
            .await
            .status,
        502
    );
    assert_eq!(
        lab.sign("web", &csr("q.lab.example", &[]), json!({}))
            .await
            .status,
        200
    );
    assert_eq!(
        lab.vault.sign_count(),
        1,
        "refused requests never reach the sign handler"
    );
}

#[tokio::test]
async fn slow_answers_take_at_least_the_delay() {
    let lab = Lab::start().await;
    lab.vault.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(health(&lab, "").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn dropped_request_is_never_processed() {
    let lab = Lab::start().await;
    lab.vault.drop_next_requests(1);
    let body = json!({ "csr": csr("drop.lab.example", &[]) });
    let result = lab
        .try_call("POST", "pki_int/sign/web", lab.root(), Some(body.clone()))
        .await;
    assert!(result.is_err(), "the connection closes without an answer");
    assert_eq!(lab.vault.sign_count(), 0);
    let retry = lab
        .call("POST", "pki_int/sign/web", lab.root(), Some(body))
        .await;
    assert_eq!(retry.status, 200);
}

#[tokio::test]
async fn dropped_response_still_signed() {
    let lab = Lab::start().await;
    lab.vault.drop_next_responses(1);
    let body = json!({ "csr": csr("lost.lab.example", &[]) });
    let result = lab
        .try_call("POST", "pki_int/sign/web", lab.root(), Some(body))
        .await;
    assert!(result.is_err(), "the answer is lost");
    let calls = lab.vault.sign_calls();
    assert_eq!(calls.len(), 1);
    let serial = calls[0].serial.clone().expect("the certificate was issued");
    assert!(lab.vault.stored_cert("pki_int", &serial).is_some());
}

#[tokio::test]
async fn admin_path_sets_faults_over_http() {
    let lab = Lab::start().await;
    let admin = format!("{}/_standin/faults", lab.vault.addr());
    let set = lab
        .http
        .post(&admin)
        .json(&json!({ "sealed": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert!(lab.vault.faults().sealed);
    assert_eq!(
        lab.call("GET", "pki_int/roles/web", lab.root(), None)
            .await
            .status,
        503
    );
    lab.http.post(&admin).json(&json!({})).send().await.unwrap();
    assert_eq!(
        lab.call("GET", "pki_int/roles/web", lab.root(), None)
            .await
            .status,
        200
    );

    lab.sign("web", &csr("adm.lab.example", &[]), json!({}))
        .await;
    let record: serde_json::Value = lab
        .http
        .get(format!("{}/_standin/record", lab.vault.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(record["signs"].as_array().map(Vec::len), Some(1));
}
