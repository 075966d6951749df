//! What an operator meets first: the levels of the log a real server
//! writes, the start-up banner, the root's fingerprint and how a client
//! verifies it, and the offline commands' refusals.

use std::os::unix::process::CommandExt;

use serde_json::{json, Value};

use certgate_testkit::chain_ders;
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::process::{certgate_command, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::{b64, RawClient};

/// One JSON log line: its level, message and the request path of its span.
struct LogLine {
    level: String,
    message: String,
    path: Option<String>,
    raw: Value,
}

fn json_lines(log: &str) -> Vec<LogLine> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|raw| LogLine {
            level: raw["level"].as_str().unwrap_or_default().to_owned(),
            message: raw["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            path: raw["span"]["path"].as_str().map(str::to_owned),
            raw,
        })
        .collect()
}

/// A real server at DEBUG with JSON logs: probes, one issuance, one failed
/// validation and one revocation. Each request is a DEBUG line and the
/// probes never rise above it; the issuance and the revocation are one
/// INFO line each; the failed validation is a WARN that says why.
#[tokio::test(flavor = "multi_thread")]
async fn each_event_is_logged_once_at_its_level() {
    let dns = DnsStub::start().await;
    let http01 = Http01Responder::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let args = ServeArgs {
        http01_port: http01.port(),
        ..ServeArgs::new(data_dir.path(), dns.addr(), None)
    };
    let mut certgate =
        CertgateProcess::start_with(&args, &["--log-format", "json"], &[("RUST_LOG", "debug")])
            .await;
    let root = args.root_pem();
    let base = format!("https://{}", args.listen);
    let probe = certgate_testkit::raw_client::https_trusting(&root);
    for path in ["/health", "/ready", "/metrics", "/health"] {
        let reply = probe.get(format!("{base}{path}")).send().await.unwrap();
        assert!(reply.status().is_success(), "{path}: {}", reply.status());
    }

    let client = RawClient::registered(&args.directory_url(), &root).await;
    let chain = client.issue(&http01, &["logged.lab.example"]).await;
    let failed = client
        .attempt_http01("unanswered.lab.example", |_, _| {})
        .await;
    assert_eq!(failed["status"], "invalid", "{failed}");
    let leaf = chain_ders(&chain).remove(0);
    let revoked = client
        .post(
            &client.url("revokeCert"),
            Some(json!({"certificate": b64(&leaf)})),
        )
        .await;
    assert_eq!(revoked.status, 200, "{:?}", revoked.json());
    certgate.stop().await;

    let log = certgate.log();
    let lines = json_lines(&log);
    assert!(lines.len() > 20, "the log is JSON lines:\n{log}");
    let at = |level: &str, message: &str| {
        lines
            .iter()
            .filter(|l| l.level == level && l.message == message)
            .count()
    };

    // Every request answered is one DEBUG line, probes included.
    let requests: Vec<&LogLine> = lines
        .iter()
        .filter(|l| l.raw["target"] == "tower_http::trace::on_response")
        .collect();
    assert!(requests.len() >= 10, "{log}");
    assert!(requests.iter().all(|l| l.level == "DEBUG"), "{log}");
    for probe in ["/health", "/ready", "/metrics"] {
        let about_probe: Vec<&LogLine> = lines
            .iter()
            .filter(|l| l.path.as_deref() == Some(probe))
            .collect();
        assert!(!about_probe.is_empty(), "{probe} was logged at DEBUG");
        for line in about_probe {
            assert!(
                line.level == "DEBUG" || line.level == "TRACE",
                "{probe} above DEBUG: {}",
                line.raw
            );
        }
    }

    assert_eq!(at("INFO", "certificate issued"), 1, "{log}");
    assert_eq!(at("INFO", "certificate revoked"), 1, "{log}");
    let invalid: Vec<&LogLine> = lines
        .iter()
        .filter(|l| l.message == "challenge invalid")
        .collect();
    assert_eq!(invalid.len(), 1, "{log}");
    assert_eq!(invalid[0].level, "WARN", "{}", invalid[0].raw);
    assert_eq!(invalid[0].raw["fields"]["name"], "unanswered.lab.example");
    let reason = invalid[0].raw["fields"]["problem"].as_str().unwrap_or("");
    assert!(reason.contains("404"), "the reason is given: {reason}");

    // Nothing else a client did is an INFO line except its account: what
    // is left of the INFO lines after the start-up banner and before the
    // stop.
    let infos: Vec<&str> = lines
        .iter()
        .skip_while(|l| l.message != "certgate is serving")
        .skip(1)
        .filter(|l| l.level == "INFO" && l.raw["span"]["name"] == "request")
        .map(|l| l.message.as_str())
        .collect();
    let mut infos_with_work: Vec<&str> = lines
        .iter()
        .filter(|l| {
            l.level == "INFO"
                && [
                    "certificate issued",
                    "certificate revoked",
                    "account created",
                ]
                .contains(&l.message.as_str())
        })
        .map(|l| l.message.as_str())
        .collect();
    infos_with_work.sort_unstable();
    assert_eq!(
        infos_with_work,
        [
            "account created",
            "certificate issued",
            "certificate revoked"
        ]
    );
    assert!(
        infos
            .iter()
            .all(|m| ["account created", "certificate revoked"].contains(m)),
        "a request logs INFO only for what it changed: {infos:?}"
    );
}

/// `certgate <args>` (the built binary), its output and whether it succeeded.
async fn certgate(args: &[&str], stdin: Option<&[u8]>) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut command = certgate_command();
    command
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("running certgate");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default()).await.unwrap();
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `openssl x509 -noout -fingerprint -sha256` says of `pem`, after its `=`.
fn openssl_fingerprint(pem: &std::path::Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem)
        .output()
        .expect("running openssl");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().rsplit_once('=').unwrap().1.to_owned()
}

/// The root's subject common name, as openssl prints it.
fn openssl_subject(pem: &std::path::Path) -> String {
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(pem)
        .output()
        .expect("running openssl");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Listening on every address with a TLS name, certgate names the URL
/// clients use (never 0.0.0.0), the root's fingerprint and a client line;
/// `ca fingerprint`, `ca root`, `/` and `ca verify` agree with openssl.
#[tokio::test(flavor = "multi_thread")]
async fn the_banner_and_the_ca_commands_give_the_url_and_the_fingerprint() {
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    let port = args.listen.port();
    args.listen = format!("0.0.0.0:{port}").parse().unwrap();
    let mut process = CertgateProcess::start_with(
        &args,
        &["--tls-name", "acme.lab.example"],
        &[("RUST_LOG", "info")],
    )
    .await;
    let root = args.root_pem();
    let expected = openssl_fingerprint(&root);
    assert_eq!(expected.len(), 95, "{expected}");

    let dir = data_dir.path().to_str().unwrap();
    let (ok, printed, err) = certgate(&["ca", "fingerprint", "--data-dir", dir], None).await;
    assert!(ok, "{err}");
    assert_eq!(printed.trim(), expected);
    let (ok, printed, err) = certgate(&["ca", "root", "--data-dir", dir], None).await;
    assert!(ok, "{err}");
    assert_eq!(printed, std::fs::read_to_string(&root).unwrap());

    let log = process.log();
    let serving = log
        .lines()
        .find(|l| l.contains("certgate is serving"))
        .unwrap();
    assert!(
        serving.contains(&format!(
            "directory=https://acme.lab.example:{port}/acme/directory"
        )),
        "{serving}"
    );
    assert!(!serving.contains("https://0.0.0.0"), "{serving}");
    assert!(
        serving.contains(&format!("root_sha256={expected}")),
        "{serving}"
    );
    let client = log
        .lines()
        .find(|l| l.contains("first certificate"))
        .expect("a client line");
    assert!(
        client.contains(&format!(
            "lego --server https://acme.lab.example:{port}/acme/directory"
        )),
        "{client}"
    );
    assert!(client.contains(&root.display().to_string()), "{client}");
    assert!(!log.contains("hostname mismatch"), "{log}");

    // The index page shows it too.
    let http = certgate_testkit::raw_client::https_trusting(&root);
    let index = http
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(index.contains(&expected), "{index}");
    process.stop().await;

    // The bootstrap: the root fetched untrusted passes only with its fingerprint.
    let pem = std::fs::read(&root).unwrap();
    let (ok, passed, _) = certgate(&["ca", "verify", "--fingerprint", &expected], Some(&pem)).await;
    assert!(ok);
    assert_eq!(passed.as_bytes(), pem.as_slice());
    let lower = expected.replace(':', "").to_lowercase();
    let (ok, _, _) = certgate(&["ca", "verify", "--fingerprint", &lower], Some(&pem)).await;
    assert!(ok, "case and colons do not matter");
    let other = format!("00{}", &expected[2..]);
    let (ok, passed, err) = certgate(&["ca", "verify", "--fingerprint", &other], Some(&pem)).await;
    assert!(!ok);
    assert!(passed.is_empty(), "nothing to trust is printed: {passed}");
    assert!(err.contains("MISMATCH"), "{err}");

    // Each install's root has a name of its own.
    let subject = openssl_subject(&root);
    assert!(subject.contains("certgate root CA "), "{subject}");
    let second = tempfile::tempdir().unwrap();
    let (ok, _, err) = certgate(
        &[
            "ca",
            "create",
            "--data-dir",
            second.path().to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert_ne!(openssl_subject(&second.path().join("ca/root.pem")), subject);

    // Reading a CA that is not there makes none.
    let empty = tempfile::tempdir().unwrap();
    let (ok, _, err) = certgate(
        &[
            "ca",
            "fingerprint",
            "--data-dir",
            empty.path().to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(!ok);
    assert!(err.contains("there is no embedded CA"), "{err}");
    assert!(!empty.path().join("ca").exists());
}

/// Listening on every address with no TLS name, the URL is this machine's
/// name, and the banner warns that the certificate does not carry it.
#[tokio::test(flavor = "multi_thread")]
async fn a_name_the_certificate_lacks_is_warned_about() {
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let mut args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    let port = args.listen.port();
    args.listen = format!("0.0.0.0:{port}").parse().unwrap();
    let mut process = CertgateProcess::start(&args).await;
    process.stop().await;
    let log = process.log();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let serving = log
        .lines()
        .find(|l| l.contains("certgate is serving"))
        .unwrap();
    assert!(
        serving.contains(&format!(
            "directory=https://{}:{port}/acme/directory",
            host.trim()
        )),
        "{serving}"
    );
    assert!(log.contains("hostname mismatch"), "{log}");
}

/// An inventory command pointed at a data dir with no database says so,
/// naming the path and the flag it came from, and creates nothing.
#[tokio::test]
async fn offline_commands_refuse_a_missing_database() {
    let parent = tempfile::tempdir().unwrap();
    let typo = parent.path().join("certgate-dta");
    let dir = typo.to_str().unwrap();
    for args in [
        &["accounts", "list", "--data-dir", dir][..],
        &["certs", "list", "--data-dir", dir][..],
        &["eab", "list", "--data-dir", dir][..],
    ] {
        let (ok, out, err) = certgate(args, None).await;
        assert!(!ok, "{args:?}: {out}");
        assert!(
            err.contains(&format!("no database at {dir}/certgate.db"))
                && err.contains(&format!("--data-dir {dir}")),
            "{args:?}: {err}"
        );
        assert!(!typo.exists(), "{args:?} created {dir}");
    }
}

/// `certgate check-config --offline` with these flags: (exit ok, stdout).
async fn check_offline(flags: &[&str]) -> (bool, String) {
    let mut args = vec!["check-config", "--offline"];
    args.extend_from_slice(flags);
    let (ok, out, _) = certgate(&args, None).await;
    (ok, out)
}

/// The offline check finds what would stop serve at start: a port another
/// process holds, and a data directory this user cannot write.
#[tokio::test]
async fn check_config_offline_finds_a_busy_port_and_an_unwritable_data_dir() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let (ok, out) = check_offline(&["--data-dir", dir, "--listen", &busy]).await;
    assert!(!ok, "{out}");
    let port = busy.rsplit(':').next().unwrap();
    assert!(
        out.lines()
            .any(|l| l.starts_with("PROBLEM")
                && l.contains(&format!("port {port} is already in use"))),
        "{out}"
    );
    drop(taken);
    let (ok, out) = check_offline(&["--data-dir", dir, "--listen", &busy]).await;
    assert!(ok, "{out}");
    assert!(out.contains("writable by uid"), "{out}");

    // A directory the checking user cannot write: as root, run the check
    // as nobody (65534).
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    std::fs::set_permissions(
        data_dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = std::process::Command::new(certgate_testkit::process::certgate_binary())
        .args([
            "check-config",
            "--offline",
            "--data-dir",
            dir,
            "--listen",
            &busy,
        ])
        .uid(65534)
        .gid(65534)
        .env_remove("CERTGATE_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("PROBLEM") && l.contains("is not writable by uid 65534")),
        "{text}"
    );
}

/// Run as root on a data directory that belongs to the service user, `eab
/// create` leaves every file it made to that user, so the service reads them.
#[tokio::test]
async fn eab_create_as_root_leaves_its_files_to_the_data_dirs_owner() {
    use std::os::unix::fs::MetadataExt;
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let (ok, _, err) = certgate(&["migrate", "--data-dir", dir], None).await;
    assert!(ok, "{err}");
    // The service user's directory, as the systemd install makes it.
    for entry in std::fs::read_dir(data_dir.path()).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::chown(data_dir.path(), Some(65534), Some(65534)).unwrap();
    let (ok, out, err) = certgate(
        &["eab", "create", "--profile", "default", "--data-dir", dir],
        None,
    )
    .await;
    assert!(ok, "{out}{err}");
    let mut checked = 0;
    for entry in std::fs::read_dir(data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (metadata.uid(), metadata.gid()),
            (65534, 65534),
            "{} is not the data dir owner's",
            path.display()
        );
        checked += 1;
    }
    assert!(data_dir.path().join("eab.key").exists());
    assert!(checked >= 3, "eab.key, the database and the audit log");
}

/// `certgate init` writes a config that passes `check-config --offline`
/// and serves as written; it does not overwrite one, and as root it gives
/// the data directory and the config to the service user.
#[tokio::test(flavor = "multi_thread")]
async fn init_writes_a_config_that_checks_and_serves() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dns = DnsStub::start().await;
    let folder = tempfile::tempdir().unwrap();
    let config = folder.path().join("certgate.toml");
    let data_dir = folder.path().join("data");
    let mut args = ServeArgs::new(&data_dir, dns.addr(), Some(config.clone()));
    let listen = args.listen.to_string();
    let init = [
        "init",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--listen",
        &listen,
        "--tls-name",
        "acme.lab.example",
    ];
    let (ok, out, err) = certgate(&init, None).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("certgate serve --config"), "{out}");
    let mode = std::fs::metadata(&data_dir).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "the data dir is certgate's user's only"
    );
    let written = std::fs::read_to_string(&config).unwrap();

    let (ok, out) = check_offline(&["--config", config.to_str().unwrap()]).await;
    assert!(ok, "{out}");

    // Once more: the file stays as it was.
    let (ok, _, err) = certgate(&init, None).await;
    assert!(!ok && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);

    args.config = Some(config.clone());
    let mut certgate_process = CertgateProcess::start(&args).await;
    let client = RawClient::registered(&args.directory_url(), &args.root_pem()).await;
    assert!(client
        .kid
        .as_deref()
        .is_some_and(|kid| kid.starts_with("https://")));
    assert!(certgate_process.stop().await.success());

    // The Vault variant passes too; the offline check names the credential
    // files an operator still puts beside it.
    let vault_config = folder.path().join("vault.toml");
    let (ok, _, err) = certgate(
        &[
            "init",
            "--vault",
            "--config",
            vault_config.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out) = check_offline(&["--config", vault_config.to_str().unwrap()]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("signs with Vault at pki_int/sign/acme"),
        "{out}"
    );
    let secret_id = folder.path().join("secret-id");
    assert!(
        out.contains(&format!("secret_id_file {}", secret_id.display())),
        "{out}"
    );

    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let owned = folder.path().join("service");
    let (ok, _, err) = certgate(
        &[
            "init",
            "--user",
            "nobody",
            "--config",
            owned.join("certgate.toml").to_str().unwrap(),
            "--data-dir",
            owned.join("data").to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert!(ok, "{err}");
    for path in [owned.join("certgate.toml"), owned.join("data")] {
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.uid(), 65534, "{} is nobody's", path.display());
    }
}
