//! The CA health check against an embedded CA an operator brought, whose
//! intermediate expires in 10 days: with the default 90-day certificates
//! the gauge, `/status` and the log warn; with 5-day certificates nothing
//! does.

use std::path::Path;
use std::time::Duration;

use certgate_testkit::dns::DnsStub;
use certgate_testkit::openmetrics::{self, Exposition};
use certgate_testkit::process::{CertgateProcess, ServeArgs};

const INTERMEDIATE: &str = "lab intermediate 2026";
const ROOT: &str = "lab root 2026";
const WARNING: &str =
    "profile default: CA certificate \"lab intermediate 2026\" of embedded expires at";

/// Writes a root (one year) and an intermediate expiring after `left` into
/// `dir`, as `certgate serve` reads a CA folder; returns the intermediate's
/// and the root's not-after (unix seconds).
fn write_ca(dir: &Path, left: Duration) -> (i64, i64) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let params = |name: &str, lasts: Duration| {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = now - Duration::from_secs(60);
        params.not_after = now + lasts;
        params
    };
    let root_key = KeyPair::generate().unwrap();
    let root_params = params(ROOT, Duration::from_secs(365 * 86_400));
    let root_not_after = root_params.not_after.unix_timestamp();
    let root = root_params.self_signed(&root_key).unwrap();
    let intermediate_key = KeyPair::generate().unwrap();
    let intermediate_params = params(INTERMEDIATE, left);
    let intermediate_not_after = intermediate_params.not_after.unix_timestamp();
    let intermediate = intermediate_params
        .signed_by(&intermediate_key, &Issuer::new(root_params, &root_key))
        .unwrap();
    std::fs::create_dir_all(dir).unwrap();
    for (file, text) in [
        ("root.pem", root.pem()),
        ("root.key", root_key.serialize_pem()),
        ("intermediate.pem", intermediate.pem()),
        ("intermediate.key", intermediate_key.serialize_pem()),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
        // Keys private, as certgate insists.
        std::fs::set_permissions(
            dir.join(file),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    (intermediate_not_after, root_not_after)
}

/// `/metrics` once the first CA check has ended (it starts with serving).
async fn scrape_after_the_ca_check(args: &ServeArgs) -> Exposition {
    openmetrics::scrape_until_present(
        &certgate_testkit::raw_client::https_trusting(&args.root_pem()),
        &format!("https://{}/metrics", args.listen),
        "certgate_ca_check_succeeded",
        &[("ca", "embedded")],
    )
    .await
}

async fn status_page(args: &ServeArgs) -> String {
    certgate_testkit::raw_client::https_trusting(&args.root_pem())
        .get(format!("https://{}/status", args.listen))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_intermediate_that_expires_before_its_certificates_raises_the_gauge_and_the_warning() {
    let dns = DnsStub::start().await;
    let data_dir = tempfile::tempdir().unwrap();
    let (intermediate_not_after, root_not_after) = write_ca(
        &data_dir.path().join("ca"),
        Duration::from_secs(10 * 86_400),
    );
    let args = ServeArgs::new(data_dir.path(), dns.addr(), None);

    let mut certgate = CertgateProcess::start(&args).await;
    let scrape = scrape_after_the_ca_check(&args).await;
    assert_eq!(
        scrape.value("certgate_ca_check_succeeded", &[("ca", "embedded")]),
        1.0
    );
    assert_eq!(
        scrape.value(
            "certgate_ca_certificate_not_after_seconds",
            &[("ca", "embedded"), ("subject", INTERMEDIATE)]
        ),
        intermediate_not_after as f64
    );
    assert_eq!(
        scrape.value(
            "certgate_ca_certificate_not_after_seconds",
            &[("ca", "embedded"), ("subject", ROOT)]
        ),
        root_not_after as f64
    );
    assert_eq!(
        scrape.value(
            "certgate_ca_expires_before_leaves",
            &[("profile", "default")]
        ),
        1.0,
        "90-day certificates under an intermediate with 10 days left"
    );
    // The embedded CA signs a fresh CRL for each request: never stale.
    assert_eq!(
        scrape.value("certgate_crl_stale", &[("ca", "embedded")]),
        0.0
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let next_update = scrape.value("certgate_crl_next_update_seconds", &[("ca", "embedded")]);
    assert!(next_update > now, "next update {next_update}, now {now}");

    let page = status_page(&args).await;
    assert!(
        page.contains(&format!(
            "<li class=\"ca-warning\">{}",
            WARNING.replace('"', "&quot;")
        )),
        "{page}"
    );
    let log = certgate.log();
    let warned: Vec<&str> = log.lines().filter(|l| l.contains(WARNING)).collect();
    assert_eq!(warned.len(), 1, "the warning is logged once:\n{log}");
    assert!(warned[0].contains("WARN"), "{}", warned[0]);
    assert!(certgate.stop().await.success());

    // Certificates that end before the intermediate: nothing to warn of.
    let mut certgate =
        CertgateProcess::start_with(&args, &["--cert-lifetime", "5d"], &[("RUST_LOG", "info")])
            .await;
    let scrape = scrape_after_the_ca_check(&args).await;
    assert_eq!(
        scrape.value(
            "certgate_ca_expires_before_leaves",
            &[("profile", "default")]
        ),
        0.0
    );
    assert!(!status_page(&args).await.contains("<ul id=\"ca-warnings\">"));
    assert!(!certgate.log().contains(WARNING), "{}", certgate.log());
    assert!(certgate.stop().await.success());
}
