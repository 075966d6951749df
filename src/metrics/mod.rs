//! Prometheus metrics: what certgate counts while it works, and what it
//! reads from the database when scraped.
//!
//! Counters and histograms live in one [`Metrics`] that the handlers, the
//! background tasks and the Vault client share: they count what this
//! process did, so each replica has its own, and their help texts say so.
//! Whatever the database already knows (orders by status, certificates by
//! expiry) is not counted along the way but read from the database
//! ([`database`]: in the background, at most seconds before a scrape), so
//! it stays right across restarts and is the same on every replica, as
//! those gauges' help texts say. Every label takes its values from a set
//! bounded by the code or the configuration (route templates, profiles,
//! Vault paths, status codes), never from a request or a certificate, so
//! the number of series cannot grow without bound.

pub mod database;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Every metric name starts with `certgate_`.
pub const PREFIX: &str = "certgate";

/// Upper bounds (seconds) of the latency histograms: from a local
/// signature (milliseconds) to a Vault that is retried for a minute.
const LATENCY_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

type Latencies<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The route template (`/acme/order/{id}`), never the raw path.
    endpoint: String,
    status: u16,
}

/// The label of every per-profile family, counted or read at a scrape.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProfileLabels {
    pub profile: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IssuanceLabels {
    profile: String,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ValidationLabels {
    method: &'static str,
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VaultPathLabels {
    path: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VaultCallLabels {
    path: String,
    outcome: &'static str,
}

/// How an issuance ended, for `certgate_issuances_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuanceResult {
    /// The certificate is stored; its latency is observed too.
    Issued(Duration),
    /// The order failed with a problem document.
    Failed,
}

/// Every metric certgate counts as it works; shared by the handlers, the
/// background tasks and the Vault client.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    issuances: Family<IssuanceLabels, Counter>,
    issuance_latency: Latencies<ProfileLabels>,
    answers_lost: Family<ProfileLabels, Counter>,
    validations: Family<ValidationLabels, Counter>,
    vault_calls: Family<VaultCallLabels, Counter>,
    vault_latency: Latencies<VaultPathLabels>,
    /// The database's counts a scrape reports.
    database: Arc<database::DatabaseCounts>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::default();
        let issuances = Family::default();
        let issuance_latency = Latencies::new_with_constructor(latency_histogram as fn() -> _);
        let answers_lost = Family::default();
        let validations = Family::default();
        let vault_calls = Family::default();
        let vault_latency = Latencies::new_with_constructor(latency_histogram as fn() -> _);
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register(
            "http_requests",
            "HTTP requests this process answered, by route template and status code",
            requests.clone(),
        );
        registry.register(
            "issuances",
            "Orders this process ended in a certificate (result=issued) or a failure (result=failed), by profile",
            issuances.clone(),
        );
        registry.register_with_unit(
            "issuance_duration",
            "Time from the start of signing to the stored certificate, by profile, of the issuances this process ran",
            Unit::Seconds,
            issuance_latency.clone(),
        );
        registry.register(
            "issuance_answers_lost",
            "Signing requests of this process whose answer from the CA was lost, by profile: the CA may hold a certificate certgate never recorded (see the issuance_answer_lost audit event)",
            answers_lost.clone(),
        );
        registry.register(
            "validations",
            "Challenge validations this process finished, by method and result (valid or invalid)",
            validations.clone(),
        );
        registry.register(
            "vault_requests",
            "Calls this process made to Vault, by configured path and outcome",
            vault_calls.clone(),
        );
        registry.register_with_unit(
            "vault_request_duration",
            "Time a call of this process to Vault took, every address tried included, by configured path",
            Unit::Seconds,
            vault_latency.clone(),
        );
        Self {
            registry,
            requests,
            issuances,
            issuance_latency,
            answers_lost,
            validations,
            vault_calls,
            vault_latency,
            database: Arc::default(),
        }
    }
}

impl Metrics {
    /// The counters and histograms, for a scrape to encode.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The database's counts, kept for scrapes.
    pub fn database(&self) -> &Arc<database::DatabaseCounts> {
        &self.database
    }

    /// One HTTP request answered.
    pub fn request(&self, endpoint: String, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, status })
            .inc();
    }

    /// One order of `profile` finished issuing.
    pub fn issuance(&self, profile: &str, result: IssuanceResult) {
        let (label, latency) = match result {
            IssuanceResult::Issued(latency) => ("issued", Some(latency)),
            IssuanceResult::Failed => ("failed", None),
        };
        self.issuances
            .get_or_create(&IssuanceLabels {
                profile: profile.to_owned(),
                result: label,
            })
            .inc();
        if let Some(latency) = latency {
            self.issuance_latency
                .get_or_create(&ProfileLabels {
                    profile: profile.to_owned(),
                })
                .observe(latency.as_secs_f64());
        }
    }

    /// A signing request of `profile` whose answer was lost.
    pub fn answer_lost(&self, profile: &str) {
        self.answers_lost
            .get_or_create(&ProfileLabels {
                profile: profile.to_owned(),
            })
            .inc();
    }

    /// Makes sure `profile` has a lost-answer series, at zero until one is
    /// lost: a missing series cannot be told from a scrape that failed, and
    /// an alert on `increase()` needs the zero to start from.
    pub fn expect_answers_lost(&self, profile: &str) {
        drop(self.answers_lost.get_or_create(&ProfileLabels {
            profile: profile.to_owned(),
        }));
    }

    /// One challenge validation reached its final result.
    pub fn validation(&self, method: &'static str, valid: bool) {
        let result = if valid { "valid" } else { "invalid" };
        self.validations
            .get_or_create(&ValidationLabels { method, result })
            .inc();
    }

    /// One call to Vault at `path` (as configured, e.g.
    /// `pki_int/sign/lab-internal`) ended with `outcome` after `elapsed`.
    pub fn vault_call(&self, path: &str, outcome: &'static str, elapsed: Duration) {
        self.vault_calls
            .get_or_create(&VaultCallLabels {
                path: path.to_owned(),
                outcome,
            })
            .inc();
        self.vault_latency
            .get_or_create(&VaultPathLabels {
                path: path.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }
}
