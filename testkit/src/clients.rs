//! Running real ACME clients (certbot, lego) against certgate and judging
//! the certificates they save.
//!
//! The clients and `openssl` are Debian packages the tests need; a missing
//! one fails the test with the package to install rather than skipping it,
//! so that a green run always means the clients were exercised.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

/// How long a client may take for one run. An issuance takes seconds; this
/// only catches a client that hangs.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// Fails (never skips) when `program` is missing, naming the apt `package`
/// to install. Only whether the program starts matters, not what it answers
/// to `--version`.
pub fn require_tool(program: &str, package: &str) {
    let found = std::process::Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`{program}` is not installed; this test needs it: apt-get install -y {package}"
    );
}

/// Runs a client to completion within [`CLIENT_TIMEOUT`], killing it when it
/// takes longer.
///
/// Its output goes to a file, so that it is still there to show when the
/// client hangs and is killed. On failure or timeout this panics with that
/// output and with `logs()`: certgate's log, followed by the log of any
/// other server the client talked to under a heading of its own (e.g.
/// `&|| format!("{}\n--- named log ---\n{}", certgate.log(), bind.log())`),
/// since the cause may be on either side.
/// Returns what the client printed.
pub async fn run_client(what: &str, mut command: Command, logs: &dyn Fn() -> String) -> String {
    let log_dir = tempfile::tempdir().unwrap();
    let log_path = log_dir.path().join("output");
    let log = std::fs::File::create(&log_path).unwrap();
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true);
    let status = tokio::time::timeout(CLIENT_TIMEOUT, command.status()).await;
    let output = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let outcome = match status {
        Ok(Ok(status)) if status.success() => return output(),
        Ok(Ok(status)) => format!("failed ({status})"),
        Ok(Err(e)) => panic!("{what} could not be started: {e}"),
        Err(_) => format!("did not finish within {CLIENT_TIMEOUT:?}"),
    };
    panic!(
        "{what} {outcome}\n--- {what} output ---\n{}\n--- certgate log ---\n{}",
        output(),
        logs()
    );
}

/// certbot with its config, work and log directories under `dir`, talking
/// to the ACME `directory` URL over TLS trusted through `ca_bundle`, with no
/// questions asked (`-n --agree-tos`). The subcommand and its flags follow.
pub fn certbot_command(dir: &Path, ca_bundle: &Path, directory: &str) -> Command {
    let mut command = Command::new("certbot");
    command
        .env("REQUESTS_CA_BUNDLE", ca_bundle)
        .arg("--config-dir")
        .arg(dir.join("c"))
        .arg("--work-dir")
        .arg(dir.join("w"))
        .arg("--logs-dir")
        .arg(dir.join("l"))
        .arg("--server")
        .arg(directory)
        .args(["-n", "--agree-tos"]);
    command
}

/// Checks a certificate a client saved and returns its serial (hex, as
/// x509-parser prints it).
///
/// `leaf_file` holds the leaf first: alone (certbot's `cert.pem`) or as a
/// bundle followed by the chain (lego's `<name>.crt`). `openssl verify`, an
/// independent judge, must accept the leaf alone up to `root_pem` through
/// the intermediates in `chain_file`. The leaf's SANs, read with
/// x509-parser, must be exactly `names` (in any order), so a certificate
/// whose text merely contains the names does not pass.
pub async fn check_certificate(
    what: &str,
    root_pem: &Path,
    leaf_file: &Path,
    chain_file: &Path,
    names: &[&str],
) -> String {
    let text = std::fs::read(leaf_file)
        .unwrap_or_else(|e| panic!("{what}: reading {}: {e}", leaf_file.display()));
    let blocks = ::pem::parse_many(&text).expect("well-formed PEM");
    let leaf_pem = blocks
        .first()
        .unwrap_or_else(|| panic!("{what}: no PEM in {}", leaf_file.display()));

    // A bundle starts with the leaf; verify the leaf alone.
    let scratch = tempfile::tempdir().unwrap();
    let leaf_only = scratch.path().join("leaf.pem");
    std::fs::write(&leaf_only, ::pem::encode(leaf_pem)).unwrap();
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(root_pem)
        .arg("-untrusted")
        .arg(chain_file)
        .arg(&leaf_only)
        .output()
        .await
        .expect("running openssl verify");
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success() && stdout.trim_end().ends_with(": OK"),
        "{what}: openssl verify rejected {} with chain {}:\n{stdout}{}",
        leaf_file.display(),
        chain_file.display(),
        String::from_utf8_lossy(&verify.stderr)
    );

    let (_, leaf) =
        x509_parser::parse_x509_certificate(leaf_pem.contents()).expect("the leaf parses as X.509");
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.sort();
    assert_eq!(sans(&leaf), expected, "{what}: SANs of the leaf");
    leaf.raw_serial_as_string()
}

/// The SANs of the first certificate in a PEM file (a leaf, or a bundle
/// that starts with one), sorted; see [`sans`].
pub fn leaf_sans(path: &Path) -> Vec<String> {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let blocks = ::pem::parse_many(&text).expect("well-formed PEM");
    let first = blocks
        .first()
        .unwrap_or_else(|| panic!("no PEM in {}", path.display()));
    let (_, leaf) =
        x509_parser::parse_x509_certificate(first.contents()).expect("the leaf parses as X.509");
    sans(&leaf)
}

/// The subjectAltNames of a certificate, sorted, repeats kept so that a
/// comparison catches them. DNS names are their text; any other kind is its
/// debug form, so that it shows up in a comparison with DNS names instead of
/// going unnoticed. Panics when there is no SAN extension, or more than one.
pub fn sans(certificate: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = certificate
        .subject_alternative_name()
        .expect("at most one SAN extension")
        .expect("a SAN extension")
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => dns.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    names.sort();
    names
}

/// The single entry of a directory in a client's state, such as the one
/// account directory certbot and lego keep per server: more than one means
/// the client made a second account.
pub fn only_entry(dir: &Path) -> PathBuf {
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "expected one entry in {entries:?}");
    entries.into_iter().next().unwrap()
}

/// A JSON file a client saved (lego's `account.json`, certbot's
/// `regr.json`), panicking with the path when it is missing or malformed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}
