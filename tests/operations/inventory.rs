//! The inventory from the command line: `certgate certs list | show` and
//! `certgate accounts list | deactivate`, run as the built binary on the
//! data of a certgate that is serving, after certificates of two lifetimes
//! were issued through it.

use std::collections::BTreeSet;
use std::process::Output;

use serde_json::{json, Value};

use certgate_testkit::chain_ders;
use certgate_testkit::instance::Instance;
use certgate_testkit::inventory::{
    audited, leaf_serial, openssl_der_serial, serials, TWO_LIFETIMES,
};
use certgate_testkit::process::certgate_command;
use certgate_testkit::raw_client::{b64, RawClient};

/// `certgate <args>` on `instance`'s data directory and config file.
async fn certgate(instance: &Instance, args: &[&str]) -> Output {
    let data_dir = instance.data_dir.path();
    certgate_command()
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(data_dir.join("certgate.toml"))
        .output()
        .await
        .expect("running certgate")
}

/// Stdout of a run that must succeed; panics with both streams otherwise.
async fn stdout_of(instance: &Instance, args: &[&str]) -> Vec<u8> {
    let output = certgate(instance, args).await;
    assert!(
        output.status.success(),
        "certgate {args:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

async fn json_of(instance: &Instance, args: &[&str]) -> Value {
    let stdout = stdout_of(instance, args).await;
    serde_json::from_slice(&stdout)
        .unwrap_or_else(|e| panic!("certgate {args:?} printed no JSON ({e}): {stdout:?}"))
}

/// The account id in a client's account URL.
fn account_id(client: &RawClient) -> String {
    let kid = client.kid.as_deref().expect("registered");
    kid.rsplit('/').next().unwrap().to_owned()
}

/// (id, status, certificate count) of each account `accounts list --json` prints.
async fn listed_accounts(instance: &Instance) -> BTreeSet<(String, String, i64)> {
    let accounts = json_of(instance, &["accounts", "list", "--json"]).await;
    accounts
        .as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {accounts}"))
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["status"].as_str().unwrap().to_owned(),
                a["certificates"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn set(items: &[&String]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn certs_list_finds_the_short_lived_and_show_exports_them() {
    let instance = Instance::start_with_config(Some(TWO_LIFETIMES.into())).await;
    let short = instance.registered_client("short").await;
    let long = instance.registered_client("long").await;
    let short_a = short.issue(&instance.http01, &["a.short.example"]).await;
    let short_b = short
        .issue(&instance.http01, &["b.short.example", "c.short.example"])
        .await;
    let long_chain = long.issue(&instance.http01, &["long.example"]).await;
    let (serial_a, serial_b, serial_long) = (
        leaf_serial(&short_a),
        leaf_serial(&short_b),
        leaf_serial(&long_chain),
    );

    let expiring = json_of(
        &instance,
        &["certs", "list", "--expiring-within", "30d", "--json"],
    )
    .await;
    assert_eq!(
        serials(&expiring),
        set(&[&serial_a, &serial_b]),
        "{expiring:#}"
    );
    let b = expiring
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["serial"] == serial_b.as_str())
        .unwrap();
    assert_eq!(b["names"], json!(["b.short.example", "c.short.example"]));
    assert_eq!(b["profile"], "short");
    assert_eq!(b["account"], account_id(&short).as_str());
    assert_eq!(b["status"], "valid");
    let not_after = time::OffsetDateTime::parse(
        b["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = not_after - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::hours(23) && left <= time::Duration::hours(24),
        "{b}"
    );

    let all = json_of(&instance, &["certs", "list", "--json"]).await;
    assert_eq!(serials(&all), set(&[&serial_a, &serial_b, &serial_long]));
    assert_eq!(
        all[2]["serial"],
        serial_long.as_str(),
        "soonest expiry first: {all:#}"
    );
    let long_only = json_of(&instance, &["certs", "list", "--profile", "long", "--json"]).await;
    assert_eq!(serials(&long_only), set(&[&serial_long]));
    let table = String::from_utf8(stdout_of(&instance, &["certs", "list"]).await).unwrap();
    let header = table.lines().next().unwrap();
    for column in [
        "SERIAL",
        "NAMES",
        "PROFILE",
        "ACCOUNT",
        "NOT-AFTER",
        "STATUS",
    ] {
        assert!(header.contains(column), "{table}");
    }
    assert!(
        table
            .lines()
            .any(|line| line.starts_with(&serial_long) && line.contains("long.example")),
        "{table}"
    );

    // DER to stdout, read by openssl; the serial typed as openssl prints it.
    let typed = serial_a.to_ascii_uppercase();
    let der = stdout_of(&instance, &["certs", "show", &typed, "--format", "der"]).await;
    assert_eq!(openssl_der_serial(&der), serial_a);
    assert_eq!(der, chain_ders(&short_a)[0]);
    let pem_chain = stdout_of(&instance, &["certs", "show", &serial_a, "--chain"]).await;
    let exported = chain_ders(std::str::from_utf8(&pem_chain).unwrap());
    assert_eq!(exported, chain_ders(&short_a), "the leaf and its chain");
    assert!(exported.len() >= 2, "a chain, not just the leaf");
    let out = instance.data_dir.path().join("leaf.pem");
    stdout_of(
        &instance,
        &[
            "certs",
            "show",
            &serial_long,
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .await;
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(chain_ders(&written), [chain_ders(&long_chain).remove(0)]);

    let der_chain = certgate(
        &instance,
        &["certs", "show", &serial_a, "--format", "der", "--chain"],
    )
    .await;
    assert!(!der_chain.status.success());
    assert!(
        String::from_utf8_lossy(&der_chain.stderr).contains("export the chain as PEM"),
        "{der_chain:?}"
    );
    let unknown = certgate(&instance, &["certs", "show", "0badc0de"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(unknown.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("there is no certificate with serial 0badc0de"),
        "{unknown:?}"
    );

    // Revoked: listed by --revoked, no longer expiring.
    let leaf_a = chain_ders(&short_a).remove(0);
    let revoked = short
        .post(
            &short.url("revokeCert"),
            Some(json!({"certificate": b64(&leaf_a)})),
        )
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.json());
    let revoked = json_of(&instance, &["certs", "list", "--revoked", "--json"]).await;
    assert_eq!(serials(&revoked), set(&[&serial_a]));
    assert_eq!(revoked[0]["status"], "revoked");
    assert!(revoked[0]["revoked_at"].is_string(), "{revoked}");
    let expiring = json_of(
        &instance,
        &["certs", "list", "--expiring-within", "30d", "--json"],
    )
    .await;
    assert_eq!(serials(&expiring), set(&[&serial_b]));

    let bad = certgate(&instance, &["certs", "list", "--expiring-within", "soon"]).await;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"soon\""),
        "{bad:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_list_and_deactivate() {
    let instance = Instance::start_with_config(Some(TWO_LIFETIMES.into())).await;
    let holder = instance.registered_client("long").await;
    holder.issue(&instance.http01, &["holder.example"]).await;
    let idle = instance.registered_client("short").await;
    let (holder_id, idle_id) = (account_id(&holder), account_id(&idle));

    assert_eq!(
        listed_accounts(&instance).await,
        BTreeSet::from([
            (holder_id.clone(), "valid".to_owned(), 1),
            (idle_id.clone(), "valid".to_owned(), 0)
        ])
    );
    let table = String::from_utf8(stdout_of(&instance, &["accounts", "list"]).await).unwrap();
    assert!(table.lines().next().unwrap().starts_with("ID"), "{table}");

    let done = stdout_of(&instance, &["accounts", "deactivate", &holder_id]).await;
    assert_eq!(
        String::from_utf8(done).unwrap().trim(),
        format!("deactivated account {holder_id}")
    );
    let refused = holder
        .post(
            &holder.url("newOrder"),
            Some(json!({"identifiers": [{"type": "dns", "value": "again.example"}]})),
        )
        .await;
    assert_eq!(refused.status, 401, "{:?}", refused.json());
    assert_eq!(refused.problem_type(), "unauthorized");
    // The other account still orders.
    idle.new_order(&["idle.example"]).await;

    let again = stdout_of(&instance, &["accounts", "deactivate", &holder_id]).await;
    assert!(
        String::from_utf8(again)
            .unwrap()
            .contains("already deactivated"),
        "a second deactivation says so"
    );
    assert_eq!(
        listed_accounts(&instance).await,
        BTreeSet::from([
            (holder_id.clone(), "deactivated".to_owned(), 1),
            (idle_id.clone(), "valid".to_owned(), 0)
        ])
    );

    let deactivations = audited(instance.data_dir.path(), "account_deactivated");
    assert_eq!(
        deactivations.len(),
        1,
        "only the change is audited: {deactivations:?}"
    );
    assert_eq!(deactivations[0]["account"], holder_id.as_str());
    assert_eq!(deactivations[0]["by"], json!({"kind": "cli"}));

    let unknown = certgate(&instance, &["accounts", "deactivate", "no-such-account"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("there is no account"),
        "{unknown:?}"
    );
}

/// The serial `openssl x509` reads from the PEM file at `path`, lower case.
fn openssl_pem_serial(path: &std::path::Path) -> String {
    let output = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(path)
        .output()
        .expect("running openssl");
    assert!(
        output.status.success(),
        "openssl cannot read {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase()
}

#[tokio::test(flavor = "multi_thread")]
async fn certs_export_writes_the_current_certificate_of_each_name_set() {
    let instance = Instance::start_with_config(Some(TWO_LIFETIMES.into())).await;
    let client = instance.registered_client("long").await;
    let first = client.issue(&instance.http01, &["web.example"]).await;
    let renewed = client.issue(&instance.http01, &["web.example"]).await;
    let other = client
        .issue(&instance.http01, &["api.example", "www.api.example"])
        .await;
    assert_ne!(leaf_serial(&first), leaf_serial(&renewed));

    let out = tempfile::tempdir().unwrap();
    let pem_dir = out.path().join("pem");
    stdout_of(
        &instance,
        &["certs", "export", "--dir", pem_dir.to_str().unwrap()],
    )
    .await;
    let mut files: Vec<String> = std::fs::read_dir(&pem_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["api.example.pem", "web.example.pem"]);
    // The renewal, not the certificate it superseded, with its chain.
    let web = pem_dir.join("web.example.pem");
    assert_eq!(openssl_pem_serial(&web), leaf_serial(&renewed));
    assert_eq!(
        chain_ders(&std::fs::read_to_string(&web).unwrap()).len(),
        chain_ders(&renewed).len()
    );
    assert_eq!(
        openssl_pem_serial(&pem_dir.join("api.example.pem")),
        leaf_serial(&other)
    );

    let der_dir = out.path().join("der");
    stdout_of(
        &instance,
        &[
            "certs",
            "export",
            "--dir",
            der_dir.to_str().unwrap(),
            "--format",
            "der",
            "--source",
            "acme",
        ],
    )
    .await;
    let der = std::fs::read(der_dir.join("web.example.der")).unwrap();
    assert_eq!(openssl_der_serial(&der), leaf_serial(&renewed));
}

/// Waits until `path` holds a certificate with `serial` (as openssl reads it).
async fn exported(path: &std::path::Path, serial: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if path.exists() && openssl_pem_serial(path) == serial {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never held {serial}",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_serve_time_export_folder_follows_a_renewal() {
    let folder = tempfile::tempdir().unwrap();
    let config = format!(
        "{TWO_LIFETIMES}[inventory]\nsync_interval = \"1s\"\nexport_dir = \"{}\"\n",
        folder.path().display()
    );
    let instance = Instance::start_with_config(Some(config)).await;
    let client = instance.registered_client("long").await;
    let first = client.issue(&instance.http01, &["svc.example"]).await;
    let path = folder.path().join("svc.example.pem");
    exported(&path, &leaf_serial(&first)).await;
    let renewed = client.issue(&instance.http01, &["svc.example"]).await;
    exported(&path, &leaf_serial(&renewed)).await;
    let leftovers: Vec<_> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}
