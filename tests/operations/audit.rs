//! The audit log and the log format, against the built binary: issuing
//! through a Vault profile (AppRole through the Vault stand-in) and an
//! EAB-required profile, revoking, and then reading the audit file, the
//! `audit_events` table and every log the run produced — one line per
//! issuance and revocation with its serial, the table append-only, the
//! server log all JSON, and no Vault token, AppRole secret ID or EAB HMAC
//! key anywhere.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Map, Value};
use sqlx::Connection;

use certgate_testkit::dns::DnsStub;
use certgate_testkit::eab::{certgate_eab_printed, register, EabKey};
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::inventory::leaf_serial;
use certgate_testkit::process::{certgate_command, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{b64, RawClient};
use certgate_testkit::vault::{Role, StandinConfig, VaultStandin};

/// `default` (the embedded CA, accounts only with an external account
/// key) and `lab` (Vault role `pki_int/lab-internal`, AppRole login with
/// `secret_id`, written into `dir`).
fn config(standin: &VaultStandin, dir: &Path, secret_id: &str) -> String {
    format!(
        "default_profile = \"default\"\n{}\
         [profiles.default]\nissuer = \"local\"\neab = \"required\"\n\
         [profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n",
        standin.approle_config(dir, secret_id)
    )
}

fn random_hex() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The lines of an audit log, parsed; each must be a JSON object with a
/// `time` and an `event`.
fn audit_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {line}"));
            assert!(
                value["time"].is_string() && value["event"].is_string(),
                "{line}"
            );
            value
        })
        .collect()
}

/// The lines whose `event` is `name`.
fn events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == name).collect()
}

/// `serial` field → the line, panicking on a serial given twice.
fn by_serial<'a>(lines: &[&'a Value]) -> BTreeMap<String, &'a Value> {
    let mut map = BTreeMap::new();
    for line in lines {
        let serial = line["serial"].as_str().unwrap().to_owned();
        assert!(map.insert(serial, *line).is_none(), "twice: {line}");
    }
    map
}

/// How many of `secrets` occur in `text` (counted, never printed).
fn leaked(text: &str, secrets: &[String]) -> usize {
    secrets.iter().filter(|s| text.contains(s.as_str())).count()
}

/// Every form an HMAC key could be written in: as given (base64url), as
/// standard base64, and as hex in either case.
fn hmac_forms(key: &EabKey) -> Vec<String> {
    let raw = key.hmac_bytes();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        key.hmac.clone(),
        URL_SAFE_NO_PAD.encode(&raw),
        STANDARD.encode(&raw),
        hex.to_ascii_uppercase(),
        hex,
    ]
}

async fn revoke(client: &RawClient, chain_pem: &str, reason: Option<i64>) {
    let der = certgate_testkit::chain_ders(chain_pem).remove(0);
    let mut payload = json!({"certificate": b64(&der)});
    if let Some(reason) = reason {
        payload["reason"] = json!(reason);
    }
    let reply = client.post(&client.url("revokeCert"), Some(payload)).await;
    assert_eq!(reply.status, 200, "revokeCert: {:?}", reply.json());
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_lines_match_what_was_issued_and_revoked_and_no_secret_is_logged() {
    let secret_id = random_hex();
    let standin = VaultStandin::start(
        StandinConfig::pki_int([Role::lab("lab-internal")]).certgate_approle(&secret_id),
    )
    .await;
    let dns = DnsStub::start().await;
    let http01 = Http01Responder::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let config = data_dir.path().join("certgate.toml");
    std::fs::write(&config, self::config(&standin, data_dir.path(), &secret_id)).unwrap();
    let args = ServeArgs {
        http01_port: http01.port(),
        ..ServeArgs::new(data_dir.path(), dns.addr(), Some(config.clone()))
    };
    let debug = [("RUST_LOG", "debug")];
    let mut certgate = CertgateProcess::start_with(&args, &["--log-format", "json"], &debug).await;
    let root_pem = data_dir.path().join("ca/root.pem");
    let base = format!("https://{}", args.listen);

    // An operator hands out a key while the server runs; a client binds it.
    let created = certgate_eab_printed(
        data_dir.path(),
        &config,
        &["create", "--profile", "default", "--note", "audit"],
        &debug,
    )
    .await;
    let key = EabKey::printed_by_create(&created.stdout);
    let mut bound = RawClient::new(&format!("{base}/acme/directory"), &root_pem).await;
    register(&mut bound, &key).await;
    let lab = RawClient::registered(&format!("{base}/acme/lab/directory"), &root_pem).await;

    let local_chain = bound.issue(&http01, &["nas.eab.example"]).await;
    let vault_chains = [
        lab.issue(&http01, &["one.lab.example"]).await,
        lab.issue(&http01, &["two.lab.example"]).await,
    ];
    revoke(&lab, &vault_chains[0], Some(1)).await;
    revoke(&bound, &local_chain, None).await;

    let logins = standin.logins();
    assert!(
        logins
            .iter()
            .any(|l| l.method == "approle" && l.status == 200),
        "certgate logged in with AppRole, so it held a token: {logins:?}"
    );
    let mut secrets = standin.token_ids();
    secrets.push(secret_id.clone());
    secrets.extend(hmac_forms(&key));
    // Waits for the issuances' audit records (a stop lets signing finish)
    // and checks the whole server log, stdout and stderr, for the secrets.
    certgate.never_logs(secrets.clone());
    assert!(certgate.stop().await.success());

    // The server log: every line a JSON object, at debug level too.
    let log = certgate.log();
    for line in log.lines() {
        let parsed: Result<Map<String, Value>, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not a JSON object: {line}");
    }
    assert!(log.contains(r#""level":"DEBUG""#), "RUST_LOG=debug applies");
    assert_eq!(leaked(&created.stderr, &secrets), 0, "eab create's stderr");

    // The audit file: private, and one line per issuance and revocation.
    let audit_path = data_dir.path().join("audit.log");
    let mode = std::fs::metadata(&audit_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let audit_bytes = std::fs::read(&audit_path).unwrap();
    let audit_text = String::from_utf8(audit_bytes.clone()).unwrap();
    assert_eq!(leaked(&audit_text, &secrets), 0, "the audit file");
    assert!(
        !audit_bytes
            .windows(32)
            .any(|w| w == key.hmac_bytes().as_slice()),
        "the audit file holds the raw HMAC key"
    );
    let lines = audit_lines(&audit_text);

    let issued = by_serial(&events(&lines, "certificate_issued"));
    let local_serial = leaf_serial(&local_chain);
    let vault_serials: Vec<String> = vault_chains.iter().map(|c| leaf_serial(c)).collect();
    let mut expected: Vec<&String> = vault_serials.iter().chain([&local_serial]).collect();
    expected.sort();
    assert_eq!(issued.keys().collect::<Vec<_>>(), expected, "{audit_text}");
    let local = issued[&local_serial];
    assert_eq!(local["profile"], "default");
    assert_eq!(local["ca"], "embedded");
    assert_eq!(local["names"], json!(["nas.eab.example"]));
    for (serial, name) in vault_serials
        .iter()
        .zip(["one.lab.example", "two.lab.example"])
    {
        let line = issued[serial];
        assert_eq!(line["profile"], "lab", "{line}");
        assert_eq!(line["ca"], "vault", "{line}");
        assert_eq!(line["vault_mount"], "pki_int", "{line}");
        assert_eq!(line["vault_role"], "lab-internal", "{line}");
        assert_eq!(line["names"], json!([name]), "{line}");
        assert!(line["order"].is_string() && line["not_after"].is_string());
    }

    let revoked = by_serial(&events(&lines, "certificate_revoked"));
    assert_eq!(revoked.len(), 2, "{audit_text}");
    assert_eq!(revoked[&vault_serials[0]]["reason"], "keyCompromise");
    assert_eq!(revoked[&local_serial]["reason"], "unspecified");
    let lab_account = lab.kid.as_deref().unwrap().rsplit('/').next().unwrap();
    assert_eq!(
        revoked[&vault_serials[0]]["by"],
        json!({"kind": "account", "id": lab_account})
    );

    // The key's creation and its one use, by kid.
    let key_created = events(&lines, "eab_key_created");
    assert_eq!(key_created.len(), 1, "{audit_text}");
    assert_eq!(key_created[0]["kid"], key.kid.as_str());
    assert_eq!(key_created[0]["by"], json!({"kind": "cli"}));
    let accounts = events(&lines, "account_created");
    let mut kids: Vec<Value> = accounts.iter().map(|a| a["eab_kid"].clone()).collect();
    kids.sort_by_key(Value::is_null);
    assert_eq!(kids, [json!(key.kid), Value::Null], "{audit_text}");
    assert_eq!(events(&lines, "order_created").len(), 3, "{audit_text}");

    // The table holds the same lines, and refuses to change them.
    let mut db = certgate_testkit::database::open_writable(data_dir.path()).await;
    let mut records: Vec<String> =
        sqlx::query_scalar("SELECT record FROM audit_events ORDER BY id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(leaked(&records.concat(), &secrets), 0, "the audit table");
    let mut file_lines: Vec<String> = audit_text.lines().map(str::to_owned).collect();
    // The same lines; an issuance task and the next request may reach the
    // table and the file in different orders.
    records.sort();
    file_lines.sort();
    assert_eq!(records, file_lines);
    let stored: Vec<String> = sqlx::query_scalar("SELECT serial FROM certificates ORDER BY serial")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(stored.iter().collect::<Vec<_>>(), expected);
    for statement in [
        "UPDATE audit_events SET record = '{}'",
        "DELETE FROM audit_events WHERE event = 'certificate_revoked'",
    ] {
        let refused = sqlx::query(statement).execute(&mut db).await;
        assert!(refused.is_err(), "{statement} was allowed");
    }
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(count as usize, lines.len());
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_stay_plain_and_audit_lines_can_go_to_stdout() {
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    let flags = ["--log-format", "text", "--audit-log", "-"];
    let mut certgate = CertgateProcess::start_with(&args, &flags, &[("RUST_LOG", "info")]).await;
    // An account, whose creation is the one audit line.
    RawClient::registered(
        &format!("https://{}/acme/directory", args.listen),
        &data_dir.path().join("ca/root.pem"),
    )
    .await;
    // The line is written before the response; the log reader may lag.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !certgate.log().contains(r#""event":"account_created""#) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no account_created line on stdout:\n{}",
            certgate.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(certgate.stop().await.success());

    let log = certgate.log();
    let serving = log
        .lines()
        .find(|l| l.contains("certgate is serving"))
        .unwrap();
    assert!(
        serving.contains(" INFO ") && serde_json::from_str::<Value>(serving).is_err(),
        "a plain text line: {serving}"
    );
    let json_lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(json_lines.len(), 1, "only the audit line is JSON:\n{log}");
    assert_eq!(json_lines[0]["event"], "account_created");
    assert!(
        !data_dir.path().join("audit.log").exists(),
        "with `-` there is no audit file"
    );
}

#[tokio::test]
async fn a_failed_start_is_a_json_line_too() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let data_dir = tempfile::tempdir().unwrap();
    let output = certgate_command()
        .args([
            "--log-format",
            "json",
            "serve",
            "--resolver",
            "127.0.0.1:53",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .arg("--listen")
        .arg(taken.local_addr().unwrap().to_string())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let last = lines.last().expect("certgate says why it stopped");
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert!(
        last["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("listening on")),
        "{stderr}"
    );
}
