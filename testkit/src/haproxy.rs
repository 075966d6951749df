//! HAProxy in front of several certgate replicas, as an operator runs it:
//! it ends TLS with a certificate from certgate's own CA, sends each request
//! to the next replica in turn over TLS it verifies against the root, takes
//! a replica out when its `/ready` fails, and sends a request whose replica
//! died before answering to another one.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::clients::require_tool;
use crate::process::free_port;

/// How long HAProxy may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `haproxy`, killed when dropped.
pub struct LoadBalancer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl LoadBalancer {
    /// A port for the balancer, so that the replicas can be told the URL
    /// clients reach them at ([`LoadBalancer::url_at`]) before it starts.
    pub fn port() -> u16 {
        free_port()
    }

    /// `https://localhost:<port>`: where clients reach the service.
    pub fn url_at(port: u16) -> String {
        format!("https://localhost:{port}")
    }

    /// Balances `replicas` round-robin per request on `port`, once every
    /// replica passes its health check. `ca_dir` is certgate's CA folder:
    /// the front certificate (for `localhost` and `127.0.0.1`) is signed
    /// with its intermediate, so clients trust the balancer with the root
    /// they already use.
    pub async fn start(port: u16, replicas: &[SocketAddr], ca_dir: &Path) -> Self {
        require_tool("haproxy", "haproxy");
        let dir = tempfile::tempdir().unwrap();
        let front = dir.path().join("front.pem");
        std::fs::write(&front, front_certificate(ca_dir)).unwrap();
        let config = dir.path().join("haproxy.cfg");
        let stats = dir.path().join("stats.sock");
        std::fs::write(
            &config,
            configuration(port, &front, &stats, replicas, ca_dir),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("starting haproxy");
        let balancer = Self { child, port, dir };
        balancer.wait_until_all_up(replicas.len()).await;
        balancer
    }

    /// Waits until HAProxy's statistics say every one of the `replicas`
    /// is `UP`: it starts them `DOWN` until their checks pass.
    async fn wait_until_all_up(&self, replicas: usize) {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let up = self.replicas_up().await;
            if up == replicas {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{up} of {replicas} replicas up after {START_TIMEOUT:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many replicas HAProxy sends requests to now (0 while its
    /// statistics socket is not there yet).
    pub async fn replicas_up(&self) -> usize {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut socket) =
            tokio::net::UnixStream::connect(self.dir.path().join("stats.sock")).await
        else {
            return 0;
        };
        socket.write_all(b"show stat\n").await.unwrap();
        let mut csv = String::new();
        socket.read_to_string(&mut csv).await.unwrap();
        // `# pxname,svname,...,status,...`: status is the 18th field.
        csv.lines()
            .filter(|line| line.starts_with("replicas,replica"))
            .filter(|line| line.split(',').nth(17) == Some("UP"))
            .count()
    }

    /// Where clients reach the service: `https://localhost:<port>`.
    pub fn url(&self) -> String {
        Self::url_at(self.port)
    }

    /// What HAProxy printed: its warnings and each replica going down or up.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The balancer's certificate, chain and key in one PEM file, as HAProxy's
/// `crt` takes them.
fn front_certificate(ca_dir: &Path) -> String {
    let read = |name: &str| std::fs::read_to_string(ca_dir.join(name)).unwrap();
    let intermediate_pem = read("intermediate.pem");
    let intermediate_key = rcgen::KeyPair::from_pem(&read("intermediate.key")).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&intermediate_pem, intermediate_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let certificate = params.signed_by(&key, &issuer).unwrap();
    format!(
        "{}{}{}",
        certificate.pem(),
        intermediate_pem,
        key.serialize_pem()
    )
}

fn configuration(
    port: u16,
    front: &Path,
    stats: &Path,
    replicas: &[SocketAddr],
    ca_dir: &Path,
) -> String {
    let root = ca_dir.join("root.pem");
    let servers: String = replicas
        .iter()
        .enumerate()
        .map(|(n, addr)| {
            format!(
                "    server replica{n} {addr} ssl verify required ca-file {root} sni str(localhost) \
                 check inter 300ms fall 2 rise 2\n",
                root = root.display()
            )
        })
        .collect();
    format!(
        "global
    maxconn 4096
    stats socket {stats}

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A request whose replica closed or refused the connection goes to
    # another replica; ACME's single-use nonces make a resent request safe.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout

frontend acme
    bind 127.0.0.1:{port} ssl crt {front}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /ready
    http-check expect status 200
{servers}",
        front = front.display(),
        stats = stats.display()
    )
}
