//! One account floods challenges at a responder that accepts connections
//! and never answers, with certgate under a 256 open-file limit: the
//! validations queue behind the account's own turns instead of each opening
//! a socket, nothing runs out of files, another account's HTTP-01
//! validation completes meanwhile, and the queued ones resume after a
//! restart.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::common::fresh_client;
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{challenge_of, RawClient};

/// Challenges the flood posts: the default pending-authorization cap and
/// the default burst of new orders per account, and more than the open-file
/// limit, so that one socket each would exhaust it.
const FLOOD: usize = 300;
const OPEN_FILES: &str = "256";
/// Requests of the flood in flight at once.
const CLIENTS: usize = 75;
/// The default `validation-concurrency-per-account`.
const PER_ACCOUNT: usize = 4;

/// Accepts every connection and never writes a byte; counts connections
/// accepted and the most open at once.
#[derive(Default)]
struct Tarpit {
    accepted: AtomicUsize,
    most_open: AtomicUsize,
}

impl Tarpit {
    async fn start(addr: SocketAddr) -> Arc<Self> {
        let listener = TcpListener::bind(addr).await.expect("binding the tarpit");
        let tarpit = Arc::new(Self::default());
        let counts = tarpit.clone();
        tokio::spawn(async move {
            let mut held: Vec<TcpStream> = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                // Which of the held connections certgate has closed is
                // read here, as each new one arrives: on loopback the
                // close is queued before the next connection can be
                // accepted, while a reader task per socket could see it
                // only later and count a closed connection as open.
                held.retain(still_open);
                held.push(socket);
                counts.accepted.fetch_add(1, Ordering::SeqCst);
                counts.most_open.fetch_max(held.len(), Ordering::SeqCst);
            }
        });
        tarpit
    }
}

/// Reads whatever `socket` has waiting without blocking: false once the
/// peer has closed it.
fn still_open(socket: &TcpStream) -> bool {
    let mut sink = [0u8; 1024];
    loop {
        match socket.try_read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// Lowers the running process's open-file limit, as a service manager's
/// `LimitNOFILE` would.
async fn limit_open_files(certgate: &CertgateProcess) {
    let status = tokio::process::Command::new("prlimit")
        .args(["--pid", &certgate.pid().to_string()])
        .arg(format!("--nofile={OPEN_FILES}:{OPEN_FILES}"))
        .status()
        .await
        .expect("running prlimit");
    assert!(status.success(), "prlimit: {status}");
}

/// Orders the IP address 127.0.0.2 and asks for its http-01 validation;
/// returns the challenge as the POST answered it.
async fn post_tarpit_challenge(client: &RawClient) -> serde_json::Value {
    let (_, order) = client.new_order(&["127.0.0.2"]).await;
    let authz = client
        .post(order["authorizations"][0].as_str().unwrap(), None)
        .await
        .json();
    let url = challenge_of(&authz, "http-01")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = client.post(&url, Some(json!({}))).await;
    assert_eq!(reply.status, 200, "challenge POST: {:?}", reply.json());
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_challenge_flood_at_a_tarpit_queues_and_others_still_validate() {
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    // The honest responder on 127.0.0.1, the tarpit on 127.0.0.2, one port.
    let http01 = Http01Responder::start().await;
    let tarpit = Tarpit::start(SocketAddr::from(([127, 0, 0, 2], http01.port()))).await;
    let mut args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    args.http01_port = http01.port();
    let mut certgate = CertgateProcess::start(&args).await;
    limit_open_files(&certgate).await;
    let directory = format!("https://{}/acme/directory", args.listen);
    let root_pem = data_dir.path().join("ca/root.pem");

    let mut flooder = RawClient::new(&directory, &root_pem).await;
    flooder.register().await;
    let flooder = Arc::new(flooder);
    // Each POST waits up to 3 s for its validation before it answers
    // `processing`, so the flood is sent by many clients at once.
    let started = Instant::now();
    let posts: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let flooder = flooder.clone();
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for _ in (worker..FLOOD).step_by(CLIENTS) {
                    answers.push(post_tarpit_challenge(&flooder).await);
                }
                answers
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for post in posts {
        statuses.extend(post.await.unwrap().into_iter().map(|c| c["status"].clone()));
    }
    let flood_time = started.elapsed();
    // Every POST was answered at once: its validation runs or waits.
    assert_eq!(statuses.len(), FLOOD);
    assert!(statuses.iter().all(|s| s == "processing"), "{statuses:?}");

    // Another account validates and gets a certificate meanwhile; the
    // challenge POST answers `valid` within the 3 s it waits.
    let mut honest = fresh_client(&flooder);
    honest.register().await;
    let started = Instant::now();
    let (order_url, _) = honest.ready_order(&http01, &["honest.lab.example"]).await;
    let honest_validation = started.elapsed();
    eprintln!(
        "{FLOOD} challenges posted in {flood_time:?}; honest validation took {honest_validation:?}; \
         tarpit: {} accepted, at most {} open at once",
        tarpit.accepted.load(Ordering::SeqCst),
        tarpit.most_open.load(Ordering::SeqCst)
    );
    assert!(
        honest_validation < Duration::from_secs(3),
        "honest validation took {honest_validation:?}"
    );
    assert!(!order_url.is_empty());

    // The flood held at most the account's turns at the tarpit.
    let most_open = tarpit.most_open.load(Ordering::SeqCst);
    assert!(
        (1..=PER_ACCOUNT).contains(&most_open),
        "{most_open} connections open at once"
    );
    let log = certgate.log();
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("os error 24"), "{log}");

    // The queued validations are `processing` in the store: a restart
    // resumes them, again a few at a time.
    certgate.stop().await;
    let before_restart = tarpit.accepted.load(Ordering::SeqCst);
    assert!(
        before_restart < FLOOD,
        "{before_restart} validations done already"
    );
    let certgate = CertgateProcess::start(&args).await;
    limit_open_files(&certgate).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while tarpit.accepted.load(Ordering::SeqCst) == before_restart {
        assert!(Instant::now() < deadline, "no queued validation resumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(certgate.log().contains("resuming validation"));
    assert!(tarpit.most_open.load(Ordering::SeqCst) <= PER_ACCOUNT);
}
