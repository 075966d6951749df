//! Three certgate replicas on one PostgreSQL database behind HAProxy, which
//! sends each request to the next replica in turn: certbot and lego issue
//! and renew through it; 32 clients issue for 30 s with no failure while
//! one replica is killed with SIGKILL in the middle, the work it held is
//! finished by the others within the lease, every certificate a client
//! saved is listed, and Vault signed each order at most once (an order
//! whose Vault answer died with the replica is failed rather than signed
//! again, and its client orders anew, as the problem asks). The same
//! load then runs against one replica on SQLite, for the comparison.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sqlx::{Connection, PgConnection};

use crate::common::{fresh_client, try_issue};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::haproxy::LoadBalancer;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::inventory::{leaf_serial, listed_serials_with};
use certgate_testkit::postgres::TemporaryDatabase;
use certgate_testkit::process::{certgate_command, free_port, CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::RawClient;
use certgate_testkit::real_clients::{check_both, Certbot, Lego};
use certgate_testkit::vault::{StandinConfig, VaultStandin, SECRET_ID};

const REPLICAS: usize = 3;
/// Clients issuing at once, each one certificate after another.
const FLOWS: usize = 32;
/// How long the load runs.
const LOAD: Duration = Duration::from_secs(30);
/// When, into the load, one replica is killed.
const KILL_AT: Duration = Duration::from_secs(10);
/// How long the comparison runs on one replica on SQLite.
const COMPARISON: Duration = Duration::from_secs(10);
/// `--work-lease`: how long a dead replica's validations and issuances
/// wait before another replica takes them over.
const LEASE: Duration = Duration::from_secs(3);
/// What the problem of an order failed for a lost CA answer says.
const ANSWER_LOST: &str = "lost the CA's answer";

/// What every replica shares: the Vault stand-in, DNS, the HTTP-01 port,
/// the config, the CA folder and the EAB key file. Each replica has its
/// own data dir.
struct Service {
    standin: VaultStandin,
    dns: DnsStub,
    /// Where the replicas fetch HTTP-01: certbot's and lego's own
    /// responders first, then the load's.
    http01_port: u16,
    shared: tempfile::TempDir,
}

impl Service {
    async fn start() -> Self {
        let standin = VaultStandin::start(StandinConfig::lab()).await;
        let shared = tempfile::tempdir().unwrap();
        // The load signs through Vault (`lab`); the real clients use the
        // embedded CA (`local`), so the sign count is the load's alone.
        // Every name of the load is under lab.example: one domain bucket
        // all replicas take from, with room for the load.
        std::fs::write(
            shared.path().join("certgate.toml"),
            format!(
                "default_profile = \"lab\"\n\
                 rate_limit_orders_per_domain = \"100000/1h\"\n{}\
                 [profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n\
                 [profiles.local]\nissuer = \"local\"\n",
                standin.approle_config(shared.path(), SECRET_ID)
            ),
        )
        .unwrap();
        let created = certgate_command()
            .args(["ca", "create", "--ca-dir"])
            .arg(shared.path().join("ca"))
            .output()
            .await
            .unwrap();
        assert!(
            created.status.success(),
            "ca create: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        Self {
            standin,
            dns: DnsStub::start().await,
            http01_port: free_port(),
            shared,
        }
    }

    fn ca_dir(&self) -> PathBuf {
        self.shared.path().join("ca")
    }

    fn root_pem(&self) -> PathBuf {
        self.ca_dir().join("root.pem")
    }

    /// A replica's flags, on its own data dir and port.
    fn replica(&self, data_dir: &Path) -> ServeArgs {
        ServeArgs {
            http01_port: self.http01_port,
            ..ServeArgs::new(
                data_dir,
                self.dns.addr(),
                Some(self.shared.path().join("certgate.toml")),
            )
        }
    }

    /// The flags every replica adds: the shared files, and the database.
    fn shared_flags(&self, database_url: &str, external_url: &str) -> Vec<String> {
        let path = |p: PathBuf| p.display().to_string();
        vec![
            "--ca-dir".into(),
            path(self.ca_dir()),
            "--eab-key-file".into(),
            path(self.shared.path().join("eab.key")),
            "--database-url".into(),
            database_url.into(),
            "--external-url".into(),
            external_url.into(),
            "--work-lease".into(),
            format!("{}s", LEASE.as_secs()),
        ]
    }
}

/// What one run of the load did.
#[derive(Debug, Default)]
struct LoadOutcome {
    serials: BTreeSet<String>,
    failures: Vec<String>,
    /// Orders failed for a lost Vault answer, and ordered again.
    lost_answers: usize,
    /// Issuances completed in each second since the load started.
    per_second: Vec<usize>,
}

impl LoadOutcome {
    fn rate(&self, from: usize, to: usize) -> f64 {
        let to = to.min(self.per_second.len());
        let done: usize = self.per_second[from.min(to)..to].iter().sum();
        done as f64 / (to - from.min(to)).max(1) as f64
    }
}

/// [`FLOWS`] clients, each with an account of its own, issuing one
/// certificate after another at `directory` for `duration`.
async fn run_load(
    directory: &str,
    root_pem: &Path,
    http01: &Arc<Http01Responder>,
    duration: Duration,
    label: &str,
) -> LoadOutcome {
    let template = RawClient::new(directory, root_pem).await;
    let started = Instant::now();
    let flows = (0..FLOWS).map(|flow| {
        let http01 = http01.clone();
        let mut client = fresh_client(&template);
        async move {
            let mut done = Vec::new();
            let mut failures = Vec::new();
            let mut lost_answers = 0;
            let mut n = 0;
            while started.elapsed() < duration {
                let name = format!("{label}-{flow}-{n}.lab.example");
                n += 1;
                let mut outcome = try_issue(&mut client, &http01, &name).await;
                if outcome
                    .as_ref()
                    .is_err_and(|step| step.contains(ANSWER_LOST))
                {
                    // A replica died between sending this order's CSR to
                    // Vault and storing the answer: certgate failed the
                    // order rather than sign it twice, and asks for a new
                    // one, as a client then does.
                    lost_answers += 1;
                    outcome = try_issue(&mut client, &http01, &name).await;
                }
                match outcome {
                    Ok(chain) => done.push((leaf_serial(&chain), started.elapsed())),
                    Err(step) => failures.push(format!("{name}: {step}")),
                }
            }
            (done, failures, lost_answers)
        }
    });
    let mut outcome = LoadOutcome::default();
    for (done, failures, lost_answers) in join_all(flows).await {
        outcome.lost_answers += lost_answers;
        for (serial, at) in done {
            let second = at.as_secs() as usize;
            if outcome.per_second.len() <= second {
                outcome.per_second.resize(second + 1, 0);
            }
            outcome.per_second[second] += 1;
            outcome.serials.insert(serial);
        }
        outcome.failures.extend(failures);
    }
    outcome
}

/// Now, in the Unix seconds the store records times in.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// When each order Vault signed but whose answer certgate lost (a replica
/// killed between sending the CSR and storing the certificate) had its
/// signing started, in Unix seconds: such orders are failed, never signed
/// again.
async fn sign_attempts_with_lost_answers(database_url: &str) -> Vec<i64> {
    let mut connection = PgConnection::connect(database_url).await.unwrap();
    let attempts: Vec<i64> = sqlx::query_scalar(
        "SELECT sign_attempted_at FROM orders
         WHERE status = 'invalid' AND error LIKE '%lost the CA''s answer%'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    connection.close().await.unwrap();
    attempts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_behind_haproxy_issue_through_a_sigkill_with_no_failure() {
    let test = concat!(module_path!(), "::three_replicas_behind_haproxy");
    let Some(database) = TemporaryDatabase::create(test).await else {
        return;
    };
    let service = Service::start().await;
    let data_dirs: Vec<_> = (0..REPLICAS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    let replicas: Vec<ServeArgs> = data_dirs
        .iter()
        .map(|d| service.replica(d.path()))
        .collect();
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.listen).collect();
    let port = LoadBalancer::port();
    let flags = service.shared_flags(database.url(), &LoadBalancer::url_at(port));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let env = [("RUST_LOG", "info")];
    let root_pem = service.root_pem();
    let mut processes = Vec::new();
    for replica in &replicas {
        processes.push(CertgateProcess::start_with(replica, &flags, &env).await);
    }
    let balancer = LoadBalancer::start(port, &addrs, &service.ca_dir()).await;
    {
        let logs = || {
            let mut all = balancer.log();
            for (n, process) in processes.iter().enumerate() {
                all += &format!("\n--- replica {n} ---\n{}", process.log());
            }
            all
        };

        // certbot and lego, through the balancer, on the embedded CA's
        // profile; each answers HTTP-01 on the replicas' port in turn.
        let directory = format!("{}/acme/local/directory", balancer.url());
        let lego = Lego::new(&directory, &root_pem, service.http01_port);
        let certbot = Certbot::new(&directory, &root_pem, service.http01_port);
        lego.run(&logs).await;
        certbot.certonly(&logs).await;
        let issued = check_both("issued", &root_pem, &lego, &certbot).await;
        lego.renew(&logs).await;
        certbot.renew(&logs).await;
        let renewed = check_both("renewed", &root_pem, &lego, &certbot).await;
        assert_ne!(issued.0, renewed.0, "lego's renewal is a new certificate");
        assert_ne!(
            issued.1, renewed.1,
            "certbot's renewal is a new certificate"
        );
    }

    // The load, with one replica killed a third of the way in.
    let http01 = Arc::new(
        Http01Responder::start_on(SocketAddr::from(([127, 0, 0, 1], service.http01_port))).await,
    );
    let balanced_directory = format!("{}/acme/directory", balancer.url());
    let load = run_load(&balanced_directory, &root_pem, &http01, LOAD, "replicas");
    let mut victim = processes.remove(1);
    let kill = async {
        tokio::time::sleep(KILL_AT).await;
        victim.kill().await;
        unix_now()
    };
    let (outcome, killed_at) = tokio::join!(load, kill);
    let before_kill = outcome.rate(1, KILL_AT.as_secs() as usize);
    let after_kill = outcome.rate(KILL_AT.as_secs() as usize + 1, LOAD.as_secs() as usize);
    println!(
        "3 replicas on PostgreSQL behind HAProxy: {} certificates in {:?} from {FLOWS} clients, \
         {before_kill:.1}/s with 3 replicas, {after_kill:.1}/s with 2, failures: {:?}",
        outcome.serials.len(),
        LOAD,
        outcome.failures
    );
    if !outcome.failures.is_empty() {
        let mut all = balancer.log();
        for process in processes.iter().chain([&victim]) {
            all += &format!("\n--- replica ---\n{}", process.log());
        }
        panic!("{:?}\n{all}", outcome.failures);
    }
    assert!(!outcome.serials.is_empty());

    // Every certificate a client saved is listed; Vault signed no order twice.
    let listed =
        listed_serials_with(data_dirs[0].path(), &["--database-url", database.url()]).await;
    let missing: Vec<_> = outcome.serials.difference(&listed).collect();
    assert!(missing.is_empty(), "saved but not listed: {missing:?}");
    let lost_attempts = sign_attempts_with_lost_answers(database.url()).await;
    let lost = lost_attempts.len() as i64;
    assert_eq!(
        lost, outcome.lost_answers as i64,
        "every lost answer reached its client"
    );
    // Vault's serials as certgate lists them: lower-case hex, no colons.
    let signed_at_vault: BTreeSet<String> = service
        .standin
        .sign_calls()
        .into_iter()
        .filter_map(|call| call.serial)
        .map(|serial| serial.replace(':', ""))
        .collect();
    let vault_certificates = listed.len() - 4; // lego's and certbot's two each
    assert_eq!(
        signed_at_vault.intersection(&listed).count(),
        vault_certificates,
        "every certificate listed from the load was signed at Vault"
    );
    // A lost answer may or may not have reached Vault (the replica can die
    // after recording the attempt and before its request is read), so what
    // Vault signed and certgate does not list is at most the lost answers;
    // an order signed twice would leave its first certificate unlisted
    // beyond them.
    let unlisted: Vec<_> = signed_at_vault.difference(&listed).collect();
    assert!(
        unlisted.len() as i64 <= lost,
        "Vault signed {unlisted:?}, which certgate neither lists nor failed for a lost answer ({lost})"
    );
    // Only the signings the killed replica had in flight may lose their
    // answer: each was started before the kill (how many depends on how
    // many finalizes the balancer had sent it at that instant, at most one
    // per client), and no survivor ever loses one.
    assert!(
        lost_attempts.iter().all(|&at| at <= killed_at),
        "an answer was lost to a signing started after the kill at {killed_at}: {lost_attempts:?}"
    );
    assert!(lost as usize <= FLOWS, "{lost} answers lost to one SIGKILL");
    println!(
        "Vault signed {} certificates: {vault_certificates} listed, {} unlisted; {lost} lost answers",
        signed_at_vault.len(),
        unlisted.len()
    );

    for process in &mut processes {
        assert!(process.stop().await.success(), "{}", process.log());
    }
    balancer.stop().await;

    // The same load against one replica on SQLite, for the comparison.
    let data_dir = tempfile::tempdir().unwrap();
    let single = service.replica(data_dir.path());
    let sqlite_flags = ["--ca-dir", flags[1], "--eab-key-file", flags[3]];
    let mut sqlite = CertgateProcess::start_with(&single, &sqlite_flags, &env).await;
    let compared = run_load(
        &single.directory_url(),
        &root_pem,
        &http01,
        COMPARISON,
        "sqlite",
    )
    .await;
    assert!(compared.failures.is_empty(), "{:?}", compared.failures);
    println!(
        "1 replica on SQLite: {:.1}/s; 3 replicas on PostgreSQL behind HAProxy: {before_kill:.1}/s",
        compared.rate(1, COMPARISON.as_secs() as usize)
    );
    assert!(sqlite.stop().await.success(), "{}", sqlite.log());
}
