//! What the inventory tests (`certs`/`accounts` commands, admin API) share:
//! two profiles whose certificates expire far apart, and serials read from
//! certificates independently of certgate.

use std::collections::BTreeSet;

use serde_json::Value;
use x509_parser::prelude::*;

/// `long` (the default, 90 days) and `short` (24 hours), both on the
/// embedded CA, so a 30-day window holds exactly the short-lived ones.
pub const TWO_LIFETIMES: &str = "default_profile = \"long\"\n\
    [profiles.long]\nissuer = \"local\"\nttl = \"90d\"\n\
    [profiles.short]\nissuer = \"local\"\nttl = \"24h\"\n";

/// The leaf's serial in lower-case hex, without DER's leading zero byte:
/// the form `openssl x509 -serial` prints, read here with x509-parser.
pub fn leaf_serial(chain_pem: &str) -> String {
    let leaf = super::chain_ders(chain_pem).remove(0);
    let (_, certificate) = X509Certificate::from_der(&leaf).unwrap();
    let raw = certificate.raw_serial();
    let raw = match raw {
        [0, rest @ ..] if !rest.is_empty() => rest,
        _ => raw,
    };
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// The serial `openssl x509 -inform DER` reads from `der`, in lower case;
/// panics with openssl's output when it cannot read the certificate.
pub fn openssl_der_serial(der: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leaf.der");
    std::fs::write(&path, der).unwrap();
    let output = std::process::Command::new("openssl")
        .args([
            "x509", "-inform", "DER", "-noout", "-serial", "-subject", "-in",
        ])
        .arg(&path)
        .output()
        .expect("running openssl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "openssl cannot read the DER: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("subject="), "{stdout}");
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("serial="))
        .unwrap_or_else(|| panic!("no serial in openssl's output: {stdout}"))
        .to_ascii_lowercase()
}

/// The `serial` fields of a JSON array of certificates.
pub fn serials(certificates: &Value) -> BTreeSet<String> {
    certificates
        .as_array()
        .unwrap_or_else(|| panic!("not a JSON array: {certificates}"))
        .iter()
        .map(|c| c["serial"].as_str().unwrap().to_owned())
        .collect()
}

/// The events called `event` (`account_deactivated`, `certificate_issued`…)
/// in the audit log at `<data-dir>/audit.log`, which the server and the
/// commands both append to.
pub fn audited(data_dir: &std::path::Path, event: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir.join("audit.log")).unwrap_or_default();
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("an audit line is JSON"))
        .filter(|line| line["event"] == event)
        .collect()
}

/// The serials `certgate certs list --all --json` prints for `data_dir`:
/// every certificate an operator can see, the ones a renewal superseded
/// included, read by the built binary beside (or after) the server.
pub async fn listed_serials(data_dir: &std::path::Path) -> BTreeSet<String> {
    listed_serials_with(data_dir, &[]).await
}

/// [`listed_serials`] with more flags (`--database-url …`).
pub async fn listed_serials_with(data_dir: &std::path::Path, flags: &[&str]) -> BTreeSet<String> {
    let flags: Vec<&str> = ["--all"].iter().chain(flags).copied().collect();
    serials(&Value::Array(certs_listed(data_dir, &flags).await))
}

/// What `certgate certs list --json --data-dir DIR [flags]` prints, read
/// by the built binary beside (or after) the server.
pub async fn certs_listed(data_dir: &std::path::Path, flags: &[&str]) -> Vec<Value> {
    let output = crate::process::certgate_command()
        .args(["certs", "list", "--json", "--data-dir"])
        .arg(data_dir)
        .args(flags)
        .output()
        .await
        .expect("running certgate certs list");
    assert!(
        output.status.success(),
        "certs list: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    match serde_json::from_slice(&output.stdout).expect("certs list --json prints JSON") {
        Value::Array(certificates) => certificates,
        other => panic!("certs list --json printed {other}, not an array"),
    }
}
