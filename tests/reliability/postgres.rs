//! certgate on PostgreSQL, as the built binary: two servers on one database
//! (no `serve.lock` with PostgreSQL) issue certificates to concurrent
//! clients and answer `503` when the database server ends their
//! connections, then heal; a nonce one replica issued is good once on the
//! other; a challenge whose replica is killed mid-validation is taken over
//! by the other within the lease; a replica cut off from the database is
//! not ready until it is back; and `certgate migrate` run by several
//! processes at once on a fresh database applies each migration once. Each
//! test creates a database of its own and drops it; without a PostgreSQL
//! server they say loudly that they did not run
//! (`certgate_testkit::postgres`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::common::{assert_unavailable, forward, fresh_client, ready, ready_becomes, try_issue};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::inventory::{leaf_serial, listed_serials_with};
use certgate_testkit::postgres::TemporaryDatabase;
use certgate_testkit::process::{certgate_command, free_port, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{challenge_of, RawClient, Reply};

/// Concurrent clients, half on each server.
const FLOWS: usize = 8;
/// Certificates each client gets, one after another.
const ISSUANCES_PER_FLOW: usize = 2;
/// `certgate migrate` processes started at once on one fresh database.
const MIGRATORS: usize = 4;
/// How many migrations migrations/postgres holds.
fn migrations() -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension() == Some("sql".as_ref()))
        .count()
}
/// `--work-lease` of the takeover test: short, so that it takes seconds.
const WORK_LEASE: Duration = Duration::from_secs(3);

/// Two replicas, A and B, of one test on a database of its own: one data
/// directory (so one embedded CA: with SQLite the second would be refused
/// by serve.lock), one DNS stub and HTTP-01 responder, a listener each.
struct Replicas {
    database: TemporaryDatabase,
    http01: Http01Responder,
    a: ServeArgs,
    b: ServeArgs,
    data_dir: tempfile::TempDir,
    _dns: DnsStub,
}

impl Replicas {
    /// `None` where no PostgreSQL server answers (`test` is noted as not
    /// run).
    async fn prepare(test: &str) -> Option<Self> {
        let database = TemporaryDatabase::create(test).await?;
        let dns = DnsStub::start().await;
        let http01 = Http01Responder::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let mut a = ServeArgs::new(data_dir.path(), dns.addr(), None);
        a.http01_port = http01.port();
        let mut b = a.clone();
        b.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Some(Self {
            database,
            http01,
            a,
            b,
            data_dir,
            _dns: dns,
        })
    }

    /// Starts A on the database at `a_url` (the test's, or a way to it)
    /// and B on the test's database, each with `flags` besides.
    async fn start(&self, a_url: &str, flags: &[&str]) -> [CertgateProcess; 2] {
        let env = [("RUST_LOG", "info")];
        let mut servers = Vec::new();
        for (args, url) in [(&self.a, a_url), (&self.b, self.database.url())] {
            let flags = [&["--database-url", url], flags].concat();
            servers.push(CertgateProcess::start_with(args, &flags, &env).await);
        }
        servers.try_into().ok().unwrap()
    }

    /// A client of A and one of B, each with a key and no account yet.
    async fn clients(&self) -> (RawClient, RawClient) {
        let on_a = RawClient::new(&self.a.directory_url(), &self.a.root_pem()).await;
        let on_b = RawClient::new(&self.b.directory_url(), &self.b.root_pem()).await;
        (on_a, on_b)
    }
}

/// Stops each server, which must exit cleanly.
async fn stop(servers: impl IntoIterator<Item = CertgateProcess>) {
    for mut server in servers {
        assert!(server.stop().await.success(), "{}", server.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_database_issue_to_concurrent_clients() {
    let test = concat!(module_path!(), "::two_servers_on_one_postgres_database");
    let Some(replicas) = Replicas::prepare(test).await else {
        return;
    };
    let (database, http01) = (&replicas.database, &replicas.http01);
    let servers = replicas.start(database.url(), &[]).await;

    let started = Instant::now();
    let flows = (0..FLOWS).map(|flow| {
        let args = if flow % 2 == 0 {
            &replicas.a
        } else {
            &replicas.b
        };
        let (directory, root) = (args.directory_url(), args.root_pem());
        async move {
            let mut client = fresh_client(&RawClient::new(&directory, &root).await);
            let mut serials = Vec::new();
            for n in 0..ISSUANCES_PER_FLOW {
                let name = format!("pg-{flow}-{n}.example.test");
                let chain = try_issue(&mut client, http01, &name)
                    .await
                    .unwrap_or_else(|step| panic!("{name}: {step}"));
                serials.push(leaf_serial(&chain));
            }
            serials
        }
    });
    let saved: BTreeSet<String> = join_all(flows).await.into_iter().flatten().collect();
    println!(
        "{} certificates from {FLOWS} clients on two servers in {:?}",
        saved.len(),
        started.elapsed()
    );
    assert_eq!(saved.len(), FLOWS * ISSUANCES_PER_FLOW);
    let flags = ["--database-url", database.url()];
    let listed = listed_serials_with(replicas.data_dir.path(), &flags).await;
    assert_eq!(listed, saved);
    let mut connection = PgConnection::connect(database.url()).await.unwrap();
    let (certificates, orders): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM certificates), (SELECT COUNT(*) FROM orders WHERE status = 'valid')",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    assert_eq!(
        (certificates, orders),
        (saved.len() as i64, saved.len() as i64)
    );

    // The database server ends every connection (a restart, a failover):
    // the next request that needs it (a nonce, which replicas keep there)
    // is told to come back, and requests succeed again without restarting
    // certgate.
    let (template, _) = replicas.clients().await;
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert!(!ended.is_empty());
    connection.close().await.unwrap();
    let lost = template.new_nonce_reply().await;
    assert_unavailable("newNonce after the connections ended", &lost);
    let (deadline, mut refused) = (Instant::now() + Duration::from_secs(10), 1);
    loop {
        let reply = template.new_nonce_reply().await;
        if reply.status == 204 {
            println!("{refused} requests answered 503 before the connections were replaced");
            break;
        }
        assert_unavailable("newNonce while connections are replaced", &reply);
        refused += 1;
        assert!(Instant::now() < deadline, "no new connection within 10 s");
    }
    fresh_client(&template).register().await;
    stop(servers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_apply_once_when_several_processes_migrate_at_once() {
    let test = concat!(module_path!(), "::migrations_apply_once");
    let Some(database) = TemporaryDatabase::create(test).await else {
        return;
    };
    let data_dir = tempfile::tempdir().unwrap();
    let dns = DnsStub::start().await;
    let args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    let url = database.url();

    // Told not to migrate, serve refuses a fresh database and says what to run.
    let refused = args
        .serve_command()
        .args(["--database-url", url, "--migrate", "false"])
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr).into_owned()
        + &String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{said}");
    assert!(said.contains("certgate migrate"), "{said}");

    let migrators = (0..MIGRATORS).map(|_| {
        certgate_command()
            .arg("migrate")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--database-url", url])
            .output()
    });
    for output in join_all(migrators).await {
        let output = output.unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut connection = PgConnection::connect(url).await.unwrap();
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut connection)
            .await
            .unwrap();
    connection.close().await.unwrap();
    assert_eq!(applied.len(), migrations(), "{applied:?}");
    assert!(applied.iter().all(|(_, success)| *success), "{applied:?}");

    let mut server = CertgateProcess::start_with(
        &args,
        &["--database-url", url, "--migrate", "false"],
        &[("RUST_LOG", "info")],
    )
    .await;
    assert!(server.stop().await.success(), "{}", server.log());
}

/// A newAccount for `client`'s key, sent with `nonce` (whichever replica
/// it came from).
async fn new_account_with(client: &RawClient, nonce: &str) -> Reply {
    let url = client.url("newAccount");
    let header = client.header_with_nonce(&url, nonce);
    let jws = client.jws(&header, br#"{"termsOfServiceAgreed": true}"#);
    client.send_jws(&url, &jws).await
}

fn assert_bad_nonce(what: &str, reply: &Reply) {
    assert_eq!(reply.status, 400, "{what}: {:?}", reply.json());
    assert_eq!(
        reply.problem_type(),
        "badNonce",
        "{what}: {:?}",
        reply.json()
    );
    assert!(reply.header("replay-nonce").is_some(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_nonce_from_one_replica_is_good_once_on_another() {
    let test = concat!(module_path!(), "::a_nonce_from_one_replica");
    let Some(replicas) = Replicas::prepare(test).await else {
        return;
    };
    let servers = replicas.start(replicas.database.url(), &[]).await;
    let (on_a, on_b) = replicas.clients().await;

    let nonce = on_a.nonce().await;
    let created = new_account_with(&on_b, &nonce).await;
    assert_eq!(created.status, 201, "{:?}", created.json());
    let again = new_account_with(&fresh_client(&on_b), &nonce).await;
    assert_bad_nonce("the same nonce again on B", &again);
    let back_on_a = new_account_with(&fresh_client(&on_a), &nonce).await;
    assert_bad_nonce("the nonce B took, back on A", &back_on_a);
    // The nonce that came with A's badNonce serves on B in turn.
    let next = back_on_a.header("replay-nonce").unwrap();
    let created = new_account_with(&fresh_client(&on_b), next).await;
    assert_eq!(created.status, 201, "{:?}", created.json());
    stop(servers).await;
}

/// `(status, lease_owner)` of challenge `id`.
async fn challenge_row(database: &mut PgConnection, id: &str) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, lease_owner FROM challenges WHERE id = $1")
        .bind(id)
        .fetch_one(database)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_challenge_whose_replica_is_killed_mid_validation_is_taken_over_within_the_lease() {
    let test = concat!(module_path!(), "::a_challenge_whose_replica_is_killed");
    let Some(replicas) = Replicas::prepare(test).await else {
        return;
    };
    let (database, http01) = (&replicas.database, &replicas.http01);
    let lease = format!("{}s", WORK_LEASE.as_secs());
    let [mut first, second] = replicas
        .start(database.url(), &["--work-lease", &lease])
        .await;

    // A client's challenge goes `processing` on A, whose validator then
    // waits on a responder that holds its answer.
    let (mut client, _) = replicas.clients().await;
    client.register().await;
    let (_, order) = client.new_order(&["takeover.example.test"]).await;
    let authz_url = order["authorizations"][0].as_str().unwrap();
    let authz = client.post(authz_url, None).await.json();
    let challenge: &Value = challenge_of(&authz, "http-01");
    let token = challenge["token"].as_str().unwrap();
    let challenge_id = challenge["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    http01.serve(token, &format!("{token}.{}", client.thumbprint()));
    http01.hold();
    let posted = Instant::now();
    let reply = client
        .post(challenge["url"].as_str().unwrap(), Some(json!({})))
        .await;
    assert_eq!(reply.json()["status"], "processing", "{:?}", reply.json());
    assert_eq!(
        http01.requests(),
        1,
        "A's validator is waiting for its answer"
    );

    // For two leases A renews its lease while it waits: B, sweeping all
    // along, neither claims the challenge nor asks the responder.
    let mut database_connection = PgConnection::connect(database.url()).await.unwrap();
    let (status, holder) = challenge_row(&mut database_connection, challenge_id).await;
    assert_eq!(status, "processing");
    assert!(holder.is_some());
    while posted.elapsed() < 2 * WORK_LEASE {
        let now = challenge_row(&mut database_connection, challenge_id).await;
        assert_eq!(
            now,
            (status.clone(), holder.clone()),
            "claimed from a live replica"
        );
        assert_eq!(http01.requests(), 1, "validated by two replicas at once");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A dies; the responder answers from now on.
    first.kill().await;
    let killed = Instant::now();
    http01.release();
    let deadline = killed + 4 * WORK_LEASE;
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM authorizations WHERE id = $1")
            .bind(authz_url.rsplit('/').next().unwrap())
            .fetch_one(&mut database_connection)
            .await
            .unwrap();
        if status == "valid" {
            break;
        }
        assert_eq!(status, "pending");
        assert!(
            Instant::now() < deadline,
            "not taken over: {}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = killed.elapsed();
    println!("valid {took:?} after A was killed, with a lease of {WORK_LEASE:?}");
    // A renewed its lease at most a third of a lease before it died, so the
    // lease ran out at the earliest a second after the kill (lease times
    // are whole seconds); B sweeps every quarter lease or so, and a
    // responder that answers takes milliseconds.
    assert!(
        took > Duration::from_secs(1),
        "taken before A's lease ran out"
    );
    assert!(
        took < WORK_LEASE + Duration::from_secs(3),
        "taken over only after {took:?}"
    );
    assert_eq!(http01.requests(), 2, "B validated once");
    assert!(
        second.log().contains("resuming validation"),
        "{}",
        second.log()
    );
    let (status, holder) = challenge_row(&mut database_connection, challenge_id).await;
    assert_eq!((status.as_str(), holder), ("valid", None));
    database_connection.close().await.unwrap();
    stop([second]).await;
}

/// A TCP proxy a test can cut: while cut, it closes the connections it
/// forwarded and every new one at once, as a network that lost its route
/// to the server would, until it is mended.
struct CuttableProxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CuttableProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let task = tokio::spawn({
            let cut = cut.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let state = cut.subscribe();
                    if !*state.borrow() {
                        tokio::spawn(forward(stream, upstream, state));
                    }
                }
            }
        });
        Self { addr, cut, task }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_cut_off_from_the_database_is_not_ready_until_it_is_back() {
    let test = concat!(module_path!(), "::a_replica_cut_off_from_the_database");
    let Some(replicas) = Replicas::prepare(test).await else {
        return;
    };
    let direct = url::Url::parse(replicas.database.url()).unwrap();
    let server: SocketAddr = format!(
        "{}:{}",
        direct.host_str().unwrap(),
        direct.port().unwrap_or(5432)
    )
    .parse()
    .unwrap();
    let proxy = CuttableProxy::start(server).await;
    let mut through_proxy = direct.clone();
    through_proxy.set_port(Some(proxy.addr.port())).unwrap();

    let servers = replicas.start(through_proxy.as_str(), &[]).await;
    let (on_a, on_b) = replicas.clients().await;
    let (base_a, base_b) = (
        format!("https://{}", replicas.a.listen),
        format!("https://{}", replicas.b.listen),
    );
    assert_eq!(ready(&on_a, &base_a).await.0, 200);

    proxy.set_cut(true);
    let why = ready_becomes(&on_a, &base_a, 503).await;
    assert!(why.contains("database"), "{why}");
    // Only the replica that lost the database leaves the load balancer;
    // it is still alive, so nobody restarts it.
    assert_eq!(ready(&on_b, &base_b).await.0, 200);
    let health = on_a
        .http
        .get(format!("{base_a}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    proxy.set_cut(false);
    ready_becomes(&on_a, &base_a, 200).await;
    fresh_client(&on_a).register().await;
    stop(servers).await;
}
