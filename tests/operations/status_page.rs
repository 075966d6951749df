//! `/status` as a browser shows it: certificates issued through two
//! profiles of different lifetimes, one of them revoked, then Debian's
//! headless Chromium loads the page and the DOM it builds is read back:
//! first as configured by default, without the certificate table, then
//! with `status_page_certificates` on. (The admin listener's `/status`,
//! which always lists them behind the token, is in `admin_api.rs`.)

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::process::Command;
use x509_parser::prelude::{FromDer, X509Certificate};

use certgate_testkit::chain_ders;
use certgate_testkit::clients::require_tool;
use certgate_testkit::instance::Instance;
use certgate_testkit::raw_client::{b64, RawClient};

/// A browser start and one page load take a second or two; this only
/// catches a Chromium that hangs.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

const PROFILES: &str = "default_profile = \"services\"\n\
    [profiles.services]\nissuer = \"local\"\nttl = \"24h\"\n\
    description = \"24-hour certificates for services\"\n\
    [profiles.batch]\nissuer = \"local\"\nttl = \"1h\"\n";

/// A certificate as the test issued it.
struct Issued {
    serial: String,
    names: Vec<&'static str>,
    profile: &'static str,
    not_after: i64,
    leaf_der: Vec<u8>,
}

async fn issue(
    instance: &Instance,
    client: &RawClient,
    profile: &'static str,
    names: Vec<&'static str>,
) -> Issued {
    let chain = client.issue(&instance.http01, &names).await;
    let leaf_der = chain_ders(&chain).remove(0);
    let (_, leaf) = X509Certificate::from_der(&leaf_der).unwrap();
    Issued {
        serial: leaf
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        names,
        profile,
        not_after: leaf.validity().not_after.timestamp(),
        leaf_der: leaf_der.clone(),
    }
}

/// `base64(SHA-256(SubjectPublicKeyInfo))` of the embedded intermediate,
/// which signs certgate's own HTTPS certificate: Chromium accepts a chain
/// through that key, and only that key, without trusting the root.
fn intermediate_spki_pin(instance: &Instance) -> String {
    let pem = std::fs::read(instance.data_dir.path().join("ca/intermediate.pem")).unwrap();
    let der = ::pem::parse(pem).unwrap().into_contents();
    let (_, intermediate) = X509Certificate::from_der(&der).unwrap();
    STANDARD.encode(Sha256::digest(intermediate.public_key().raw))
}

/// The DOM headless Chromium builds from `url`, and what it logged.
async fn chromium_dom(url: &str, spki_pin: &str) -> (String, String) {
    require_tool("chromium", "chromium");
    let profile_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new("chromium");
    command
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .arg(format!("--ignore-certificate-errors-spki-list={spki_pin}"))
        .arg(format!("--user-data-dir={}", profile_dir.path().display()))
        .args(["--enable-logging=stderr", "--dump-dom", url])
        .kill_on_drop(true);
    let output = tokio::time::timeout(BROWSER_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("chromium did not finish within {BROWSER_TIMEOUT:?}"))
        .expect("chromium starts");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "chromium failed:\n{stderr}");
    (String::from_utf8(output.stdout).unwrap(), stderr)
}

fn attribute(tag: &tl::HTMLTag, name: &str) -> String {
    tag.attributes()
        .get(name)
        .flatten()
        .map(|value| value.as_utf8_str().into_owned())
        .unwrap_or_else(|| panic!("no {name} on {:?}", tag.raw().as_utf8_str()))
}

/// The text of the one element under `tag` matching `selector`.
fn text_of(tag: &tl::HTMLTag, parser: &tl::Parser, selector: &str) -> String {
    let found = tag
        .query_selector(parser, selector)
        .and_then(|mut found| found.next())
        .and_then(|handle| handle.get(parser))
        .unwrap_or_else(|| panic!("no {selector} in {}", tag.inner_html(parser)));
    found.inner_text(parser).trim().to_owned()
}

/// One certificate row of the page, as the browser has it.
#[derive(Debug, PartialEq)]
struct Row {
    id: String,
    serial: String,
    names: String,
    profile: String,
    /// The lifetime bar's value: the fraction of the lifetime left.
    left: f64,
}

fn certificate_rows(dom: &tl::VDom) -> Vec<Row> {
    let parser = dom.parser();
    dom.query_selector("tr.certificate")
        .expect("a valid selector")
        .map(|handle| {
            let row = handle.get(parser).unwrap().as_tag().unwrap();
            let bar = row
                .query_selector(parser, "meter.lifetime")
                .and_then(|mut found| found.next())
                .and_then(|handle| handle.get(parser))
                .and_then(|node| node.as_tag())
                .unwrap_or_else(|| panic!("no lifetime bar in {}", row.inner_html(parser)));
            Row {
                id: attribute(row, "id"),
                serial: text_of(row, parser, "td.serial"),
                names: text_of(row, parser, "td.names"),
                profile: text_of(row, parser, "td.profile"),
                left: attribute(bar, "value").parse().unwrap(),
            }
        })
        .collect()
}

#[tokio::test]
async fn the_status_page_lists_valid_certificates_only_when_told_to() {
    let mut instance = Instance::start_with_config(Some(PROFILES.to_owned())).await;
    let services = instance.registered_client("services").await;
    let batch = instance.registered_client("batch").await;
    let mut issued = [
        issue(
            &instance,
            &services,
            "services",
            vec!["web.lab.example", "api.lab.example"],
        )
        .await,
        issue(&instance, &batch, "batch", vec!["job.lab.example"]).await,
        issue(&instance, &services, "services", vec!["db.lab.example"]).await,
    ];
    let revoked = issue(&instance, &services, "services", vec!["old.lab.example"]).await;
    let reply = services
        .post(
            &services.url("revokeCert"),
            Some(json!({"certificate": b64(&revoked.leaf_der)})),
        )
        .await;
    assert_eq!(reply.status, 200, "revokeCert: {:?}", reply.json());

    let url = format!(
        "https://127.0.0.1:{}/status",
        instance.server().local_addr().port()
    );

    // By default the public page names no certificate.
    let (html, log) = chromium_dom(&url, &intermediate_spki_pin(&instance)).await;
    let dom = tl::parse(&html, tl::ParserOptions::default()).unwrap();
    assert!(
        dom.get_element_by_id("summary").is_some(),
        "Chromium did not show the status page:\n{html}\n{log}"
    );
    assert!(
        dom.get_element_by_id("certificates-hidden").is_some(),
        "{html}"
    );
    assert!(certificate_rows(&dom).is_empty(), "{html}");
    for certificate in issued.iter().chain([&revoked]) {
        assert!(!html.contains(&certificate.serial), "{html}");
        for name in &certificate.names {
            assert!(!html.contains(name), "{name} on the public page: {html}");
        }
    }

    instance
        .restart_with_config(Some(format!("status_page_certificates = true\n{PROFILES}")))
        .await;
    let response = services.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    let policy = header("content-security-policy");
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(
        !policy.contains("script") && !policy.contains("unsafe"),
        "{policy}"
    );

    let (html, log) = chromium_dom(&url, &intermediate_spki_pin(&instance)).await;
    assert!(
        !log.contains("Content Security Policy"),
        "the page broke its own policy:\n{log}"
    );
    let dom = tl::parse(&html, tl::ParserOptions::default()).unwrap();
    let parser = dom.parser();
    let summary = dom
        .get_element_by_id("summary")
        .and_then(|handle| handle.get(parser))
        .and_then(|node| node.as_tag())
        .unwrap_or_else(|| panic!("Chromium did not show the status page:\n{html}\n{log}"));
    assert_eq!(attribute(summary, "data-ready"), "true");
    assert!(
        dom.query_selector("script").unwrap().next().is_none(),
        "{html}"
    );

    // Soonest expiry first: the one-hour certificate, then the others.
    issued.sort_by(|a, b| (a.not_after, &a.serial).cmp(&(b.not_after, &b.serial)));
    assert_eq!(issued[0].profile, "batch");
    let rows = certificate_rows(&dom);
    let expected: Vec<(String, String, String, String)> = issued
        .iter()
        .map(|c| {
            (
                format!("cert-{}", c.serial),
                c.serial.clone(),
                c.names.join(", "),
                c.profile.to_owned(),
            )
        })
        .collect();
    let shown: Vec<(String, String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                r.serial.clone(),
                r.names.clone(),
                r.profile.clone(),
            )
        })
        .collect();
    assert_eq!(
        shown, expected,
        "the revoked {} is not listed",
        revoked.serial
    );
    for row in &rows {
        assert!(
            row.left > 0.95 && row.left <= 1.0,
            "a fresh certificate has almost all its life left: {row:?}"
        );
    }

    let profiles: Vec<(String, String)> = dom
        .query_selector("tr.profile")
        .unwrap()
        .map(|handle| {
            let row = handle.get(parser).unwrap().as_tag().unwrap();
            (
                attribute(row, "data-profile"),
                text_of(row, parser, "td.state"),
            )
        })
        .collect();
    assert_eq!(
        profiles,
        [
            ("batch".to_owned(), "ok".to_owned()),
            ("services".to_owned(), "ok".to_owned())
        ]
    );
}
