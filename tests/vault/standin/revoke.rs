//! Revocation by serial or PEM, twice, of expired and of unstored certificates.

use std::time::Duration;

use serde_json::{json, Value};

use super::common::*;

async fn issue(lab: &Lab, role: &str) -> (String, String) {
    let reply = lab.sign(role, &csr("rv.lab.example", &[]), json!({})).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    (
        reply.data()["serial_number"].as_str().unwrap().to_owned(),
        reply.data()["certificate"].as_str().unwrap().to_owned(),
    )
}

async fn revoke(lab: &Lab, body: Value) -> Reply {
    lab.call("POST", "pki_int/revoke", lab.root(), Some(body))
        .await
}

#[tokio::test]
async fn revoking_twice_returns_the_first_time() {
    let lab = Lab::start().await;
    let (serial, _) = issue(&lab, "web").await;
    let first = revoke(&lab, json!({ "serial_number": serial })).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let at = first.data()["revocation_time"].as_i64().unwrap();
    assert!((at - now()).abs() <= 5);
    assert!(first.data()["revocation_time_rfc3339"]
        .as_str()
        .unwrap()
        .ends_with('Z'));

    lab.vault.advance_clock(Duration::from_secs(600));
    let second = revoke(&lab, json!({ "serial_number": serial.replace(':', "-") })).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.data()["revocation_time"].as_i64().unwrap(), at);

    let read = lab
        .call("GET", &format!("pki_int/cert/{serial}"), None, None)
        .await;
    assert_eq!(read.data()["revocation_time"].as_i64().unwrap(), at);
}

#[tokio::test]
async fn revoke_refusals() {
    let lab = Lab::start().await;
    let (serial, pem) = issue(&lab, "web").await;
    let neither = revoke(&lab, json!({})).await;
    assert_eq!(
        (neither.status, neither.error()),
        (
            400,
            "The serial number or certificate to revoke must be provided.".to_owned()
        )
    );
    let both = revoke(&lab, json!({ "serial_number": serial, "certificate": pem })).await;
    assert_eq!(both.status, 400);
    let unknown = revoke(&lab, json!({ "serial_number": "0a:0b:0c" })).await;
    assert_eq!(
        (unknown.status, unknown.error()),
        (
            400,
            "certificate with serial 0a:0b:0c not found.".to_owned()
        )
    );

    let other = Lab::start().await;
    let (_, foreign) = issue(&other, "web").await;
    let not_ours = revoke(&lab, json!({ "certificate": foreign })).await;
    assert_eq!(
        not_ours.status, 400,
        "a certificate from another CA is not revocable here"
    );
}

#[tokio::test]
async fn no_store_certificates_are_revoked_by_pem_only() {
    let lab = Lab::start().await;
    let (serial, pem) = issue(&lab, "nostore").await;
    let read = lab
        .call("GET", &format!("pki_int/cert/{serial}"), None, None)
        .await;
    assert_eq!(
        (read.status, read.body.clone()),
        (404, json!({ "errors": [] }))
    );

    let by_serial = revoke(&lab, json!({ "serial_number": serial })).await;
    assert_eq!(by_serial.status, 400);
    assert_eq!(
        by_serial.error(),
        format!("certificate with serial {serial} not found.")
    );

    let by_pem = revoke(&lab, json!({ "certificate": pem })).await;
    assert_eq!(by_pem.status, 200, "{:?}", by_pem.body);
    assert!(by_pem.data()["revocation_time"].as_i64().unwrap() > 0);
    let recorded = lab.vault.revocations();
    assert_eq!(recorded.len(), 2);
    assert!(recorded[1].by_pem && recorded[1].serial == serial && recorded[1].status == 200);
}

#[tokio::test]
async fn an_expired_certificate_is_not_revoked_but_answered_with_a_warning() {
    let lab = Lab::start().await;
    let reply = lab
        .sign("web", &csr("old.lab.example", &[]), json!({ "ttl": "1h" }))
        .await;
    let serial = reply.data()["serial_number"].as_str().unwrap().to_owned();
    lab.vault.advance_clock(Duration::from_secs(2 * 3600));
    let revoked = revoke(&lab, json!({ "serial_number": serial })).await;
    assert_eq!(revoked.status, 200);
    assert_eq!(revoked.body["data"], Value::Null);
    assert_eq!(revoked.body["warnings"].as_array().map(Vec::len), Some(1));
    let read = lab
        .call("GET", &format!("pki_int/cert/{serial}"), None, None)
        .await;
    assert_eq!(read.data()["revocation_time"], 0);
}
