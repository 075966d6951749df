//! A Vault outage under load: sealed for 20 s, or behind a proxy that
//! accepts connections and closes them. Orders finalized meanwhile wait
//! without sending Vault a request per order, every one is signed exactly
//! once within seconds of Vault coming back, and an answer that was lost
//! is recorded where an operator finds it (audit log and metrics).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use certgate::protocol::status::OrderStatus;
use serde_json::{json, Value};
use sha2::Digest;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::common::forward;
use certgate_testkit::instance::Instance;
use certgate_testkit::openmetrics;
use certgate_testkit::raw_client::{csr, RawClient};
use certgate_testkit::vault::{StandinConfig, VaultStandin, SECRET_ID};

/// The promise of the issue: waiting orders are valid this soon after
/// Vault answers again.
const RECOVERY_BOUND: Duration = Duration::from_secs(3);
/// What the Vault client lets out at once (`certgate::vault::SIGNS_IN_FLIGHT`).
const IN_FLIGHT_BOUND: usize = certgate::vault::SIGNS_IN_FLIGHT;

/// certgate with the Vault profile `lab` (`pki_int/lab-internal`, AppRole),
/// reaching the stand-in at `vault_address` (a proxy) or directly.
struct Lab {
    standin: VaultStandin,
    instance: Instance,
    _secrets: tempfile::TempDir,
}

impl Lab {
    async fn start(standin: VaultStandin, vault_address: Option<String>) -> Self {
        let secrets = tempfile::tempdir().unwrap();
        let mut vault = standin.approle_config(secrets.path(), SECRET_ID);
        if let Some(address) = vault_address {
            vault = vault.replace(&standin.addr(), &address);
        }
        let config = format!(
            "default_profile = \"lab\"\n{vault}\
             [profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n"
        );
        let instance = Instance::start_with_config(Some(config)).await;
        Self {
            standin,
            instance,
            _secrets: secrets,
        }
    }

    /// Orders for `count` distinct names, made ready by `clients` accounts
    /// in turn: (client index, order URL, order, name).
    async fn ready_orders(
        &self,
        clients: &[Arc<RawClient>],
        count: usize,
        prefix: &str,
    ) -> Vec<PendingOrder> {
        let mut orders = Vec::new();
        for index in 0..count {
            let client = clients[index % clients.len()].clone();
            let name = format!("{prefix}-{index}.lab.example");
            let (url, order) = client.ready_order(&self.instance.http01, &[&name]).await;
            orders.push(PendingOrder {
                client,
                url,
                order,
                name,
            });
        }
        orders
    }

    async fn clients(&self, count: usize) -> Vec<Arc<RawClient>> {
        let mut clients = Vec::new();
        for _ in 0..count {
            clients.push(Arc::new(self.instance.registered_client("lab").await));
        }
        clients
    }

    async fn status(&self, order: &PendingOrder) -> OrderStatus {
        self.instance
            .store()
            .order(order.id())
            .await
            .unwrap()
            .expect("the order exists")
            .status
    }

    /// Polls the store until every order is valid; panics naming the ones
    /// that are not after `limit`. Returns when the last one was seen valid.
    async fn all_valid_within(&self, orders: &[PendingOrder], limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            let mut statuses = Vec::new();
            for order in orders {
                statuses.push(self.status(order).await);
            }
            if statuses.iter().all(|s| *s == OrderStatus::Valid) {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "not all valid after {limit:?}: {statuses:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Requests the stand-in answered at `path` (a substring) with `status`.
    fn answered(&self, path: &str, status: u16) -> usize {
        self.standin
            .requests()
            .iter()
            .filter(|r| r.path.contains(path) && r.status == status)
            .count()
    }

    /// The audit lines of `event`, parsed.
    fn audit_events(&self, event: &str) -> Vec<Value> {
        let path = self.instance.data_dir.path().join("audit.log");
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .filter(|line| line["event"] == event)
            .collect()
    }

    async fn scrape(&self) -> openmetrics::Exposition {
        let https = certgate_testkit::raw_client::https_trusting(&self.instance.root_pem_path());
        let text = https
            .get(format!("{}/metrics", self.instance.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        openmetrics::parse(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    }
}

/// A ready order and the account that made it.
struct PendingOrder {
    client: Arc<RawClient>,
    url: String,
    order: Value,
    name: String,
}

impl PendingOrder {
    fn id(&self) -> &str {
        self.url.rsplit('/').next().unwrap()
    }

    /// Finalizes with a fresh P-256 key; returns the key's SubjectPublicKeyInfo.
    async fn finalize(&self) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let reply = self
            .client
            .post(
                self.order["finalize"].as_str().unwrap(),
                Some(json!({"csr": csr(&[&self.name], &key)})),
            )
            .await;
        assert_eq!(reply.status, 200, "finalize: {:?}", reply.json());
        rcgen::PublicKeyData::subject_public_key_info(&key)
    }
}

/// Finalizes every order at the same time.
async fn finalize_all(orders: &[PendingOrder]) {
    let mut finalizing = tokio::task::JoinSet::new();
    for order in orders {
        let (client, finalize, name) = (
            order.client.clone(),
            order.order["finalize"].as_str().unwrap().to_owned(),
            order.name.clone(),
        );
        finalizing.spawn(async move {
            let key = rcgen::KeyPair::generate().unwrap();
            let reply = client
                .post(&finalize, Some(json!({"csr": csr(&[&name], &key)})))
                .await;
            assert_eq!(reply.status, 200, "finalize: {:?}", reply.json());
        });
    }
    while let Some(done) = finalizing.join_next().await {
        done.unwrap();
    }
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `limit`.
async fn until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_waiting_on_a_sealed_vault_are_all_valid_within_3_s_of_unseal() {
    const ORDERS: usize = 8;
    const SEALED_FOR: Duration = Duration::from_secs(20);
    let lab = Lab::start(VaultStandin::start(StandinConfig::lab()).await, None).await;
    let clients = lab.clients(4).await;
    let orders = lab.ready_orders(&clients, ORDERS, "sealed").await;

    lab.standin.seal();
    let sealed_at = Instant::now();
    // One order finds Vault sealed; the others are finalized once certgate
    // knows, and must not be sent to Vault while it stays sealed.
    orders[0].finalize().await;
    until(
        Duration::from_secs(10),
        "a sign request answered 503",
        || lab.answered("/sign/", 503) == 1,
    )
    .await;
    finalize_all(&orders[1..]).await;
    let probes_before = lab.answered("auth/token/lookup-self", 503);
    while sealed_at.elapsed() < SEALED_FOR {
        for order in &orders {
            assert_eq!(lab.status(order).await, OrderStatus::Processing);
        }
        assert_eq!(
            lab.answered("/sign/", 503),
            1,
            "no sign request goes out while Vault is known to be sealed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let probes = lab.answered("auth/token/lookup-self", 503) - probes_before;
    let window = sealed_at.elapsed().as_secs_f64();
    lab.standin.unseal();
    let unsealed_at = Instant::now();

    let last_valid = lab.all_valid_within(&orders, Duration::from_secs(20)).await;
    let recovery = last_valid - unsealed_at;
    println!(
        "sealed {window:.1} s, {ORDERS} orders waiting, {probes} health probes while sealed, \
         all valid {:.2} s after unseal",
        recovery.as_secs_f64()
    );
    assert!(
        recovery <= RECOVERY_BOUND,
        "the last order was valid {recovery:?} after unseal"
    );
    // About one probe a second, one at a time.
    assert!(
        probes >= 5 && probes as f64 <= window + 1.0,
        "{probes} probes in {window:.1} s"
    );

    // Each order signed exactly once.
    let issued: Vec<Vec<String>> = lab
        .standin
        .sign_calls()
        .into_iter()
        .filter(|c| c.serial.is_some())
        .map(|c| c.csr_dns_names)
        .collect();
    assert_eq!(issued.len(), ORDERS, "{issued:?}");
    let names: BTreeSet<&str> = issued.iter().flatten().map(String::as_str).collect();
    let expected: BTreeSet<&str> = orders.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, expected);
    // The sealed refusal is not a sign call (Vault refuses it before the
    // handler); each order reached the handler once.
    assert_eq!(lab.standin.sign_count(), ORDERS);
}

/// A TCP proxy in front of the stand-in that can turn into one that
/// accepts connections, reads the request and closes without an answer,
/// as a load balancer with no healthy backend may. It counts the requests
/// it closed on, by kind.
struct ClosingProxy {
    addr: SocketAddr,
    closing: watch::Sender<bool>,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Counts {
    /// Sign requests closed on.
    signs: AtomicUsize,
    /// `lookup-self` requests closed on: certgate's health probes.
    probes: AtomicUsize,
    other: AtomicUsize,
    /// Set if a request arrived whose head could not be read.
    unreadable: AtomicBool,
}

impl Drop for ClosingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClosingProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (closing, _) = watch::channel(false);
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn({
            let (closing, counts) = (closing.clone(), counts.clone());
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let mode = closing.subscribe();
                    let counts = counts.clone();
                    tokio::spawn(async move {
                        if *mode.borrow() {
                            close_after_the_head(stream, &counts).await;
                        } else {
                            forward(stream, upstream, mode).await;
                        }
                    });
                }
            }
        });
        Self {
            addr,
            closing,
            counts,
            task,
        }
    }

    fn address(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Switches modes; forwarded connections end when closing starts, so
    /// no pooled connection gets through.
    fn set_closing(&self, closing: bool) {
        self.closing.send_replace(closing);
    }

    fn signs(&self) -> usize {
        self.counts.signs.load(Ordering::SeqCst)
    }

    fn probes(&self) -> usize {
        self.counts.probes.load(Ordering::SeqCst)
    }
}

async fn close_after_the_head(mut stream: TcpStream, counts: &Counts) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buffer[..n]),
            }
        }
        true
    })
    .await;
    if read != Ok(true) {
        counts.unreadable.store(true, Ordering::SeqCst);
        return;
    }
    let request_line = String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let counter = if request_line.contains("/sign/") {
        &counts.signs
    } else if request_line.contains("/auth/token/lookup-self") {
        &counts.probes
    } else {
        &counts.other
    };
    counter.fetch_add(1, Ordering::SeqCst);
    // Dropping the stream closes it without a byte of answer.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_closes_connections_costs_one_lost_answer_not_every_order() {
    const BURST: usize = 12;
    let standin = VaultStandin::start(StandinConfig::lab()).await;
    let proxy = ClosingProxy::start(standin.socket_addr()).await;
    let lab = Lab::start(standin, Some(proxy.address())).await;
    let clients = lab.clients(3).await;
    let first = lab.ready_orders(&clients[..1], 1, "first").await;
    let burst = lab.ready_orders(&clients, BURST, "burst").await;

    // Vault "goes away": the proxy still accepts, but answers nothing.
    proxy.set_closing(true);
    // The first request into the outage is lost: never asked again, the
    // order fails, and certgate now knows Vault is down.
    first[0].finalize().await;
    let failed = first[0]
        .client
        .wait_for_order(&first[0].url, &["valid", "invalid"])
        .await;
    assert_eq!(failed["status"], "invalid", "{failed}");
    assert_eq!(proxy.signs(), 1);

    // A burst of finalizes during the outage: none is sent to Vault until a
    // health probe passes, and none passes while the proxy closes.
    finalize_all(&burst).await;
    let burst_at = Instant::now();
    let probes_at_burst = proxy.probes();
    until(Duration::from_secs(15), "three health probes", || {
        proxy.probes() >= probes_at_burst + 3
    })
    .await;
    let window = burst_at.elapsed().as_secs_f64();
    let probes = proxy.probes() - probes_at_burst;
    let signs_in_burst = proxy.signs() - 1;
    println!(
        "{BURST} orders finalized into the outage: {signs_in_burst} sign requests, \
         {probes} health probes in {window:.1} s"
    );
    // No probe passed, so the bound "one sign attempt per passing probe
    // plus those already in flight" is zero here.
    assert_eq!(signs_in_burst, 0, "sign requests sent into a known outage");
    assert!(signs_in_burst <= IN_FLIGHT_BOUND);
    assert!(
        probes as f64 <= window + 1.0,
        "{probes} probes in {window:.1} s: more than one a second"
    );
    for order in &burst {
        assert_eq!(lab.status(order).await, OrderStatus::Processing);
    }
    assert!(!proxy.counts.unreadable.load(Ordering::SeqCst));

    // Vault is reachable again: the next probe passes and every order is
    // signed, once.
    proxy.set_closing(false);
    let back_at = Instant::now();
    let last_valid = lab.all_valid_within(&burst, Duration::from_secs(20)).await;
    println!(
        "all {BURST} valid {:.2} s after Vault was reachable again",
        (last_valid - back_at).as_secs_f64()
    );
    assert!(last_valid - back_at <= RECOVERY_BOUND);
    assert_eq!(lab.standin.issued_count(), BURST);
    assert_eq!(
        lab.standin.sign_count(),
        BURST,
        "the lost request never reached Vault; each burst order was signed once"
    );
    assert_eq!(lab.audit_events("issuance_answer_lost").len(), 1);
}

#[tokio::test]
async fn a_lost_answer_is_one_audit_event_and_one_count() {
    let lab = Lab::start(VaultStandin::start(StandinConfig::lab()).await, None).await;
    let clients = lab.clients(1).await;
    let orders = lab.ready_orders(&clients, 1, "lost").await;
    let order = &orders[0];
    let before = lab.scrape().await;
    assert_eq!(
        before.value(
            "certgate_issuance_answers_lost_total",
            &[("profile", "lab")]
        ),
        0.0,
        "a Vault profile's series is there at zero"
    );

    lab.standin.drop_next_responses(1);
    let spki = order.finalize().await;
    let failed = order
        .client
        .wait_for_order(&order.url, &["valid", "invalid"])
        .await;
    assert_eq!(failed["status"], "invalid", "{failed}");
    assert!(failed["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("new order"));
    assert_eq!(lab.standin.issued_count(), 1, "Vault did sign, once");

    let lost = lab.audit_events("issuance_answer_lost");
    assert_eq!(lost.len(), 1, "{lost:?}");
    let line = &lost[0];
    let expected_sha256: String = sha2::Sha256::digest(&spki)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(line["order"], order.id());
    assert_eq!(line["profile"], "lab");
    assert_eq!(line["ca"], "vault");
    assert_eq!(line["vault_mount"], "pki_int");
    assert_eq!(line["vault_role"], "lab-internal");
    assert_eq!(line["names"], json!([order.name]));
    assert_eq!(line["csr_public_key_sha256"], expected_sha256.as_str());
    assert!(line["attempted_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(lab.audit_events("issuance_failed").len(), 1);

    let after = lab.scrape().await;
    assert_eq!(
        after.value(
            "certgate_issuance_answers_lost_total",
            &[("profile", "lab")]
        ),
        1.0
    );
}
