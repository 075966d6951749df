//! certgate on PostgreSQL, as the built binary: two servers on one database
//! (no `serve.lock` with PostgreSQL) issue certificates to concurrent
//! clients and answer `503` when the database server ends their
//! connections, then heal; and `certgate migrate` run by several processes at once on a
//! fresh database applies each migration once. Each test creates a database
//! of its own and drops it; without a PostgreSQL server they say loudly
//! that they did not run (`certgate_testkit::postgres`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::json;
use sqlx::{Connection, PgConnection};

use crate::common::{assert_unavailable, fresh_client, try_issue};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::inventory::{leaf_serial, listed_serials_with};
use certgate_testkit::postgres::TemporaryDatabase;
use certgate_testkit::process::{certgate_command, free_port, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::RawClient;

/// Concurrent clients, half on each server.
const FLOWS: usize = 8;
/// Certificates each client gets, one after another.
const ISSUANCES_PER_FLOW: usize = 2;
/// `certgate migrate` processes started at once on one fresh database.
const MIGRATORS: usize = 4;
/// The migrations of migrations/postgres.
const MIGRATIONS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_database_issue_to_concurrent_clients() {
    let test = concat!(module_path!(), "::two_servers_on_one_postgres_database");
    let Some(database) = TemporaryDatabase::create(test).await else {
        return;
    };
    let dns = DnsStub::start().await;
    let http01 = Arc::new(Http01Responder::start().await);
    let data_dir = tempfile::tempdir().unwrap();
    let mut first = ServeArgs::new(data_dir.path(), dns.addr(), None);
    first.http01_port = http01.port();
    // The same data directory (and so the same embedded CA): with SQLite
    // the second would be refused by serve.lock.
    let mut second = first.clone();
    second.listen = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let flags = ["--database-url", database.url()];
    let env = [("RUST_LOG", "info")];
    let mut servers = Vec::new();
    for args in [&first, &second] {
        servers.push(CertgateProcess::start_with(args, &flags, &env).await);
    }

    let started = Instant::now();
    let flows = (0..FLOWS).map(|flow| {
        let http01 = http01.clone();
        let args = if flow % 2 == 0 { &first } else { &second };
        let (directory, root) = (args.directory_url(), args.root_pem());
        async move {
            let mut client = fresh_client(&RawClient::new(&directory, &root).await);
            let mut serials = Vec::new();
            for n in 0..ISSUANCES_PER_FLOW {
                let name = format!("pg-{flow}-{n}.example.test");
                let chain = try_issue(&mut client, &http01, &name)
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
    assert_eq!(listed_serials_with(data_dir.path(), &flags).await, saved);
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
    // the next request that needs it is told to come back, and requests
    // succeed again without restarting certgate.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert!(!ended.is_empty());
    connection.close().await.unwrap();
    let template = RawClient::new(&first.directory_url(), &first.root_pem()).await;
    let new_account = json!({"termsOfServiceAgreed": true});
    let client = fresh_client(&template);
    let lost = client
        .post(&client.url("newAccount"), Some(new_account.clone()))
        .await;
    assert_unavailable("newAccount after the connections ended", &lost);
    let (deadline, mut refused) = (Instant::now() + Duration::from_secs(10), 1);
    loop {
        let client = fresh_client(&template);
        let reply = client
            .post(&client.url("newAccount"), Some(new_account.clone()))
            .await;
        if reply.status == 201 {
            println!("{refused} requests answered 503 before the connections were replaced");
            break;
        }
        assert_unavailable("newAccount while connections are replaced", &reply);
        refused += 1;
        assert!(Instant::now() < deadline, "no new connection within 10 s");
    }

    for mut server in servers {
        assert!(server.stop().await.success(), "{}", server.log());
    }
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
    assert_eq!(applied.len(), MIGRATIONS, "{applied:?}");
    assert!(applied.iter().all(|(_, success)| *success), "{applied:?}");

    let mut server = CertgateProcess::start_with(
        &args,
        &["--database-url", url, "--migrate", "false"],
        &[("RUST_LOG", "info")],
    )
    .await;
    assert!(server.stop().await.success(), "{}", server.log());
}
