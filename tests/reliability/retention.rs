//! Retention against the built binary: orders long over are deleted at the
//! next start, with the authorizations only they used, while their
//! certificate still downloads and is listed, its audit lines stay, and a
//! recent order is untouched.

use std::time::Duration;

use serde_json::json;
use sqlx::Connection;

use crate::common::integrity_check;
use certgate_testkit::database::{open_read_only, open_writable};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::inventory::{audited, leaf_serial, listed_serials};
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::RawClient;

/// Older than the default retention (30 days) counted from the end of a
/// reused authorization (30 days after validation).
const AGE: i64 = 70 * 86_400;

#[tokio::test(flavor = "multi_thread")]
async fn retention_prunes_old_orders_and_keeps_their_certificates_and_audit_lines() {
    let dns = DnsStub::start().await;
    let http01 = Http01Responder::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    args.http01_port = http01.port();
    let directory = format!("https://{}/acme/directory", args.listen);
    let root = data_dir.path().join("ca/root.pem");

    let mut certgate = CertgateProcess::start(&args).await;
    let mut client = RawClient::new(&directory, &root).await;
    client.register().await;
    let chain = client.issue(&http01, &["kept.example.test"]).await;
    let serial = leaf_serial(&chain);
    let (abandoned_url, abandoned) = client.new_order(&["abandoned.example.test"]).await;
    let abandoned_authz = abandoned["authorizations"][0].as_str().unwrap().to_owned();
    let (fresh_url, _) = client.new_order(&["fresh.example.test"]).await;
    let issued_url = {
        let orders = client
            .post(&format!("{}/orders", client.kid.as_deref().unwrap()), None)
            .await
            .json();
        let urls: Vec<String> = orders["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(urls.len(), 3, "{orders}");
        urls.into_iter()
            .find(|u| *u != abandoned_url && *u != fresh_url)
            .unwrap()
    };
    let certificate_url = client.post(&issued_url, None).await.json()["certificate"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(certgate.stop().await.success());
    let issued_lines = audited(data_dir.path(), "certificate_issued");
    assert_eq!(issued_lines.len(), 1, "{issued_lines:?}");

    // Everything but the fresh order ended more than the retention ago.
    let fresh_id = fresh_url.rsplit('/').next().unwrap().to_owned();
    let mut db = open_writable(data_dir.path()).await;
    sqlx::query(
        "UPDATE orders SET expires_at = expires_at - ?1, updated_at = updated_at - ?1,
                           created_at = created_at - ?1
         WHERE id != ?2",
    )
    .bind(AGE)
    .bind(&fresh_id)
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE authorizations SET expires_at = expires_at - ?1
         WHERE id NOT IN (SELECT authorization_id FROM order_authorizations WHERE order_id = ?2)",
    )
    .bind(AGE)
    .bind(&fresh_id)
    .execute(&mut db)
    .await
    .unwrap();
    let audit_rows_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    // Retention runs as the server starts.
    let mut certgate = CertgateProcess::start(&args).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !certgate.log().contains("pruned old orders") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pruning within 30 s:\n{}",
            certgate.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for gone in [&issued_url, &abandoned_url, &abandoned_authz] {
        let reply = client.post(gone, None).await;
        assert_eq!(reply.status, 404, "{gone}: {:?}", reply.json());
    }
    let fresh = client.post(&fresh_url, None).await;
    assert_eq!(
        fresh.status,
        200,
        "the recent order stays: {:?}",
        fresh.json()
    );
    assert_eq!(fresh.json()["status"], "pending");

    let download = client.post(&certificate_url, None).await;
    assert_eq!(download.status, 200);
    assert_eq!(
        String::from_utf8(download.body).unwrap(),
        chain,
        "the certificate is served as issued"
    );
    let listed = listed_serials(data_dir.path()).await;
    assert!(listed.contains(&serial), "{serial} not in {listed:?}");

    // A new order for the pruned name is a new pending order, not an error.
    let again = client
        .post(
            &client.url("newOrder"),
            Some(json!({"identifiers": [{"type": "dns", "value": "kept.example.test"}]})),
        )
        .await;
    assert_eq!(again.status, 201, "{:?}", again.json());
    assert_eq!(again.json()["status"], "pending", "nothing left to reuse");
    assert!(certgate.stop().await.success());

    assert_eq!(audited(data_dir.path(), "certificate_issued"), issued_lines);
    let mut db = open_read_only(data_dir.path()).await;
    let audit_rows_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let left: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM authorizations)",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    assert!(
        audit_rows_after >= audit_rows_before,
        "no audit row deleted"
    );
    // The fresh order and the new one, with one authorization each.
    assert_eq!(left, (2, 2));
    assert_eq!(integrity_check(data_dir.path()).await, "ok");
}
