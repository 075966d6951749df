//! One `certgate serve` per data dir. A second server on the same SQLite
//! data dir used to resume the first one's in-flight Vault signings and fail
//! them, so certificates Vault had signed were never recorded; and a start
//! that failed on a taken port had already touched the orders a previous run
//! left `processing`. These tests pin down the lock on `<data-dir>/serve.lock`
//! and that nothing is resumed before every listener is bound.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;

use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::inventory::{leaf_serial, serials};
use certgate_testkit::process::{certgate_command, free_port, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{csr, RawClient};
use certgate_testkit::vault::{StandinConfig, VaultStandin, SECRET_ID};

/// How long the stand-in holds every request while a test needs signings
/// in flight: long enough that a second process is refused (a start that
/// stops at the lock takes well under a second) before Vault answers.
const SIGNING_DELAY: Duration = Duration::from_secs(6);
/// How long a condition polled for may take on a busy machine.
const DEADLINE: Duration = Duration::from_secs(30);

/// certgate whose default profile signs through the Vault stand-in
/// (`pki_int/lab-internal`, AppRole), with its own data dir, DNS stub and
/// HTTP-01 responder.
struct Lab {
    standin: VaultStandin,
    _dns: DnsStub,
    http01: Http01Responder,
    data_dir: tempfile::TempDir,
    config: PathBuf,
    args: ServeArgs,
}

impl Lab {
    async fn start() -> Self {
        let standin = VaultStandin::start(StandinConfig::lab()).await;
        let dns = DnsStub::start().await;
        let http01 = Http01Responder::start().await;
        let data_dir = tempfile::tempdir().unwrap();
        let config = data_dir.path().join("certgate.toml");
        std::fs::write(
            &config,
            format!(
                "default_profile = \"lab\"\n{}\
                 [profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n",
                standin.approle_config(data_dir.path(), SECRET_ID)
            ),
        )
        .unwrap();
        let args = ServeArgs {
            http01_port: http01.port(),
            ..ServeArgs::new(data_dir.path(), dns.addr(), Some(config.clone()))
        };
        Self {
            standin,
            _dns: dns,
            http01,
            data_dir,
            config,
            args,
        }
    }

    fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The same data dir and config, listening on `listen`.
    fn args_listening_on(&self, listen: SocketAddr) -> ServeArgs {
        ServeArgs {
            listen,
            ..self.args.clone()
        }
    }

    async fn client(&self) -> RawClient {
        RawClient::registered(
            &format!(
                "https://localhost:{}/acme/directory",
                self.args.listen.port()
            ),
            &self.data_dir().join("ca/root.pem"),
        )
        .await
    }

    /// An offline command on this data dir; panics unless it exits 0.
    async fn offline(&self, command: &[&str]) -> String {
        let output = certgate_command()
            .args(command)
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--config")
            .arg(&self.config)
            .output()
            .await
            .expect("running certgate");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "certgate {command:?} failed ({}) while serve runs:\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

/// How a `certgate serve` that was expected to fail at start exited.
struct Refused {
    status: std::process::ExitStatus,
    stderr: String,
    /// stdout and stderr together.
    said: String,
}

/// `certgate serve` with `args`, expected to fail at start. Panics with what
/// it logged, having killed it, if it still runs after [`DEADLINE`]: then
/// it was not refused.
async fn serve_expecting_failure(args: &ServeArgs) -> Refused {
    assert!(args.config.is_some(), "tests here pass --config");
    let mut command = args.serve_command();
    command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("starting the certgate binary");
    // Read to EOF beside the wait, so a full pipe cannot block certgate.
    let stdout = tokio::spawn(read_all(child.stdout.take().unwrap()));
    let stderr = tokio::spawn(read_all(child.stderr.take().unwrap()));
    let exited = tokio::time::timeout(DEADLINE, child.wait()).await;
    if exited.is_err() {
        child.kill().await.expect("killing certgate");
    }
    let stdout = stdout.await.unwrap();
    let stderr = stderr.await.unwrap();
    let said = format!("{stdout}{stderr}");
    match exited {
        Ok(status) => Refused {
            status: status.expect("waiting for certgate"),
            stderr,
            said,
        },
        Err(_) => {
            panic!("a serve that should have been refused still ran after {DEADLINE:?}:\n{said}")
        }
    }
}

async fn read_all(mut stream: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut bytes = Vec::new();
    let _ = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut bytes).await;
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Polls `probe` until it gives a value; panics naming `what` at the deadline.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An order as the database holds it: what a start must not change.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct OrderRow {
    status: String,
    /// The mark that says a signing request may have reached the CA.
    sign_attempted_at: Option<i64>,
    updated_at: i64,
    error: Option<String>,
}

async fn order_row(data_dir: &Path, order_id: &str) -> OrderRow {
    let mut db = certgate_testkit::database::open_read_only(data_dir).await;
    let row = sqlx::query_as(
        "SELECT status, sign_attempted_at, updated_at, error FROM orders WHERE id = ?",
    )
    .bind(order_id)
    .fetch_one(&mut db)
    .await
    .expect("the order is stored");
    db.close().await.unwrap();
    row
}

fn order_id(order_url: &str) -> &str {
    order_url.rsplit('/').next().unwrap()
}

/// Finalizes a ready order with a fresh key. The reply comes after at most
/// a few seconds, `processing` while the CA takes its time.
async fn finalize(client: &RawClient, order: &Value, name: &str) {
    let key = rcgen::KeyPair::generate().unwrap();
    let reply = client
        .post(
            order["finalize"].as_str().unwrap(),
            Some(json!({"csr": csr(&[name], &key)})),
        )
        .await;
    assert_eq!(reply.status, 200, "finalize {name}: {:?}", reply.json());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_serve_on_the_data_dir_is_refused_and_the_first_finishes_its_signings() {
    const ORDERS: usize = 4;
    let lab = Lab::start().await;
    let mut first = CertgateProcess::start(&lab.args).await;
    let first_pid = first.pid();
    assert_eq!(
        std::fs::read_to_string(lab.data_dir().join("serve.lock")).unwrap(),
        format!("{first_pid}\n"),
        "the lock file names its holder"
    );
    let client = Arc::new(lab.client().await);
    let names: Vec<String> = (0..ORDERS)
        .map(|i| format!("lock-{i}.lab.example"))
        .collect();
    let mut orders = Vec::new();
    for name in &names {
        orders.push(client.ready_order(&lab.http01, &[name]).await);
    }

    // Vault is slow now: each signing stays in flight for SIGNING_DELAY.
    lab.standin.set_delay(SIGNING_DELAY);
    let mut finalizes = tokio::task::JoinSet::new();
    for ((_, order), name) in orders.iter().zip(&names) {
        let (client, order, name) = (client.clone(), order.clone(), name.clone());
        finalizes.spawn(async move { finalize(&client, &order, &name).await });
    }
    // Marked means the signing request is on its way to the stand-in.
    for (order_url, _) in &orders {
        eventually(
            "every order is processing with its signing marked",
            || async {
                let row = order_row(lab.data_dir(), order_id(order_url)).await;
                (row.status == "processing" && row.sign_attempted_at.is_some()).then_some(())
            },
        )
        .await;
    }

    let second_args = lab.args_listening_on(format!("127.0.0.1:{}", free_port()).parse().unwrap());
    let second = serve_expecting_failure(&second_args).await;
    let said = &second.said;
    assert_eq!(second.status.code(), Some(1), "the second serve:\n{said}");
    let stderr = &second.stderr;
    let expected = format!(
        "another certgate (pid {first_pid}) is serving data dir {}",
        lab.data_dir().display()
    );
    assert!(
        stderr.contains(&expected),
        "the refusal names the data dir and the holder's PID ({expected:?}):\n{said}"
    );
    for sign_of_work in ["certgate is serving", "resuming"] {
        assert!(
            !said.contains(sign_of_work),
            "the refused serve went on ({sign_of_work:?}):\n{said}"
        );
    }
    assert_eq!(
        lab.standin.sign_count(),
        0,
        "Vault answered before the second serve was refused, so this test proved \
         nothing; raise SIGNING_DELAY"
    );

    // The first process's signings complete as if nothing had happened.
    while let Some(finalized) = finalizes.join_next().await {
        finalized.expect("a finalize was answered 200");
    }
    let mut downloaded = std::collections::BTreeSet::new();
    for (order_url, _) in &orders {
        let order = client
            .wait_for_order(order_url, &["valid", "invalid"])
            .await;
        assert_eq!(order["status"], "valid", "{order}");
        let chain = client
            .post(order["certificate"].as_str().unwrap(), None)
            .await;
        assert_eq!(chain.status, 200);
        downloaded.insert(leaf_serial(&String::from_utf8(chain.body).unwrap()));
    }
    let calls = lab.standin.sign_calls();
    for name in &names {
        let signed = calls
            .iter()
            .filter(|c| c.csr_dns_names == [name.clone()] && c.serial.is_some())
            .count();
        assert_eq!(signed, 1, "{name} was signed {signed} times: {calls:?}");
    }
    assert_eq!(calls.len(), ORDERS, "one sign call per order: {calls:?}");

    // The offline commands work beside the running server (they take no
    // lock), and the certificates are stored.
    let listed: Value =
        serde_json::from_str(&lab.offline(&["certs", "list", "--json"]).await).unwrap();
    assert_eq!(serials(&listed), downloaded, "certs list --json: {listed}");
    let accounts: Value =
        serde_json::from_str(&lab.offline(&["accounts", "list", "--json"]).await).unwrap();
    assert_eq!(accounts.as_array().map(Vec::len), Some(1), "{accounts}");
    lab.offline(&["eab", "list"]).await;
    lab.offline(&["check-config", "--offline"]).await;

    let log = first.log();
    assert!(
        !log.contains("stopped while the CA was signing"),
        "the first process failed an order:\n{log}"
    );
    assert!(first.stop().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_serve_that_cannot_bind_touches_no_unfinished_order_and_a_later_start_resumes_it() {
    let lab = Lab::start().await;
    let mut first = CertgateProcess::start(&lab.args).await;
    let client = lab.client().await;
    let name = "killed.lab.example";
    let (order_url, order) = client.ready_order(&lab.http01, &[name]).await;
    let id = order_id(&order_url);

    // SIGKILL while Vault holds the signing request: the order is left
    // processing, marked as possibly signed.
    lab.standin.set_delay(DEADLINE * 2);
    finalize(&client, &order, name).await;
    let left = eventually("the signing is marked", || async {
        let row = order_row(lab.data_dir(), id).await;
        row.sign_attempted_at.is_some().then_some(row)
    })
    .await;
    first.kill().await;
    lab.standin.set_delay(Duration::ZERO);
    assert_eq!(left, order_row(lab.data_dir(), id).await);
    assert_eq!(left.status, "processing");

    // The lock died with the process; the port is someone else's now.
    let squatter = std::net::TcpListener::bind(lab.args.listen).expect("taking the port");
    let second = serve_expecting_failure(&lab.args).await;
    let said = &second.said;
    assert_eq!(second.status.code(), Some(1), "{said}");
    assert!(
        said.contains("Address already in use"),
        "the failed start says why:\n{said}"
    );
    assert!(
        !said.contains("another certgate"),
        "SIGKILL left a stale lock:\n{said}"
    );
    assert!(!said.contains("resuming"), "{said}");
    assert_eq!(
        order_row(lab.data_dir(), id).await,
        left,
        "a start that failed to bind changed the unfinished order:\n{said}"
    );

    // The port is free again: a correct start resumes the order. Its
    // signing may have reached Vault, so it is not sent again; the order
    // fails (the client is told) rather than being signed twice.
    drop(squatter);
    let signs_before_restart = lab.standin.sign_count();
    let mut third = CertgateProcess::start(&lab.args).await;
    let resumed = client
        .wait_for_order(&order_url, &["valid", "invalid"])
        .await;
    assert_eq!(resumed["status"], "invalid", "{resumed}");
    assert_eq!(
        resumed["error"]["type"], "urn:ietf:params:acme:error:serverInternal",
        "{resumed}"
    );
    assert!(third.log().contains("resuming issuance"), "{}", third.log());
    assert_eq!(
        lab.standin.sign_count(),
        signs_before_restart,
        "the resumed order was sent to Vault again"
    );
    assert!(third.stop().await.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sigkilled_server_leaves_no_stale_lock() {
    let dns = DnsStub::start().await;
    let http01 = Http01Responder::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        http01_port: http01.port(),
        ..ServeArgs::new(data_dir.path(), dns.addr(), None)
    };
    let directory = format!("https://localhost:{}/acme/directory", args.listen.port());
    let root = data_dir.path().join("ca/root.pem");
    let lock_file = data_dir.path().join("serve.lock");

    let mut first = CertgateProcess::start(&args).await;
    let first_pid = first.pid();
    RawClient::registered(&directory, &root).await;
    first.kill().await;
    // The file stays with the dead PID in it; only the lock is gone.
    assert_eq!(
        std::fs::read_to_string(&lock_file).unwrap(),
        format!("{first_pid}\n")
    );

    let mut second = CertgateProcess::start(&args).await;
    assert_eq!(
        std::fs::read_to_string(&lock_file).unwrap(),
        format!("{}\n", second.pid())
    );
    let client = RawClient::registered(&directory, &root).await;
    client.issue(&http01, &["after-kill.example.test"]).await;
    assert!(second.stop().await.success());
}
