//! `/metrics` after real work: certificates issued through an embedded-CA
//! profile with a 24-hour lifetime and through a Vault profile (the Vault
//! stand-in, whose role gives 32 days), and one validation that fails. The
//! scrape, over HTTPS and over the plain `metrics_listen` listener, must
//! parse strictly as OpenMetrics and count exactly what was done. The
//! Grafana dashboard is held to the same scrape: every metric it names must
//! be in it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use certgate_testkit::instance::Instance;
use certgate_testkit::openmetrics::{self, Exposition};
use certgate_testkit::process::free_port;
use certgate_testkit::raw_client::challenge_of;
use certgate_testkit::vault::{StandinConfig, VaultStandin, SECRET_ID};
use serde_json::{json, Value};

/// Issued through the 24-hour embedded-CA profile `short`.
const SHORT_NAMES: [&str; 2] = ["a.lab.example", "b.lab.example"];
/// Issued through the Vault profile `lab`.
const VAULT_NAMES: [&str; 1] = ["web.lab.example"];
/// Ordered through `short`, with a challenge answered wrongly.
const FAILED_NAME: &str = "wrong.lab.example";
/// The stand-in's default token life for a login.
const TOKEN_TTL: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// certgate with the profiles `short` (embedded CA, 24 h, the default) and
/// `lab` (Vault role `pki_int/lab-internal`, logging in with AppRole), and
/// `/metrics` also on plain HTTP.
struct Lab {
    standin: VaultStandin,
    instance: Instance,
    metrics_addr: SocketAddr,
    /// Trusts certgate's root, for plain GETs on the main listener.
    https: reqwest::Client,
    _secrets: tempfile::TempDir,
}

impl Lab {
    async fn start() -> Self {
        let standin = VaultStandin::start(StandinConfig::lab()).await;
        let secrets = tempfile::tempdir().unwrap();
        let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = format!(
            "default_profile = \"short\"\n\
             metrics_listen = \"{metrics_addr}\"\n{}\
             [profiles.short]\nissuer = \"local\"\nttl = \"24h\"\n\
             [profiles.lab]\nissuer = \"vault\"\nmount = \"pki_int\"\nrole = \"lab-internal\"\n",
            standin.approle_config(secrets.path(), SECRET_ID),
        );
        let instance = Instance::start_with_config(Some(config)).await;
        let https = certgate_testkit::raw_client::https_trusting(&instance.root_pem_path());
        Self {
            standin,
            instance,
            metrics_addr,
            https,
            _secrets: secrets,
        }
    }

    /// What the metrics are checked against: one certificate per name of
    /// [`SHORT_NAMES`] and [`VAULT_NAMES`], and an order for
    /// [`FAILED_NAME`] whose http-01 response is wrong.
    async fn do_the_work(&self) {
        let short = self.instance.registered_client("short").await;
        for name in SHORT_NAMES {
            short.issue(&self.instance.http01, &[name]).await;
        }
        let lab = self.instance.registered_client("lab").await;
        for name in VAULT_NAMES {
            lab.issue(&self.instance.http01, &[name]).await;
        }

        let (order_url, order) = short.new_order(&[FAILED_NAME]).await;
        let authz = short
            .post(order["authorizations"][0].as_str().unwrap(), None)
            .await
            .json();
        let challenge = challenge_of(&authz, "http-01");
        self.instance.http01.serve(
            challenge["token"].as_str().unwrap(),
            "not-the-key-authorization",
        );
        short
            .post(challenge["url"].as_str().unwrap(), Some(json!({})))
            .await;
        short.wait_for_order(&order_url, &["invalid"]).await;
    }

    /// `GET path` on the main HTTPS listener.
    async fn get(&self, path: &str) -> reqwest::Response {
        self.https
            .get(format!("{}{path}", self.instance.base_url()))
            .send()
            .await
            .unwrap()
    }

    /// `GET /metrics` on the main HTTPS listener: (content type, body).
    async fn scrape_https(&self) -> (String, String) {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (content_type, response.text().await.unwrap())
    }

    /// The HTTPS scrape, parsed, once the background tasks have counted
    /// every issuance and validation (they count just after the client can
    /// see the outcome, so the first scrape may come a moment early).
    async fn counted_scrape(&self) -> Exposition {
        let expected_issuances = (SHORT_NAMES.len() + VAULT_NAMES.len()) as f64;
        let expected_validations = expected_issuances + 1.0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, text) = self.scrape_https().await;
            let scrape = parse(&text);
            // The CA check of both profiles' CAs ends soon after start.
            if scrape.sum("certgate_issuances_total", &[]) >= expected_issuances
                && scrape.sum("certgate_validations_total", &[]) >= expected_validations
                && scrape.matching("certgate_ca_check_succeeded", &[]).count() == 2
            {
                return scrape;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "issuances, validations and CA checks not all in after 10 s:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Parses strictly, panicking with the reason and the whole text.
fn parse(text: &str) -> Exposition {
    openmetrics::parse(text).unwrap_or_else(|e| panic!("not valid OpenMetrics: {e}\n{text}"))
}

#[tokio::test]
async fn metrics_count_what_was_done_through_two_profiles() {
    let lab = Lab::start().await;
    lab.do_the_work().await;
    for probe in ["/no/such/page", "/acme/order/not-an-order/at-all"] {
        assert_eq!(lab.get(probe).await.status(), 404, "{probe}");
    }
    let scrape = lab.counted_scrape().await;
    let issued_total = (SHORT_NAMES.len() + VAULT_NAMES.len()) as f64;

    // Issuance, by profile.
    let issued = |profile| {
        scrape.value(
            "certgate_issuances_total",
            &[("profile", profile), ("result", "issued")],
        )
    };
    assert_eq!(issued("short"), SHORT_NAMES.len() as f64);
    assert_eq!(issued("lab"), VAULT_NAMES.len() as f64);
    assert_eq!(
        scrape.sum("certgate_issuances_total", &[("result", "failed")]),
        0.0
    );
    let latencies = |profile| {
        scrape.value(
            "certgate_issuance_duration_seconds_count",
            &[("profile", profile)],
        )
    };
    assert_eq!(latencies("short"), SHORT_NAMES.len() as f64);
    assert_eq!(latencies("lab"), VAULT_NAMES.len() as f64);

    // Validation, by method and result: one authorization per name.
    let validations = |result| {
        scrape.value(
            "certgate_validations_total",
            &[("method", "http-01"), ("result", result)],
        )
    };
    assert_eq!(validations("valid"), issued_total);
    assert_eq!(validations("invalid"), 1.0);

    // Requests, by route template: every order created, none counted
    // under a raw path with an id in it, and paths no route matches under
    // one label.
    assert_eq!(
        scrape.value(
            "certgate_http_requests_total",
            &[("endpoint", "/acme/{profile}/new-order"), ("status", "201")]
        ),
        issued_total + 1.0
    );
    assert!(
        scrape.value(
            "certgate_http_requests_total",
            &[("endpoint", "/acme/order/{id}"), ("status", "200")]
        ) > 0.0
    );
    let order_endpoints: BTreeSet<&str> = scrape
        .matching("certgate_http_requests_total", &[])
        .map(|s| s.labels["endpoint"].as_str())
        .filter(|endpoint| endpoint.contains("order"))
        .collect();
    assert_eq!(
        order_endpoints,
        BTreeSet::from([
            "/acme/{profile}/new-order",
            "/acme/order/{id}",
            "/acme/order/{id}/finalize"
        ])
    );
    assert_eq!(
        scrape.value(
            "certgate_http_requests_total",
            &[("endpoint", "unmatched"), ("status", "404")]
        ),
        2.0
    );

    // Vault: the one sign call, as the stand-in saw it, and the login.
    assert_eq!(lab.standin.sign_calls().len(), VAULT_NAMES.len());
    let sign = ("path", "pki_int/sign/lab-internal");
    assert_eq!(
        scrape.value("certgate_vault_requests_total", &[sign, ("outcome", "ok")]),
        VAULT_NAMES.len() as f64
    );
    assert_eq!(
        scrape.value("certgate_vault_request_duration_seconds_count", &[sign]),
        VAULT_NAMES.len() as f64
    );
    assert!(
        scrape.value(
            "certgate_vault_requests_total",
            &[("path", "auth/approle/login"), ("outcome", "ok")]
        ) >= 1.0
    );
    let token_ttl = scrape.value("certgate_vault_token_ttl_seconds", &[]);
    assert!(token_ttl > 0.0 && token_ttl <= TOKEN_TTL, "{token_ttl}");

    // Read from the database: orders by status, certificates by expiry.
    assert_eq!(
        scrape.value("certgate_orders", &[("status", "valid")]),
        issued_total
    );
    assert_eq!(
        scrape.value("certgate_orders", &[("status", "invalid")]),
        1.0
    );
    assert_eq!(scrape.sum("certgate_orders", &[]), issued_total + 1.0);
    let valid = |profile| scrape.value("certgate_certificates_valid", &[("profile", profile)]);
    assert_eq!(valid("short"), SHORT_NAMES.len() as f64);
    assert_eq!(valid("lab"), VAULT_NAMES.len() as f64);
    let expiring = |profile, within| {
        scrape.value(
            "certgate_certificates_expiring",
            &[("profile", profile), ("within", within)],
        )
    };
    assert_eq!(expiring("short", "7d"), SHORT_NAMES.len() as f64);
    assert_eq!(expiring("short", "30d"), SHORT_NAMES.len() as f64);
    assert_eq!(expiring("lab", "7d"), 0.0);
    assert_eq!(expiring("lab", "30d"), 0.0);
    let earliest = |profile| {
        scrape.value(
            "certgate_certificates_earliest_expiry_seconds",
            &[("profile", profile)],
        )
    };
    assert!(
        earliest("short") > 0.0 && earliest("short") <= DAY,
        "{}",
        earliest("short")
    );
    assert!(earliest("lab") > 30.0 * DAY, "{}", earliest("lab"));

    // No label that could grow with the certificates or the clients (`ca`
    // and `subject` name the configured CAs and their chains).
    let labels = scrape.label_names();
    let bounded: BTreeSet<&str> = [
        "endpoint", "status", "profile", "result", "method", "path", "outcome", "within", "le",
        "ca", "subject",
    ]
    .into();
    assert!(labels.is_subset(&bounded), "{labels:?}");
}

#[tokio::test]
async fn the_plain_http_listener_serves_the_same_metrics() {
    let lab = Lab::start().await;
    lab.do_the_work().await;
    let over_https = lab.counted_scrape().await;
    let (https_type, _) = lab.scrape_https().await;

    let response = reqwest::get(format!("http://{}/metrics", lab.metrics_addr))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        https_type
    );
    assert!(
        https_type.starts_with("application/openmetrics-text"),
        "{https_type}"
    );
    let plain = parse(&response.text().await.unwrap());
    for name in [
        "certgate_issuances_total",
        "certgate_validations_total",
        "certgate_certificates_expiring",
    ] {
        assert_eq!(plain.sum(name, &[]), over_https.sum(name, &[]), "{name}");
    }

    // Only /metrics is served there.
    let other = reqwest::get(format!("http://{}/acme/directory", lab.metrics_addr))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
}

/// Every string in a JSON document.
fn strings(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(text) => found.push(text.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, found)),
        Value::Object(fields) => fields.values().for_each(|v| strings(v, found)),
        _ => {}
    }
}

/// The `certgate_…` metric names a query mentions.
fn metric_names(query: &str) -> Vec<String> {
    query
        .match_indices("certgate_")
        .map(|(start, _)| {
            query[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn every_metric_the_grafana_dashboard_queries_is_in_a_real_scrape() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/certgate.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    let mut texts = Vec::new();
    strings(&dashboard["panels"], &mut texts);
    strings(&dashboard["templating"], &mut texts);
    let queried: BTreeSet<String> = texts.iter().flat_map(|t| metric_names(t)).collect();

    let lab = Lab::start().await;
    lab.do_the_work().await;
    // A certificate made at Vault without certgate, found by a sync, for
    // the Vault inventory's gauges.
    lab.standin.sign_as_an_operator("agent.lab.example").await;
    let sync = lab.instance.server().inventory_sync().unwrap();
    for report in sync.sync_all().await {
        report.unwrap();
    }
    let scrape = lab.counted_scrape().await;
    let scraped = scrape.sample_names();
    let missing: Vec<&String> = queried
        .iter()
        .filter(|n| !scraped.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics certgate does not serve: {missing:?}"
    );
    // Every family certgate serves has a panel.
    let families: BTreeSet<&str> = scrape.families.iter().map(|f| f.name.as_str()).collect();
    let unshown: Vec<&&str> = families
        .iter()
        .filter(|family| !queried.iter().any(|q| q.starts_with(**family)))
        .collect();
    assert!(unshown.is_empty(), "no panel shows {unshown:?}");
}

#[test]
fn the_openmetrics_reader_is_strict() {
    let good = "# TYPE certgate_x counter\ncertgate_x_total{a=\"1\"} 2\n# EOF\n";
    assert_eq!(parse(good).value("certgate_x_total", &[("a", "1")]), 2.0);
    let histogram = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n# EOF\n";
    assert_eq!(parse(histogram).value("h_count", &[]), 2.0);
    for bad in [
        // No EOF marker.
        "# TYPE certgate_x counter\ncertgate_x_total 1\n",
        // A counter sample without `_total`.
        "# TYPE certgate_x counter\ncertgate_x 1\n# EOF\n",
        // A sample with no TYPE (certgate declares every family).
        "certgate_y 1\n# EOF\n",
        // A family split in two.
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n# EOF\n",
        // The same series twice.
        "# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"1\"} 2\n# EOF\n",
        // A bad escape and an unterminated label value.
        "# TYPE g gauge\ng{a=\"\\x\"} 1\n# EOF\n",
        "# TYPE g gauge\ng{a=\"1} 1\n# EOF\n",
        // Not a number.
        "# TYPE g gauge\ng one\n# EOF\n",
        // Buckets that shrink, and a +Inf bucket that disagrees with the count.
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n# EOF\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n# EOF\n",
        // A unit the name does not end with.
        "# TYPE d gauge\n# UNIT d seconds\nd 1\n# EOF\n",
    ] {
        assert!(openmetrics::parse(bad).is_err(), "accepted:\n{bad}");
    }
}
