//! One client holding connections open, as an attacker would: TLS
//! connections left idle after the handshake or after half a header, under
//! the common open-file limit of 1,024. certgate must keep serving other
//! clients, and close what is held within its timeouts.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use certgate_testkit::process::{CertgateProcess, ServeArgs};

/// What the tests set `--header-read-timeout` and `--idle-timeout` to:
/// short, so that waiting for them is quick, long enough that all the
/// attacking connections are open before the first one is due.
const TIMEOUT: Duration = Duration::from_secs(4);
/// How late after its deadline a held connection may be closed.
const CLOSE_SLACK: Duration = Duration::from_millis(1500);
/// Connections one client address may hold (the default).
const PER_CLIENT: usize = 256;

/// A TLS client trusting only the root of certgate's data directory.
fn connector(data_dir: &std::path::Path) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(data_dir.join("ca/root.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// A TLS connection to `server` from the loopback address `from`.
async fn connect(
    tls: &TlsConnector,
    from: IpAddr,
    server: SocketAddr,
) -> std::io::Result<TlsStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(server).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(10), tls.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake took over 10 s"))?
}

/// `GET path` over a fresh connection from `from`: the status line and how
/// long the whole exchange took.
async fn fetch(
    tls: &TlsConnector,
    from: IpAddr,
    server: SocketAddr,
    path: &str,
) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = connect(tls, from, server).await.expect("connecting");
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default().to_owned();
    (status, started.elapsed())
}

/// Waits until the server closes `stream` (EOF or a reset, whichever the
/// TLS layer reports) and says how long after `since` that was; `None` when
/// the server sent bytes instead or kept it open for a minute.
async fn closed_after(mut stream: TlsStream<TcpStream>, since: Instant) -> Option<Duration> {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(60), stream.read(&mut byte)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Some(since.elapsed()),
        Ok(Ok(_)) | Err(_) => None,
    }
}

fn serve_args() -> (tempfile::TempDir, ServeArgs) {
    let data_dir = tempfile::tempdir().unwrap();
    // Nothing here resolves names: any resolver address does.
    let args = ServeArgs::new(data_dir.path(), "127.0.0.1:53".parse().unwrap(), None);
    (data_dir, args)
}

/// The attack: 1,000 connections from one address, half idle after
/// the handshake, half after half a request head, with a hard limit of
/// 1,024 open files that certgate cannot raise.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_held_connections_do_not_shut_out_other_clients() {
    let (data_dir, args) = serve_args();
    let timeout = format!("{}s", TIMEOUT.as_secs());
    let certgate = CertgateProcess::start_with_file_limit(
        &args,
        &[
            "--header-read-timeout",
            &timeout,
            "--idle-timeout",
            &timeout,
        ],
        (1024, 1024),
    )
    .await;
    let log = certgate.log();
    assert!(
        log.contains("the open-file limit is below what the settings need")
            && log.contains("soft_limit=1024")
            && log.contains("needed="),
        "no warning naming the limit and the need:\n{log}"
    );
    let tls = connector(data_dir.path());
    let attacker: IpAddr = "127.0.0.1".parse().unwrap();
    let server = args.listen;

    let mut attempts = tokio::task::JoinSet::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    for n in 0..1000 {
        let (tls, gate) = (tls.clone(), gate.clone());
        attempts.spawn(async move {
            let _turn = gate.acquire().await.unwrap();
            let mut stream = connect(&tls, attacker, server).await.ok()?;
            let opened = Instant::now();
            if n % 2 == 1 {
                stream
                    .write_all(b"GET /acme/directory HTTP/1.1\r\nHost: loc")
                    .await
                    .ok()?;
                stream.flush().await.ok()?;
            }
            Some((stream, opened))
        });
    }
    let mut held = Vec::new();
    let mut refused = 0;
    while let Some(attempt) = attempts.join_next().await {
        match attempt.unwrap() {
            Some(connection) => held.push(connection),
            None => refused += 1,
        }
    }
    assert_eq!(held.len(), PER_CLIENT, "connections one address may hold");
    assert_eq!(refused, 1000 - PER_CLIENT, "connections refused at accept");

    // Another client is served at once, while all of that is held.
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let (status, took) = fetch(&tls, other, server, "/acme/directory").await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(took < Duration::from_secs(2), "served after {took:?}");

    // And the held connections are closed by their deadline.
    let closures = close_times(held).await;
    let shortest = closures.iter().min().unwrap();
    let longest = closures.iter().max().unwrap();
    assert!(
        *shortest >= TIMEOUT - Duration::from_millis(250),
        "closed before the deadline: {shortest:?}"
    );
    assert!(
        *longest <= TIMEOUT + CLOSE_SLACK,
        "still open {longest:?} after it was opened"
    );
    eprintln!(
        "held {} refused {refused}; other client served in {took:?}; held closed after {shortest:?}..{longest:?}",
        PER_CLIENT
    );
}

/// Waits for the server to close every held connection; the time each
/// stayed open after its handshake (or half a head).
async fn close_times(held: Vec<(TlsStream<TcpStream>, Instant)>) -> Vec<Duration> {
    let mut waits = tokio::task::JoinSet::new();
    for (stream, opened) in held {
        waits.spawn(closed_after(stream, opened));
    }
    let mut closures = Vec::new();
    while let Some(closed) = waits.join_next().await {
        closures.push(closed.unwrap().expect("the server closed the connection"));
    }
    closures
}

/// The listener's own cap, from many addresses: excess connections are
/// closed as they are accepted rather than queued, a connection kept alive
/// after one request is closed after the idle timeout, and a soft file
/// limit below the hard one is raised at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_cap_refuses_at_accept_and_idle_connections_close() {
    let (data_dir, args) = serve_args();
    let timeout = format!("{}s", TIMEOUT.as_secs());
    let certgate = CertgateProcess::start_with_file_limit(
        &args,
        &["--max-connections", "20", "--idle-timeout", &timeout],
        (512, 4096),
    )
    .await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", certgate.pid())).unwrap();
    let open_files = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open_files.split_whitespace().collect::<Vec<_>>()[3..5],
        ["4096", "4096"],
        "{open_files}"
    );
    assert!(certgate.log().contains("raised the open-file limit"));

    let tls = connector(data_dir.path());
    let server = args.listen;
    // One connection that has been answered once and is kept alive.
    let mut kept = connect(&tls, "127.0.0.3".parse().unwrap(), server)
        .await
        .unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let read = kept.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();

    let mut held = Vec::new();
    let mut refused = Vec::new();
    for n in 0..30u8 {
        let from = IpAddr::from([127, 0, 1, n]);
        let started = Instant::now();
        match connect(&tls, from, server).await {
            Ok(stream) => held.push(stream),
            Err(_) => refused.push(started.elapsed()),
        }
    }
    assert_eq!(
        held.len(),
        19,
        "the kept-alive connection holds the 20th slot"
    );
    assert_eq!(refused.len(), 11);
    let slowest_refusal = refused.iter().max().unwrap();
    assert!(
        *slowest_refusal < Duration::from_millis(500),
        "a refusal took {slowest_refusal:?}: queued, not refused"
    );

    let kept_for = closed_after(kept, answered)
        .await
        .expect("the idle kept-alive connection was closed");
    assert!(
        kept_for >= TIMEOUT - Duration::from_millis(250) && kept_for <= TIMEOUT + CLOSE_SLACK,
        "kept-alive connection closed after {kept_for:?}; refusals took {refused:?}"
    );
    eprintln!("refusals within {slowest_refusal:?}; kept-alive closed after {kept_for:?}");
}
