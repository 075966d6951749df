//! `certgate db copy` as an operator moves from SQLite to PostgreSQL: a
//! certgate on SQLite issues certificates (one revoked) to an account bound
//! with an EAB key, and stops; its database is copied into a fresh
//! PostgreSQL database; certgate then serves from PostgreSQL with the same
//! CA folder and eab.key, and finds everything where it was. A copy from
//! the SQLite database of a running server, and one onto a database that
//! holds rows, are refused and change nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};

use certgate_testkit::chain_ders;
use certgate_testkit::dns::DnsStub;
use certgate_testkit::eab::{binding, create_key, new_account, register};
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::inventory::leaf_serial;
use certgate_testkit::postgres::TemporaryDatabase;
use certgate_testkit::process::{certgate_command, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{b64, RawClient};

/// One local profile where a binding may be sent, so that the account can
/// be bound with an EAB key and a second key is left to be used later.
const CONFIG: &str = "[profiles.default]\nissuer = \"local\"\neab = \"optional\"\n";
/// Certificates issued before the copy.
const ISSUED: usize = 3;

async fn certgate(args: &[&str]) -> Output {
    certgate_command()
        .args(args)
        .output()
        .await
        .expect("running certgate")
}

fn printed(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// (serial, status) of every certificate `certs list --json` prints for
/// the database `url`.
async fn listed(data_dir: &Path, url: &str) -> BTreeSet<(String, String)> {
    let output = certgate(&[
        "certs",
        "list",
        "--json",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--database-url",
        url,
    ])
    .await;
    assert!(output.status.success(), "{}", printed(&output));
    let listing: Value = serde_json::from_slice(&output.stdout).unwrap();
    listing
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |name: &str| c[name].as_str().unwrap().to_owned();
            (field("serial"), field("status"))
        })
        .collect()
}

/// The rows `db copy` printed for `table`.
fn copied_rows(stdout: &str, table: &str) -> u64 {
    stdout
        .lines()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(table)).then(|| words.next().unwrap().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no row count for {table} in:\n{stdout}"))
}

/// Rows of each table that holds data in the PostgreSQL database at `url`.
async fn row_counts(url: &str) -> Vec<i64> {
    let mut connection = PgConnection::connect(url).await.unwrap();
    let mut counts = Vec::new();
    for table in [
        "accounts",
        "orders",
        "certificates",
        "eab_keys",
        "audit_events",
    ] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut connection)
            .await
            .unwrap();
        counts.push(count);
    }
    connection.close().await.unwrap();
    counts
}

async fn revoke(client: &RawClient, leaf_der: &[u8]) -> certgate_testkit::raw_client::Reply {
    let payload = json!({"certificate": b64(leaf_der), "reason": 4});
    client.post(&client.url("revokeCert"), Some(payload)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_copied_to_postgres_serves_the_same_accounts_and_certificates() {
    let test = concat!(module_path!(), "::sqlite_copied_to_postgres");
    let Some(database) = TemporaryDatabase::create(test).await else {
        return;
    };
    let postgres = database.url();
    let dns = DnsStub::start().await;
    let http01 = Http01Responder::start().await;
    let top = tempfile::tempdir().unwrap();
    let data_dir = top.path().join("sqlite-server");
    let config = top.path().join("certgate.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut args = ServeArgs::new(&data_dir, dns.addr(), Some(config.clone()));
    args.http01_port = http01.port();
    let sqlite = format!("sqlite://{}", data_dir.join("certgate.db").display());

    // On SQLite: an account bound with one EAB key, another key left
    // unused, three certificates, one of them revoked.
    std::fs::create_dir(&data_dir).unwrap();
    let bound_key = create_key(&data_dir, &config, &[]).await;
    let unused_key = create_key(&data_dir, &config, &["--note", "for later"]).await;
    let mut server = CertgateProcess::start(&args).await;
    let root = args.root_pem();
    let mut client = RawClient::new(&args.directory_url(), &root).await;
    register(&mut client, &bound_key).await;
    let mut chains = Vec::new();
    for n in 0..ISSUED {
        let name = format!("copy-{n}.example.test");
        chains.push(client.issue(&http01, &[&name]).await);
    }
    let revoked_leaf = chain_ders(&chains[0]).remove(0);
    assert_eq!(revoke(&client, &revoked_leaf).await.status, 200);
    let revoked_serial = leaf_serial(&chains[0]);

    // While it serves, the copy is refused and the target left untouched.
    let refused = certgate(&["db", "copy", "--from", &sqlite, "--to", postgres]).await;
    assert!(!refused.status.success(), "{}", printed(&refused));
    assert!(
        printed(&refused).contains("stop it before copying its database"),
        "{}",
        printed(&refused)
    );
    let mut connection = PgConnection::connect(postgres).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();
    assert_eq!(tables, 0, "the refused copy touched the target");
    assert!(server.stop().await.success(), "{}", server.log());

    let before = listed(&data_dir, &sqlite).await;
    assert_eq!(before.len(), ISSUED);
    assert!(before.contains(&(revoked_serial.clone(), "revoked".to_owned())));

    let copied = certgate(&["db", "copy", "--from", &sqlite, "--to", postgres]).await;
    let stdout = String::from_utf8_lossy(&copied.stdout).into_owned();
    assert!(copied.status.success(), "{}", printed(&copied));
    assert_eq!(copied_rows(&stdout, "certificates"), ISSUED as u64);
    assert_eq!(copied_rows(&stdout, "orders"), ISSUED as u64);
    assert_eq!(copied_rows(&stdout, "accounts"), 1);
    assert_eq!(copied_rows(&stdout, "eab_keys"), 2);
    assert_eq!(listed(&data_dir, postgres).await, before);

    // A second copy onto the filled database is refused and changes nothing.
    let counts = row_counts(postgres).await;
    let again = certgate(&["db", "copy", "--from", &sqlite, "--to", postgres]).await;
    assert!(!again.status.success(), "{}", printed(&again));
    assert!(
        printed(&again).contains("already holds rows"),
        "{}",
        printed(&again)
    );
    assert_eq!(row_counts(postgres).await, counts);

    // certgate on PostgreSQL, as a replica with a data dir of its own: the
    // CA folder and eab.key are the first server's, mounted by path; same
    // address, so the old account URL is the URL it serves.
    let replica_dir = top.path().join("replica");
    let replica = ServeArgs {
        data_dir: replica_dir.clone(),
        ..args.clone()
    };
    let ca_dir = data_dir.join("ca");
    let eab_key = data_dir.join("eab.key");
    let mut server = CertgateProcess::start_with(
        &replica,
        &[
            "--database-url",
            postgres,
            "--ca-dir",
            ca_dir.to_str().unwrap(),
            "--eab-key-file",
            eab_key.to_str().unwrap(),
        ],
        &[("RUST_LOG", "info")],
    )
    .await;
    assert!(!replica_dir.join("ca").exists());
    assert!(!replica_dir.join("certgate.db").exists());
    // The same key finds the same account (newAccount is signed with the
    // key itself, not the account URL).
    let account_url = client.kid.take();
    let found = client
        .post(
            &client.url("newAccount"),
            Some(json!({"onlyReturnExisting": true})),
        )
        .await;
    assert_eq!(found.status, 200, "{:?}", found.json());
    assert_eq!(found.header("location"), account_url.as_deref());
    client.kid = account_url;
    // It orders and gets a certificate, signed by the same CA (the client
    // trusts only the first server's root).
    let chain = client.issue(&http01, &["after-copy.example.test"]).await;
    let after = listed(&replica_dir, postgres).await;
    assert!(after.contains(&(leaf_serial(&chain), "valid".to_owned())));
    assert!(after.is_superset(&before));
    // The revocation holds.
    let revoked_again = revoke(&client, &revoked_leaf).await;
    assert_eq!(revoked_again.problem_type(), "alreadyRevoked");
    // The unused EAB key, sealed under the shared eab.key, binds a new account.
    let newcomer = RawClient::new(&replica.directory_url(), &root).await;
    let url = newcomer.url("newAccount");
    let reply = new_account(
        &newcomer,
        Some(binding(&newcomer, &unused_key.kid, &unused_key.hmac, &url)),
    )
    .await;
    assert_eq!(reply.status, 201, "{:?}", reply.json());
    assert!(server.stop().await.success(), "{}", server.log());
}
