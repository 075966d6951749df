//! SIGKILL in the middle of a load of issuances, five times over, each time
//! restarting on the same data directory: every certificate a client saved
//! is still there, the database is intact and no order is left half-done.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{fresh_client, integrity_check, try_issue, wait_until_settled};
use certgate_testkit::dns::DnsStub;
use certgate_testkit::http01::Http01Responder;
use certgate_testkit::inventory::{leaf_serial, listed_serials};
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::raw_client::RawClient;

const KILLS: usize = 5;
const FLOWS: usize = 8;
/// Certificates saved in a round before the kill, so that each kill lands
/// in a server busy with every step of an issuance.
const SAVED_BEFORE_KILL: usize = 4;

/// Issues certificates one after another until `stop`, recording the serial
/// of each one downloaded; errors (the server was killed) end nothing but
/// the issuance they hit.
async fn issuing_flow(
    template: Arc<RawClient>,
    http01: Arc<Http01Responder>,
    saved: Arc<Mutex<BTreeSet<String>>>,
    saved_this_round: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut client = fresh_client(&template);
    let mut n = 0u32;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let name = format!("kill-{}-{n}.example.test", rand::random::<u32>());
        if let Ok(chain) = try_issue(&mut client, &http01, &name).await {
            saved.lock().unwrap().insert(leaf_serial(&chain));
            saved_this_round.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_saved_certificate() {
    let dns = DnsStub::start().await;
    let http01 = Arc::new(Http01Responder::start().await);
    let data_dir = tempfile::tempdir().unwrap();
    let mut args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    args.http01_port = http01.port();
    let directory = format!("https://{}/acme/directory", args.listen);
    let saved = Arc::new(Mutex::new(BTreeSet::new()));

    for kill in 0..KILLS {
        let mut certgate = CertgateProcess::start(&args).await;
        let template =
            Arc::new(RawClient::new(&directory, &data_dir.path().join("ca/root.pem")).await);
        let saved_this_round = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let flows: Vec<_> = (0..FLOWS)
            .map(|_| {
                tokio::spawn(issuing_flow(
                    template.clone(),
                    http01.clone(),
                    saved.clone(),
                    saved_this_round.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while saved_this_round.load(Ordering::SeqCst) < SAVED_BEFORE_KILL {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {kill}: fewer than {SAVED_BEFORE_KILL} certificates in 60 s\n{}",
                certgate.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        certgate.kill().await;
        stop.store(true, Ordering::SeqCst);
        for flow in flows {
            flow.await.expect("a flow panicked");
        }
    }

    // A last start resumes what the kills interrupted.
    let mut certgate = CertgateProcess::start(&args).await;
    wait_until_settled(data_dir.path()).await;
    let listed = listed_serials(data_dir.path()).await;
    let saved = saved.lock().unwrap().clone();
    let missing: Vec<_> = saved.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "saved by clients but not listed: {missing:?}"
    );
    assert!(certgate.stop().await.success());
    assert_eq!(integrity_check(data_dir.path()).await, "ok");
    println!(
        "sigkill: {KILLS} kills, {} certificates saved by clients, all listed ({} listed in all)",
        saved.len(),
        listed.len()
    );
}
