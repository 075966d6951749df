//! External account keys as an operator hands them out (`certgate eab`,
//! the built binary run as a command) and the bindings a client signs with
//! them (RFC 8555 §7.3.4).

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::process::certgate_command;
use super::raw_client::{b64, RawClient};

/// What a command printed.
#[derive(Debug)]
pub struct Printed {
    pub stdout: String,
    pub stderr: String,
}

/// `certgate eab <args>` on `data_dir` and `config`, with `env` set for
/// it (`RUST_LOG`, say); panics with both streams if it fails.
pub async fn certgate_eab_printed(
    data_dir: &Path,
    config: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Printed {
    let output = certgate_command()
        .envs(env.iter().copied())
        .arg("eab")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("running certgate eab");
    let printed = Printed {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        output.status.success(),
        "certgate eab {args:?} failed ({})\n{}{}",
        output.status,
        printed.stdout,
        printed.stderr
    );
    printed
}

/// `certgate eab <args>`'s stdout; see [`certgate_eab_printed`].
pub async fn certgate_eab(data_dir: &Path, config: &Path, args: &[&str]) -> String {
    certgate_eab_printed(data_dir, config, args, &[])
        .await
        .stdout
}

/// A key as `eab create` printed it.
#[derive(Debug, Clone)]
pub struct EabKey {
    pub kid: String,
    pub hmac: String,
}

impl EabKey {
    /// The key in `eab create`'s stdout, which also gives the flags for
    /// lego and certbot.
    pub fn printed_by_create(out: &str) -> Self {
        let field = |label: &str| {
            out.lines()
                .find_map(|line| line.strip_prefix(label))
                .map(|v| v.trim().to_owned())
                .unwrap_or_else(|| panic!("no {label} line in:\n{out}"))
        };
        let key = Self {
            kid: field("kid:"),
            hmac: field("hmac_key:"),
        };
        assert!(
            out.contains(&format!("--eab --kid={} --hmac={}", key.kid, key.hmac))
                && out.contains(&format!(
                    "--eab-kid={} --eab-hmac-key={}",
                    key.kid, key.hmac
                )),
            "the lego and certbot flags are printed:\n{out}"
        );
        key
    }

    /// The HMAC key's raw bytes.
    pub fn hmac_bytes(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(&self.hmac).unwrap()
    }
}

/// A key of profile `default` made with `eab create <extra>`.
pub async fn create_key(data_dir: &Path, config: &Path, extra: &[&str]) -> EabKey {
    let mut args = vec!["create", "--profile", "default"];
    args.extend_from_slice(extra);
    EabKey::printed_by_create(&certgate_eab(data_dir, config, &args).await)
}

/// A signed binding of `client`'s key for `url` under `kid` with `hmac`.
pub fn binding(client: &RawClient, kid: &str, hmac: &str, url: &str) -> Value {
    let protected =
        b64(&serde_json::to_vec(&json!({"alg": "HS256", "kid": kid, "url": url})).unwrap());
    let payload = b64(&serde_json::to_vec(&client.key.jwk).unwrap());
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        &URL_SAFE_NO_PAD.decode(hmac).unwrap(),
    );
    let mac = ring::hmac::sign(&key, format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64(mac.as_ref())})
}

/// newAccount with `binding` (none when `None`).
pub async fn new_account(client: &RawClient, binding: Option<Value>) -> super::raw_client::Reply {
    let mut payload = json!({"termsOfServiceAgreed": true});
    if let Some(binding) = binding {
        payload["externalAccountBinding"] = binding;
    }
    client.post(&client.url("newAccount"), Some(payload)).await
}

/// Registers `client` with `key`, which must succeed.
pub async fn register(client: &mut RawClient, key: &EabKey) {
    let url = client.url("newAccount");
    let reply = new_account(client, Some(binding(client, &key.kid, &key.hmac, &url))).await;
    assert_eq!(reply.status, 201, "newAccount: {:?}", reply.json());
    client.kid = Some(reply.header("location").unwrap().to_owned());
}
