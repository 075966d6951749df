//! Pieces the reliability tests share: a flow of ACME requests that
//! tolerates a server going away, a look into the database file,
//! `/ready` polled until it says what a test waits for, and the forwarding
//! half of a proxy a test can cut.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;
use tokio::net::TcpStream;
use tokio::sync::watch;

use certgate_testkit::http01::Http01Responder;
use certgate_testkit::raw_client::{challenge_of, csr, AccountKey, RawClient};

/// A client of the same server as `template`, with a new account key and
/// no account yet; shares `template`'s connection pool.
pub fn fresh_client(template: &RawClient) -> RawClient {
    RawClient {
        http: template.http.clone(),
        directory: template.directory.clone(),
        key: AccountKey::generate(),
        kid: None,
    }
}

/// The problem document a fault of the disk must give: `503` with
/// `Retry-After`, an ACME problem body.
pub fn assert_unavailable(what: &str, reply: &certgate_testkit::raw_client::Reply) {
    assert_eq!(reply.status, 503, "{what}: {:?}", reply.json());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{what}"
    );
    assert_eq!(reply.problem_type(), "serverInternal", "{what}");
    let retry_after: u64 = reply
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: 503 without Retry-After"))
        .parse()
        .expect("Retry-After in seconds");
    assert!(retry_after > 0, "{what}: Retry-After {retry_after}");
}

/// One whole issuance for `name` with no panics on a lost connection:
/// `Ok(chain)` once the certificate is downloaded, `Err(step)` at the first
/// step the server did not answer as it should.
pub async fn try_issue(
    client: &mut RawClient,
    http01: &Http01Responder,
    name: &str,
) -> Result<String, String> {
    if client.kid.is_none() {
        let payload = json!({"termsOfServiceAgreed": true});
        let reply = answered(
            client,
            &client.url("newAccount"),
            Some(payload),
            "newAccount",
        )
        .await?;
        client.kid = reply.header("location").map(str::to_owned);
    }
    let identifiers = json!({"identifiers": [{"type": "dns", "value": name}]});
    let reply = answered(
        client,
        &client.url("newOrder"),
        Some(identifiers),
        "newOrder",
    )
    .await?;
    let order_url = reply.header("location").unwrap().to_owned();
    let order = reply.json();
    let authz_url = order["authorizations"][0].as_str().unwrap();
    let authz = answered(client, authz_url, None, "authorization")
        .await?
        .json();
    let challenge = challenge_of(&authz, "http-01");
    let token = challenge["token"].as_str().unwrap();
    http01.serve(token, &format!("{token}.{}", client.thumbprint()));
    answered(
        client,
        challenge["url"].as_str().unwrap(),
        Some(json!({})),
        "challenge",
    )
    .await?;
    let ready = poll_order(client, &order_url, "ready").await?;
    let key = rcgen::KeyPair::generate().unwrap();
    let finalize = Some(json!({"csr": csr(&[name], &key)}));
    match answered(
        client,
        ready["finalize"].as_str().unwrap(),
        finalize,
        "finalize",
    )
    .await
    {
        Ok(_) => {}
        // An earlier copy of this finalize was taken and its answer lost
        // (the server died before answering, and the balancer resent it):
        // the order is past `ready`, which the poll below sees.
        Err(step) if step.contains("orderNotReady") => {}
        Err(step) => return Err(step),
    }
    let valid = poll_order(client, &order_url, "valid").await?;
    let download = answered(
        client,
        valid["certificate"].as_str().unwrap(),
        None,
        "download",
    )
    .await?;
    String::from_utf8(download.body).map_err(|e| format!("download: {e}"))
}

/// POSTs `payload` (POST-as-GET when `None`) and returns a success answer;
/// a failure is `Err` naming `step`. A `badNonce` is tried once more with
/// the fresh nonce, as RFC 8555 §6.5 asks of clients: behind a balancer
/// that resends a request whose server died, the first copy may have spent
/// the nonce.
async fn answered(
    client: &RawClient,
    url: &str,
    payload: Option<Value>,
    step: &str,
) -> Result<certgate_testkit::raw_client::Reply, String> {
    let mut retried = false;
    loop {
        let reply = client
            .try_post(url, payload.clone())
            .await
            .map_err(|e| format!("{step}: {e}"))?;
        if reply.status < 300 {
            return Ok(reply);
        }
        if reply.status == 400 && reply.problem_type() == "badNonce" && !retried {
            retried = true;
            continue;
        }
        return Err(format!("{step}: {} {:?}", reply.status, reply.json()));
    }
}

/// Polls the order until it is `wanted` (10 s at most); an invalid order
/// or a lost connection ends the wait.
async fn poll_order(client: &RawClient, url: &str, wanted: &str) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let order = answered(client, url, None, "order").await?.json();
        if order["status"] == wanted {
            return Ok(order);
        }
        if order["status"] == "invalid" || tokio::time::Instant::now() > deadline {
            return Err(format!(
                "order is {} instead of {wanted}: {}",
                order["status"], order["error"]
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `PRAGMA integrity_check` of the database in `data_dir`.
pub async fn integrity_check(data_dir: &Path) -> String {
    let mut db = certgate_testkit::database::open_read_only(data_dir).await;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut db)
        .await
        .expect("running the integrity check");
    db.close().await.unwrap();
    verdict
}

/// How many rows of `table` have status `processing`.
pub async fn processing(data_dir: &Path, table: &str) -> i64 {
    let mut db = certgate_testkit::database::open_read_only(data_dir).await;
    let count = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM {table} WHERE status = 'processing'"
    ))
    .fetch_one(&mut db)
    .await
    .expect("counting processing rows");
    db.close().await.unwrap();
    count
}

/// Waits until no order and no challenge is `processing` (the background
/// work they promise has finished), 30 s at most.
pub async fn wait_until_settled(data_dir: &Path) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let orders = processing(data_dir, "orders").await;
        let challenges = processing(data_dir, "challenges").await;
        if orders == 0 && challenges == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{orders} orders and {challenges} challenges still processing after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /ready`: (status, body).
pub async fn ready(client: &RawClient, base: &str) -> (u16, String) {
    let reply = client
        .http
        .get(format!("{base}/ready"))
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

/// Polls `/ready` until its status is `status` (15 s at most: the write
/// probe's outcome is reused for a few seconds); returns the body.
pub async fn ready_becomes(client: &RawClient, base: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (now, body) = ready(client, base).await;
        if now == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/ready still {now} instead of {status}:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Forwards `client` to `upstream` both ways until either side closes or
/// `cut` turns true, then closes both: what a proxy in front of a service
/// does, and how a test makes that service unreachable at once.
pub async fn forward(mut client: TcpStream, upstream: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cut.wait_for(|cut| *cut) => {}
    }
}
