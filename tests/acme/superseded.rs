//! lego renews through certgate without ARI's `replaces` (as Debian
//! packages it): the old certificate is superseded, so `certs list` hides
//! it unless `--all`, and the certificate gauges count it apart.

use serde_json::Value;

use certgate_testkit::clients::require_tool;
use certgate_testkit::dns::DnsStub;
use certgate_testkit::inventory::certs_listed;
use certgate_testkit::process::{CertgateProcess, ServeArgs};
use certgate_testkit::real_clients::Lego;

async fn metrics(args: &ServeArgs) -> certgate_testkit::openmetrics::Exposition {
    let client = certgate_testkit::raw_client::https_trusting(&args.root_pem());
    let text = client
        .get(format!("https://{}/metrics", args.listen))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    certgate_testkit::openmetrics::parse(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_lego_renewed_is_superseded_and_counted_apart() {
    require_tool("lego", "lego");
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let args = ServeArgs::new(data_dir.path(), dns.addr(), None);
    let lego = Lego::new(&args.directory_url(), &args.root_pem(), args.http01_port);
    let mut certgate = CertgateProcess::start(&args).await;
    lego.run(&|| certgate.log()).await;
    lego.renew(&|| certgate.log()).await;

    let current = certs_listed(data_dir.path(), &[]).await;
    assert_eq!(current.len(), 1, "{current:?}");
    assert_eq!(current[0]["superseded"], false);
    let all = certs_listed(data_dir.path(), &["--all"]).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let old: Vec<&Value> = all.iter().filter(|c| c["superseded"] == true).collect();
    assert_eq!(old.len(), 1, "{all:?}");
    assert_ne!(old[0]["serial"], current[0]["serial"]);
    assert_eq!(old[0]["status"], "valid", "still valid, only replaced");

    let scrape = metrics(&args).await;
    assert_eq!(scrape.sum("certgate_certificates_valid", &[]), 1.0);
    assert_eq!(scrape.sum("certgate_certificates_superseded", &[]), 1.0);
    assert!(certgate.stop().await.success(), "{}", certgate.log());
}
