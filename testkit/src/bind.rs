//! A real BIND 9, authoritative for the test's zones and open to RFC 2136
//! updates signed with a TSIG key. The UDP stub in `dns.rs` answers whatever
//! a test tells it to; this one answers the way name servers in the field
//! do (referrals, CNAMEs without their targets, NODATA versus NXDOMAIN), and
//! it is what the DNS plugins of real ACME clients know how to update.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hickory_resolver::proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::proto::serialize::binary::{BinDecodable, BinEncodable};
use rand::RngCore;
use tokio::net::{TcpStream, UdpSocket};
use tokio::process::{Child, Command};

/// A cold start of named (zone loading included) takes well under a second;
/// this only bounds a named that will never answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Port clashes with other tests are rare; a few fresh ports end them.
const START_ATTEMPTS: usize = 5;
/// Passed to nsupdate, so an unanswered update fails instead of hanging.
const UPDATE_TIMEOUT_SECS: &str = "10";
const TSIG_ALGORITHM: &str = "hmac-sha256";
const TSIG_NAME: &str = "certgate-test-key";

/// A running named. Dropping it kills named before its directory goes.
pub struct BindServer {
    // Declared first so it is dropped (and named killed) before `_dir`.
    child: Child,
    addr: SocketAddr,
    zones: Vec<String>,
    secret: String,
    log_path: PathBuf,
    /// named's configuration, zones and log; removed when the server goes.
    _dir: tempfile::TempDir,
}

impl BindServer {
    /// Starts named for `zones` (e.g. `["lab.test"]`) and returns once it
    /// answers authoritatively for every one of them, over UDP and TCP
    /// (clients' plugins use both).
    pub async fn start(zones: &[&str]) -> Self {
        let named = find_program("named");
        find_program("nsupdate");
        let zones: Vec<String> = zones
            .iter()
            .map(|z| z.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        assert!(!zones.is_empty(), "BindServer needs at least one zone");
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        let secret = STANDARD.encode(secret);

        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let dir = tempfile::tempdir().unwrap();
            let port = free_udp_and_tcp_port();
            write_config(dir.path(), port, &zones, &secret);
            let log_path = dir.path().join("named.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let child = Command::new(&named)
                .arg("-g")
                .arg("-c")
                .arg(dir.path().join("named.conf"))
                .arg("-p")
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", named.display()));
            let mut server = Self {
                child,
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                zones: zones.clone(),
                secret: secret.clone(),
                log_path,
                _dir: dir,
            };
            match server.wait_until_answering().await {
                Ok(()) => return server,
                Err(why) => failures.push(format!("{why}\n--- named log ---\n{}", server.log())),
            }
        }
        panic!(
            "named did not start in {START_ATTEMPTS} attempts:\n{}",
            failures.join("\n\n")
        );
    }

    /// Where named listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn tsig_name(&self) -> &str {
        TSIG_NAME
    }

    /// Base64, as BIND, nsupdate, lego and certbot all take it.
    pub fn tsig_secret(&self) -> &str {
        &self.secret
    }

    pub fn tsig_algorithm(&self) -> &str {
        TSIG_ALGORITHM
    }

    /// Everything named logged so far, for a failing test to show.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Adds a record through a signed dynamic update, the way a client's DNS
    /// plugin would; `data` is in zone-file syntax (`"0 issue \"ca.test\""`
    /// for CAA, `"\"value\""` for TXT). Blocking, so that it can be called
    /// from any test, async or not; nsupdate takes milliseconds.
    pub fn add(&self, name: &str, ttl: u32, rtype: &str, data: &str) {
        self.update(name, &format!("update add {name} {ttl} IN {rtype} {data}"));
    }

    /// Deletes every record of type `rtype` at `name`.
    pub fn delete(&self, name: &str, rtype: &str) {
        self.update(name, &format!("update delete {name} IN {rtype}"));
    }

    /// Sends one update. The zone is named explicitly: otherwise nsupdate
    /// would look for it through the machine's resolver, which knows nothing
    /// of the test zones.
    fn update(&self, name: &str, line: &str) {
        let zone = self.zone_of(name);
        let script = format!(
            "server {} {}\nzone {zone}.\n{line}\nsend\n",
            self.addr.ip(),
            self.addr.port()
        );
        let key = format!("{TSIG_ALGORITHM}:{TSIG_NAME}:{}", self.secret);
        let mut child = std::process::Command::new(find_program("nsupdate"))
            .args(["-t", UPDATE_TIMEOUT_SECS, "-y", &key])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nsupdate");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(script.as_bytes()).unwrap();
        }
        let output = child.wait_with_output().expect("running nsupdate");
        assert!(
            output.status.success(),
            "nsupdate failed ({}) for:\n{script}--- nsupdate output ---\n{}{}\n--- named log ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    /// The most specific of our zones that contains `name`.
    fn zone_of(&self, name: &str) -> &str {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.zones
            .iter()
            .filter(|zone| name == **zone || name.ends_with(&format!(".{zone}")))
            .max_by_key(|zone| zone.len())
            .unwrap_or_else(|| panic!("{name} is in none of the zones {:?}", self.zones))
    }

    /// Polls until every zone's SOA comes back authoritatively over UDP and
    /// TCP accepts connections; gives up early if named exits.
    async fn wait_until_answering(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut pending = self.zones.clone();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("named exited ({status})"));
            }
            // named keeps running when it cannot bind its port, answering nothing.
            if self.log().contains("address in use") {
                return Err(format!("port {} was taken", self.addr.port()));
            }
            let mut still_pending = Vec::new();
            for zone in pending {
                if !soa_answered(&socket, self.addr, &zone).await {
                    still_pending.push(zone);
                }
            }
            pending = still_pending;
            if pending.is_empty() && TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "named did not answer for {pending:?} (or over TCP) within {START_TIMEOUT:?}"
                ));
            }
            // named is still loading; the UDP wait above already paced the
            // loop when nothing answered, so this only spaces out refusals.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether named answers an SOA query for `zone` as its authority.
async fn soa_answered(socket: &UdpSocket, server: SocketAddr, zone: &str) -> bool {
    let mut query = Message::new();
    let id: u16 = rand::random();
    query
        .set_id(id)
        .set_message_type(MessageType::Query)
        .add_query(Query::query(
            Name::from_ascii(format!("{zone}.")).unwrap(),
            RecordType::SOA,
        ));
    if socket
        .send_to(&query.to_bytes().unwrap(), server)
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = vec![0u8; 4096];
    let Ok(Ok((len, _))) =
        tokio::time::timeout(Duration::from_millis(200), socket.recv_from(&mut buf)).await
    else {
        return false;
    };
    let Ok(reply) = Message::from_bytes(&buf[..len]) else {
        return false;
    };
    reply.id() == id
        && reply.response_code() == ResponseCode::NoError
        && reply.authoritative()
        && reply
            .answers()
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
}

/// A port free for both UDP and TCP on loopback a moment ago; named needs
/// the same number for both.
fn free_udp_and_tcp_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("binding a UDP port");
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// named and nsupdate live in /usr/sbin and /usr/bin on Debian; the former
/// is not on every user's PATH. Fails (never skips) when missing.
fn find_program(program: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            let package = if program == "named" {
                "bind9"
            } else {
                "bind9-dnsutils"
            };
            panic!("`{program}` is not installed; this test needs it: apt-get install -y {package}")
        })
}

/// named.conf and one zone file per zone, all inside `dir` so that parallel
/// servers share nothing (named would otherwise write to /var/cache/bind and
/// /run/named).
fn write_config(dir: &Path, port: u16, zones: &[String], secret: &str) {
    let d = dir.display();
    let mut conf = format!(
        r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    // The NS records point at 127.0.0.1:53, which is not us.
    notify no;
}};
// No rndc channel: parallel servers would fight over port 953.
controls {{ }};
key "{TSIG_NAME}" {{
    algorithm {TSIG_ALGORITHM};
    secret "{secret}";
}};
"#
    );
    for zone in zones {
        let file = dir.join(format!("{zone}.zone"));
        // A for the apex and every name below it, so HTTP-01 reaches the
        // test's responder on loopback too.
        std::fs::write(
            &file,
            format!(
                "$TTL 60\n\
                 @ IN SOA ns.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n\
                 @ IN NS ns.{zone}.\n\
                 ns IN A 127.0.0.1\n\
                 @ IN A 127.0.0.1\n\
                 * IN A 127.0.0.1\n"
            ),
        )
        .unwrap();
        conf.push_str(&format!(
            "zone \"{zone}\" {{\n    type primary;\n    file \"{}\";\n    allow-update {{ key \"{TSIG_NAME}\"; }};\n}};\n",
            file.display()
        ));
    }
    std::fs::write(dir.join("named.conf"), conf).unwrap();
}
