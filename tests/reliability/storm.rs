//! Clients that hang up at random points of their requests: what certgate
//! answered must be what it stored, and no connection may be left inside a
//! transaction.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use serde_json::json;

use crate::common::{fresh_client, try_issue, wait_until_settled};
use certgate_testkit::clients::{require_tool, run_client};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{challenge_of, AccountKey, RawClient};

const FLOWS: usize = 32;
const ROUNDS: usize = 3;
const ROUND_LENGTH: Duration = Duration::from_secs(3);
/// The storm goes on past its rounds until this many accounts and orders
/// were answered as created, so that a machine slowed down by other work
/// still tests something; it fails only if that takes longer than
/// `STORM_DEADLINE`.
const ENOUGH_ACCOUNTS: usize = 10;
const ENOUGH_ORDERS: usize = 10;
const STORM_DEADLINE: Duration = Duration::from_secs(120);
/// Client-side timeouts: half are drawn below the first bound, cutting
/// requests off at any point of their way; half up to the second, so that
/// flows get far enough to create, validate and finalize even on a busy
/// machine.
const SHORT_PATIENCE_MS: u64 = 30;
const LONG_PATIENCE_MS: u64 = 2_000;

/// What the clients were told was created.
#[derive(Default)]
struct Answered {
    /// Each account as its client knows it: key, and URL as kid.
    accounts: Vec<RawClient>,
    /// (account, order URL)
    orders: Vec<(usize, String)>,
}

/// One impatient client: registers, orders, answers challenges and
/// finalizes, each request with a random timeout, until the round ends.
async fn impatient_flow(
    template: Arc<RawClient>,
    http01: Arc<Http01Responder>,
    answered: Arc<Mutex<Answered>>,
    until: tokio::time::Instant,
) {
    let mut client = fresh_client(&template);
    let patience = || {
        let mut rng = rand::thread_rng();
        let bound = if rng.gen_bool(0.5) {
            SHORT_PATIENCE_MS
        } else {
            LONG_PATIENCE_MS
        };
        Duration::from_millis(rng.gen_range(0..=bound))
    };
    let mut account_index = None;
    while tokio::time::Instant::now() < until {
        let Some(index) = account_index else {
            let url = client.url("newAccount");
            let request = client.try_post(&url, Some(json!({"termsOfServiceAgreed": true})));
            // A timed-out newAccount is retried with the same key, as a
            // client does: the account may or may not exist by now.
            if let Ok(Ok(reply)) = tokio::time::timeout(patience(), request).await {
                if reply.status == 201 || reply.status == 200 {
                    client.kid = reply.header("location").map(str::to_owned);
                    let mut answered = answered.lock().unwrap();
                    answered.accounts.push(RawClient {
                        http: client.http.clone(),
                        directory: client.directory.clone(),
                        key: AccountKey {
                            pkcs8_der: client.key.pkcs8_der.clone(),
                            jwk: client.key.jwk.clone(),
                        },
                        kid: client.kid.clone(),
                    });
                    account_index = Some(answered.accounts.len() - 1);
                }
            }
            continue;
        };
        // Each order under a registered domain of its own, so the storm
        // stays clear of the per-domain rate limit.
        let name = format!("www.storm{}.test", rand::thread_rng().gen::<u32>());
        let url = client.url("newOrder");
        let request = client.try_post(
            &url,
            Some(json!({"identifiers": [{"type": "dns", "value": name}]})),
        );
        let Ok(Ok(reply)) = tokio::time::timeout(patience(), request).await else {
            continue;
        };
        if reply.status != 201 {
            continue;
        }
        let order_url = reply.header("location").unwrap().to_owned();
        answered.lock().unwrap().orders.push((index, order_url));
        let order = reply.json();
        let authz_url = order["authorizations"][0].as_str().unwrap().to_owned();
        let Ok(Ok(authz)) =
            tokio::time::timeout(patience(), client.try_post(&authz_url, None)).await
        else {
            continue;
        };
        let authz = authz.json();
        let challenge = challenge_of(&authz, "http-01");
        let token = challenge["token"].as_str().unwrap();
        http01.serve(token, &format!("{token}.{}", client.thumbprint()));
        let _ = tokio::time::timeout(
            patience(),
            client.try_post(challenge["url"].as_str().unwrap(), Some(json!({}))),
        )
        .await;
        let key = rcgen::KeyPair::generate().unwrap();
        let finalize = order["finalize"].as_str().unwrap();
        let csr = certgate_testkit::raw_client::csr(&[&name], &key);
        let _ = tokio::time::timeout(
            patience(),
            client.try_post(finalize, Some(json!({"csr": csr}))),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_that_hang_up_mid_request_lose_nothing_they_were_told_was_stored() {
    require_tool("lego", "lego");
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let http01 = Arc::new(Http01Responder::start().await);
    let mut args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    args.http01_port = http01.port();
    // Every flow registers a new account from 127.0.0.1, well past the
    // default limit of new accounts per address: not what is tested here.
    let mut certgate = CertgateProcess::start_with(
        &args,
        &["--rate-limit-new-accounts-per-ip", "off"],
        &[("RUST_LOG", "info")],
    )
    .await;
    let directory = format!("https://{}/acme/directory", args.listen);
    let root_pem = data_dir.path().join("ca/root.pem");
    let template = Arc::new(RawClient::new(&directory, &root_pem).await);

    let answered = Arc::new(Mutex::new(Answered::default()));
    let storm_began = tokio::time::Instant::now();
    let enough = |answered: &Mutex<Answered>| {
        let answered = answered.lock().unwrap();
        answered.accounts.len() >= ENOUGH_ACCOUNTS && answered.orders.len() >= ENOUGH_ORDERS
    };
    let mut round = 0;
    while round < ROUNDS || !enough(&answered) {
        assert!(
            storm_began.elapsed() < STORM_DEADLINE,
            "after {STORM_DEADLINE:?} of storm, too little was answered: the timeouts cut off everything"
        );
        round += 1;
        let until = tokio::time::Instant::now() + ROUND_LENGTH;
        let flows: Vec<_> = (0..FLOWS)
            .map(|_| {
                tokio::spawn(impatient_flow(
                    template.clone(),
                    http01.clone(),
                    answered.clone(),
                    until,
                ))
            })
            .collect();
        for flow in flows {
            flow.await.expect("a flow panicked");
        }
    }
    let answered = Arc::into_inner(answered).unwrap().into_inner().unwrap();

    // Everything answered as created exists, as its owner sees it.
    for account in &answered.accounts {
        let reply = account.post(account.kid.as_deref().unwrap(), None).await;
        assert_eq!(
            reply.status,
            200,
            "an account answered 201 is gone: {:?}",
            reply.json()
        );
    }
    for (owner, order_url) in &answered.orders {
        let reply = answered.accounts[*owner].post(order_url, None).await;
        assert_eq!(
            reply.status,
            200,
            "an order answered 201 is gone: {:?}",
            reply.json()
        );
    }
    // Every challenge and finalize that was accepted, even by a client
    // that hung up, ran to its end.
    wait_until_settled(data_dir.path()).await;

    // A new client is served at once, and a real one gets a certificate.
    let mut client = fresh_client(&template);
    try_issue(&mut client, &http01, "www.after-the-storm.test")
        .await
        .expect("an issuance right after the storm");
    // lego answers http-01 itself, on the port the responder held.
    drop(http01);
    wait_until_free(args.http01_port).await;
    let lego_dir = tempfile::tempdir().unwrap();
    let mut lego = tokio::process::Command::new("lego");
    lego.env("LEGO_CA_CERTIFICATES", &root_pem)
        .arg("--server")
        .arg(&directory)
        .arg("--path")
        .arg(lego_dir.path())
        .args([
            "--email",
            "storm@example.test",
            "--accept-tos",
            "--key-type",
            "ec256",
            "--http",
            "--http.port",
        ])
        .arg(format!("127.0.0.1:{}", args.http01_port))
        .args(["-d", "www.lego-after-the-storm.test", "run"]);
    run_client("lego run", lego, &|| certgate.log()).await;

    let log = certgate.log();
    for sign_of_a_stuck_connection in ["transaction depth", "database is locked", "vanished"] {
        assert!(
            !log.contains(sign_of_a_stuck_connection),
            "the log says {sign_of_a_stuck_connection:?}:\n{log}"
        );
    }
    assert!(certgate.stop().await.success());
    println!(
        "storm: {round} rounds, {} accounts and {} orders answered as created, all found",
        answered.accounts.len(),
        answered.orders.len()
    );
}

/// Polls until `port` on loopback can be bound again (10 s at most).
async fn wait_until_free(port: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "port {port} still taken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
