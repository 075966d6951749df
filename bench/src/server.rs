//! Servers the `run` mode starts by itself: certgate (the release binary,
//! on a fresh data dir) and, for a side-by-side figure, Pebble. Each logs
//! to a file in its directory, and is killed when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// Longest a server may take to answer after it is started.
const START_LIMIT: Duration = Duration::from_secs(60);

/// A free loopback port, for a flag that needs one.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Where a server reaches the bench's responders: the port it fetches
/// HTTP-01 answers from, and the DNS server it asks.
pub struct Via {
    pub http01_port: u16,
    pub resolver: SocketAddr,
}

/// A server process and where to reach it.
pub struct Server {
    child: Child,
    pub directory_url: String,
    pub root_pem: Vec<u8>,
    /// Where its log goes.
    pub log: PathBuf,
    /// The base URL of its operator routes (certgate's `/metrics`).
    pub base_url: String,
}

impl Server {
    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .ok_or_else(|| anyhow::anyhow!("the server has exited; see {}", self.log.display()))
    }

    /// Stops the server with SIGTERM and waits for it.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid()?;
        // SAFETY: kill only sends a signal to the process we started.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        Ok(())
    }
}

/// A command without the caller's settings for the server, so the figures
/// are those of the defaults plus what is passed here.
fn command(binary: &Path, log: &Path) -> anyhow::Result<Command> {
    let mut command = Command::new(binary);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("CERTGATE_") || name_text == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    let file = std::fs::File::create(log)?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .kill_on_drop(true);
    Ok(command)
}

/// Waits until `url` answers, trusting `root_pem`, or the process exits.
async fn answering(
    child: &mut Child,
    url: &str,
    root_pem: &[u8],
    log: &Path,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem)?)
        .build()?;
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the server exited ({status}); see {}", log.display());
        }
        if http
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{url} did not answer within {START_LIMIT:?}; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the file `path` once it exists (certgate writes its root at start).
async fn read_when_written(path: &Path, child: &mut Child, log: &Path) -> anyhow::Result<Vec<u8>> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Ok(bytes) = std::fs::read(path) {
            if !bytes.is_empty() {
                return Ok(bytes);
            }
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the server exited ({status}); see {}", log.display());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} was not written within {START_LIMIT:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `certgate serve` on `data_dir` with its defaults, except: rate limits
/// off (a load test is what they are there to stop), a connection cap per
/// address that 256 clients on one machine fit under, and `config` when
/// given.
pub async fn certgate(
    binary: &Path,
    data_dir: &Path,
    via: &Via,
    config: Option<&Path>,
) -> anyhow::Result<Server> {
    let listen = format!("127.0.0.1:{}", free_port()?);
    let log = data_dir.join("serve.log");
    std::fs::create_dir_all(data_dir)?;
    let mut child = command(binary, &log)?
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", &listen])
        .args(["--http01-port", &via.http01_port.to_string()])
        .args(["--resolver", &via.resolver.to_string()])
        .args(["--rate-limit-orders-per-account", "off"])
        .args(["--rate-limit-orders-per-domain", "off"])
        .args(["--rate-limit-new-accounts-per-ip", "off"])
        .args(["--max-connections-per-ip", "1000"])
        .args(
            config
                .iter()
                .flat_map(|c| [std::ffi::OsStr::new("--config"), c.as_os_str()]),
        )
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", binary.display()))?;
    let root_pem = read_when_written(&data_dir.join("ca/root.pem"), &mut child, &log).await?;
    let base_url = format!("https://{listen}");
    answering(&mut child, &format!("{base_url}/health"), &root_pem, &log).await?;
    Ok(Server {
        child,
        directory_url: format!("{base_url}/acme/directory"),
        root_pem,
        log,
        base_url,
    })
}

/// Pebble (Debian's `pebble`) in `dir`, with a TLS certificate made here,
/// its validation sleeps and its random nonce refusals off, so it does only
/// the work a client asked for.
pub async fn pebble(binary: &Path, dir: &Path, via: &Via) -> anyhow::Result<Server> {
    let listen = format!("127.0.0.1:{}", free_port()?);
    let tls = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])?;
    let (cert, key) = (dir.join("pebble.pem"), dir.join("pebble.key"));
    std::fs::write(&cert, tls.cert.pem())?;
    std::fs::write(&key, tls.signing_key.serialize_pem())?;
    let config = serde_json::json!({"pebble": {
        "listenAddress": listen,
        "managementListenAddress": format!("127.0.0.1:{}", free_port()?),
        "certificate": cert,
        "privateKey": key,
        "httpPort": via.http01_port,
        "tlsPort": free_port()?,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    let config_path = dir.join("pebble-config.json");
    std::fs::write(&config_path, config.to_string())?;
    let log = dir.join("pebble.log");
    let mut child = command(binary, &log)?
        .arg("-config")
        .arg(&config_path)
        .args(["-dnsserver", &via.resolver.to_string()])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", binary.display()))?;
    let root_pem = tls.cert.pem().into_bytes();
    let base_url = format!("https://{listen}");
    let directory_url = format!("{base_url}/dir");
    answering(&mut child, &directory_url, &root_pem, &log).await?;
    Ok(Server {
        child,
        directory_url,
        root_pem,
        log,
        base_url,
    })
}
