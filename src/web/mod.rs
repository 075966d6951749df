//! Everything HTTP, through axum: the ACME routes (one file per RFC 8555
//! resource), request extraction (signed requests, nonces, URLs), responses,
//! the admin API and the operators' routes. Handlers take the parts of
//! [`AcmeState`] they use as sub-states and leave the rules to `domain`.

pub mod acme;
pub mod admin;
pub mod connections;
pub mod extract;
pub mod nonce;
pub mod ops;
pub mod problems;
pub mod request;
pub mod response;
pub mod track_requests;
pub mod urls;

use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::issuer::local::CRL_PATH;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::accounts::AccountKeys;
use crate::domain::profiles::Profiles;
use crate::domain::workers::Workers;
use crate::protocol::problem::Problem;
use crate::store::Store;
use crate::util::clock::Clock;

/// How long resources live and how long requests wait for background work.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    /// Pending orders and authorizations.
    pub pending: Duration,
    /// An authorization after it became valid.
    pub valid_authorization: Duration,
    /// How long a challenge POST waits for validation to finish before
    /// answering `processing`; finalize waits as long for issuance.
    pub answer_wait: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            pending: Duration::from_secs(7 * 86_400),
            valid_authorization: Duration::from_secs(30 * 86_400),
            answer_wait: Duration::from_secs(3),
        }
    }
}

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AcmeState {
    pub store: Store,
    pub nonces: Arc<nonce::Nonces>,
    pub profiles: Arc<Profiles>,
    /// Starts validations and issuances, which outlive the requests that
    /// ask for them.
    pub workers: Arc<Workers>,
    /// newOrder's rules, with what they use.
    pub orders: Arc<crate::domain::orders::Orders>,
    pub clock: Arc<dyn Clock>,
    pub lifetimes: Lifetimes,
    /// The rate limits newOrder is held to.
    pub rate_limits: crate::config::rate_limits::RateLimits,
    /// Fixed public base URL (`https://acme.example:8443`); when `None` it is
    /// taken from each request's Host header.
    pub external_url: Option<String>,
    /// The embedded root, served at `/ca/root.pem`.
    pub root_pem: Arc<str>,
    /// The last check of the CAs the profiles sign under, for `/metrics`
    /// and `/status`.
    pub ca_health: Arc<crate::domain::ca_health::CaHealth>,
    /// The key that decrypts external account keys (`eab_key_file`).
    pub eab: crate::domain::eab::Keyring,
    /// What certgate counts, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Where account, order, issuance and revocation events are recorded.
    pub audit: crate::audit::AuditLog,
    /// Runs the checks of `/ready` and `/status`, one at a time.
    pub readiness: Arc<crate::domain::readiness::ReadinessProbe>,
    /// The Vault client the Vault profiles share, when any profile uses Vault.
    pub vault: Option<Arc<crate::vault::Vault>>,
}

impl axum::extract::FromRef<AcmeState> for urls::UrlSource {
    fn from_ref(state: &AcmeState) -> Self {
        Self {
            external_url: state.external_url.clone(),
            profiles: state.profiles.clone(),
        }
    }
}

impl axum::extract::FromRef<AcmeState> for request::RequestChecks {
    fn from_ref(state: &AcmeState) -> Self {
        Self {
            urls: urls::UrlSource::from_ref(state),
            nonces: state.nonces.clone(),
            accounts: AccountKeys::from_ref(state),
        }
    }
}

impl axum::extract::FromRef<AcmeState> for crate::domain::finalize::Finalize {
    fn from_ref(state: &AcmeState) -> Self {
        Self {
            store: state.store.clone(),
            workers: state.workers.clone(),
            rate_limits: state.rate_limits,
            clock: state.clock.clone(),
            answer_wait: state.lifetimes.answer_wait,
        }
    }
}

impl axum::extract::FromRef<AcmeState> for AccountKeys {
    fn from_ref(state: &AcmeState) -> Self {
        AccountKeys::new(state.store.clone())
    }
}

/// Lets a handler take one part of the state (`State<Store>`,
/// `State<Arc<dyn Clock>>`, …) instead of all of it: each handler names
/// exactly what it uses.
macro_rules! parts_of_the_state {
    ($($field:ident: $part:ty),* $(,)?) => {
        $(
            impl axum::extract::FromRef<AcmeState> for $part {
                fn from_ref(state: &AcmeState) -> Self {
                    state.$field.clone()
                }
            }
        )*
    };
}

parts_of_the_state! {
    store: Store,
    nonces: Arc<nonce::Nonces>,
    profiles: Arc<Profiles>,
    workers: Arc<Workers>,
    orders: Arc<crate::domain::orders::Orders>,
    clock: Arc<dyn Clock>,
    lifetimes: Lifetimes,
    rate_limits: crate::config::rate_limits::RateLimits,
    root_pem: Arc<str>,
    eab: crate::domain::eab::Keyring,
    metrics: Arc<crate::metrics::Metrics>,
    audit: crate::audit::AuditLog,
    readiness: Arc<crate::domain::readiness::ReadinessProbe>,
    vault: Option<Arc<crate::vault::Vault>>,
    ca_health: Arc<crate::domain::ca_health::CaHealth>,
}

/// Unknown paths and methods of the operators' routes, as problem documents.
fn unknown_as_problems(router: Router<AcmeState>) -> Router<AcmeState> {
    router
        .fallback(|| async { Problem::not_found("resource") })
        .method_not_allowed_fallback(|| async {
            Problem::malformed("method not allowed on this resource")
                .with_status(StatusCode::METHOD_NOT_ALLOWED)
        })
}

/// The whole HTTP application of the main listener; `/status` lists
/// certificates as `table` says.
pub fn router(state: AcmeState, table: ops::status_page::CertificateTable) -> Router {
    let metrics = state.metrics.clone();
    let operators = Router::new()
        .route("/", get(ops::index))
        .route("/ca/root.pem", get(ops::root_pem))
        .route(CRL_PATH, get(ops::crl::crl_der))
        .merge(ops::health::routes())
        .merge(ops::metrics::routes())
        .merge(ops::status_page::routes(table));
    unknown_as_problems(operators)
        .with_state(state.clone())
        .merge(acme::router(state))
        // `layer` wraps each route, so the template a request matched
        // (`MatchedPath`) is known when the request is counted.
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            track_requests::track_requests,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        account = tracing::field::Empty,
                        order = tracing::field::Empty,
                    )
                })
                // One line per request answered is noise at `info` (seven a
                // certificate) and cost a good part of a request's CPU:
                // it is a DEBUG line, under the `tower_http` target.
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
}

/// The plain-HTTP listener of `metrics-listen`: `/metrics` only.
pub fn metrics_router(state: AcmeState) -> Router {
    unknown_as_problems(ops::metrics::routes()).with_state(state)
}
