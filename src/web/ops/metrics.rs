//! One `/metrics` scrape: the counters certgate keeps, followed by gauges
//! of the database's counts (taken at most seconds before, see
//! [`crate::metrics::database`]) and of the Vault client at that moment.
//!
//! The gauges go into a registry made for the one scrape, so two scrapes at
//! once never see each other's half-written values.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::http::header;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::ca_health::{CaHealth, CaReport};
use crate::domain::profiles::Profiles;
use crate::metrics::database::{Counts, EXPIRY_HORIZONS, FRESH_FOR};
use crate::metrics::{Metrics, ProfileLabels};
use crate::protocol::status::OrderStatus;
use crate::store::{Store, StoreError};
use crate::util::clock::Clock;
use crate::vault::Vault;
use crate::web::AcmeState;
use std::sync::Arc;

/// What `/metrics` answers with: the OpenMetrics text format, which
/// Prometheus asks for and reads.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every order status, so that each has a series even at zero.
const ORDER_STATUSES: [OrderStatus; 5] = [
    OrderStatus::Pending,
    OrderStatus::Ready,
    OrderStatus::Processing,
    OrderStatus::Valid,
    OrderStatus::Invalid,
];

type SecondsGauge = Gauge<f64, AtomicU64>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExpiringLabels {
    profile: String,
    within: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountLabels {
    mount: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountExpiringLabels {
    mount: String,
    within: &'static str,
}

/// What the database and the Vault client say at the time of a scrape.
struct Snapshot {
    now: i64,
    counts: Arc<Counts>,
    /// Every configured profile, so each has a series even at zero.
    profiles: Vec<String>,
    /// The Vault token's remaining life, when there is a token that expires.
    vault_token_ttl: Option<Duration>,
    /// The last CA health check, once there is one.
    ca: Option<Arc<CaReport>>,
}

impl Snapshot {
    async fn take(state: &ScrapeSources) -> Result<Self, StoreError> {
        let vault_token_ttl = match &state.vault {
            Some(vault) => vault.token_ttl().await,
            None => None,
        };
        let database = state.metrics.database();
        Ok(Self {
            now: state.clock.now(),
            counts: database
                .for_scrape(&state.store, state.clock.as_ref())
                .await?,
            profiles: state.profiles.iter().map(|p| p.name.clone()).collect(),
            vault_token_ttl,
            ca: state.ca_health.last(),
        })
    }

    /// The gauges, in a registry of their own. Each order status and each
    /// configured profile has its series, at zero when nothing is counted.
    fn registry(&self) -> Registry {
        let mut registry = Registry::with_prefix(crate::metrics::PREFIX);

        let orders = Family::<StatusLabels, Gauge>::default();
        for status in ORDER_STATUSES {
            let count = self.counts.orders.iter().find(|(s, _)| *s == status);
            orders
                .get_or_create(&StatusLabels {
                    status: status.as_str(),
                })
                .set(count.map_or(0, |(_, n)| *n));
        }
        registry.register("orders", fresh("Orders in the database, by status"), orders);

        let valid = Family::<ProfileLabels, Gauge>::default();
        let expiring = Family::<ExpiringLabels, Gauge>::default();
        let earliest = Family::<ProfileLabels, SecondsGauge>::default();
        let mut profiles: BTreeSet<&str> = self.profiles.iter().map(String::as_str).collect();
        let certificates = &self.counts.certificates;
        profiles.extend(certificates.iter().map(|c| c.profile.as_str()));
        for profile in profiles {
            let stats = certificates.iter().find(|c| c.profile == profile);
            let labels = ProfileLabels {
                profile: profile.to_owned(),
            };
            valid
                .get_or_create(&labels)
                .set(stats.map_or(0, |s| s.valid));
            for (index, (within, _)) in EXPIRY_HORIZONS.iter().enumerate() {
                expiring
                    .get_or_create(&ExpiringLabels {
                        profile: profile.to_owned(),
                        within,
                    })
                    .set(stats.map_or(0, |s| s.expiring[index]));
            }
            if let Some(stats) = stats {
                earliest
                    .get_or_create(&labels)
                    .set((stats.earliest_not_after - self.now) as f64);
            }
        }
        registry.register(
            "certificates_valid",
            fresh("Certificates neither revoked nor expired, by profile"),
            valid,
        );
        registry.register(
            "certificates_expiring",
            fresh(
                "Certificates neither revoked nor expired that expire within 30d or 7d, by profile",
            ),
            expiring,
        );
        registry.register_with_unit(
            "certificates_earliest_expiry",
            fresh("Time until the soonest expiry among the certificates in use, by profile"),
            Unit::Seconds,
            earliest,
        );

        let vault_valid = Family::<MountLabels, Gauge>::default();
        let vault_expiring = Family::<MountExpiringLabels, Gauge>::default();
        for stats in &self.counts.vault {
            let mount = stats.profile.clone();
            vault_valid
                .get_or_create(&MountLabels {
                    mount: mount.clone(),
                })
                .set(stats.valid);
            for (index, (within, _)) in EXPIRY_HORIZONS.iter().enumerate() {
                vault_expiring
                    .get_or_create(&MountExpiringLabels {
                        mount: mount.clone(),
                        within,
                    })
                    .set(stats.expiring[index]);
            }
        }
        registry.register(
            "vault_certificates_valid",
            fresh("Certificates the inventory sync found at Vault, neither revoked nor expired nor superseded, by mount"),
            vault_valid,
        );
        registry.register(
            "vault_certificates_expiring",
            fresh("Of those, the ones that expire within 30d or 7d, by mount"),
            vault_expiring,
        );

        let superseded = Family::<ProfileLabels, Gauge>::default();
        for profile in self.profiles.iter() {
            drop(superseded.get_or_create(&ProfileLabels {
                profile: profile.clone(),
            }));
        }
        for count in &self.counts.superseded {
            superseded
                .get_or_create(&ProfileLabels {
                    profile: count.profile.clone(),
                })
                .set(count.count);
        }
        registry.register(
            "certificates_superseded",
            fresh("Certificates neither revoked nor expired that a newer one for the same names replaced, by profile (vault:<mount> for those found at Vault); not in the other certificate gauges"),
            superseded,
        );

        super::ca_metrics::register(&mut registry, self.ca.as_deref(), &self.profiles);

        if let Some(ttl) = self.vault_token_ttl {
            let gauge = SecondsGauge::default();
            gauge.set(ttl.as_secs_f64());
            registry.register_with_unit(
                "vault_token_ttl",
                "Time until this process's Vault token expires unless renewed",
                Unit::Seconds,
                gauge,
            );
        }
        registry
    }
}

/// The help text of a gauge of the database's counts, saying how old they
/// may be.
fn fresh(help: &str) -> String {
    format!(
        "{help}; read from the database at most {}s before the scrape, the same on every replica",
        FRESH_FOR.as_secs()
    )
}

/// What one scrape reads: the counters, and the sources of the gauges.
#[derive(Clone)]
pub struct ScrapeSources {
    store: Store,
    profiles: Arc<Profiles>,
    vault: Option<Arc<Vault>>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    ca_health: Arc<CaHealth>,
}

impl FromRef<AcmeState> for ScrapeSources {
    fn from_ref(state: &AcmeState) -> Self {
        Self {
            store: state.store.clone(),
            profiles: state.profiles.clone(),
            vault: state.vault.clone(),
            metrics: state.metrics.clone(),
            clock: state.clock.clone(),
            ca_health: state.ca_health.clone(),
        }
    }
}

/// The whole exposition: counters, then this scrape's gauges, then `# EOF`.
async fn render(state: &ScrapeSources) -> Result<String, StoreError> {
    let snapshot = Snapshot::take(state).await?;
    // Only a CA that signs elsewhere can lose an answer.
    for profile in state.profiles.iter().filter(|p| p.issuer.signs_remotely()) {
        state.metrics.expect_answers_lost(&profile.name);
    }
    let mut text = String::new();
    encode_registry(&mut text, state.metrics.registry())
        .and_then(|()| encode_registry(&mut text, &snapshot.registry()))
        .and_then(|()| encode_eof(&mut text))
        .expect("writing into a String never fails");
    Ok(text)
}

/// `GET /metrics`.
async fn metrics(State(state): State<ScrapeSources>) -> Response {
    match render(&state).await {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading the database for /metrics failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the database did not answer; the server log has details\n",
            )
                .into_response()
        }
    }
}

/// `/metrics`, for the main listener and the `--metrics-listen` one.
pub fn routes() -> Router<AcmeState> {
    Router::new().route("/metrics", get(metrics))
}
