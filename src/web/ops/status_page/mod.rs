//! `/status`: a read-only HTML page for people: the profiles, the readiness
//! checks (the same as `/ready`, so Vault's state) and, where allowed, the
//! valid certificates that expire soonest. The names and serials of that
//! table are an inventory of the network, so the public listener shows it
//! only when `status-page-certificates` says so; the admin listener always
//! does, behind its token. Rendered on the server; the page carries no
//! script, and its Content-Security-Policy would refuse one.

mod ca;
mod html;
mod render;

use std::sync::LazyLock;

use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::config::profiles::DEFAULT_RENEWAL_WINDOW_START;
use crate::protocol::ari::suggested_window;
use crate::protocol::problem::Problem;
use crate::store::inventory::CertificateFilter;
use crate::web::urls::Urls;
use crate::web::AcmeState;

use crate::domain::ca_health::CaHealth;
use crate::domain::profiles::Profiles;
use crate::domain::readiness::ReadinessProbe;
use crate::store::Store;
use crate::util::clock::Clock;
use render::{CertificateRow, ProfileRow, StatusPage};
use std::sync::Arc;

/// How many certificates the page lists: enough to see what needs
/// attention, few enough to stay one screen of a table.
const CERTIFICATES_SHOWN: i64 = 50;

/// Only the page's own stylesheet may apply: no scripts, images, frames,
/// forms or base URL, and no other site may frame the page.
static POLICY: LazyLock<String> = LazyLock::new(|| {
    let style = STANDARD.encode(Sha256::digest(render::STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{style}'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
});

/// Whether a listener's `/status` lists certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateTable {
    Shown,
    Hidden,
}

async fn status(
    table: CertificateTable,
    State(store): State<Store>,
    State(profiles): State<Arc<Profiles>>,
    State(clock): State<Arc<dyn Clock>>,
    State(readiness): State<Arc<ReadinessProbe>>,
    State(ca_health): State<Arc<CaHealth>>,
    urls: Urls,
) -> Result<Response, Problem> {
    let now = clock.now();
    let filter = CertificateFilter {
        // Every certificate still in use: not revoked, not expired.
        expiring_by: Some(i64::MAX),
        limit: Some(CERTIFICATES_SHOWN),
        ..CertificateFilter::default()
    };
    let listing = async {
        match table {
            CertificateTable::Shown => store.list_certificates(&filter, now).await.map(Some),
            CertificateTable::Hidden => Ok(None),
        }
    };
    let (readiness, certificates) = tokio::join!(readiness.current(), listing);
    let certificates =
        certificates.map_err(|e| Problem::internal("reading the certificates failed", &e))?;
    let default = &profiles.default_profile().name;
    let rows: Vec<ProfileRow> = profiles
        .iter()
        .map(|profile| ProfileRow {
            name: profile.name.clone(),
            is_default: &profile.name == default,
            issuer: profile.issuer.describe(),
            description: profile.description.clone(),
            directory: urls.clone().in_profile(&profile.name).directory(),
            outcome: readiness
                .of_profile(&profile.name)
                .cloned()
                .unwrap_or_else(|| Err("not checked".to_owned())),
        })
        .collect();
    let certificates = certificates.map(|certificates| {
        certificates
            .into_iter()
            .map(|certificate| {
                // A certificate of a profile since removed from the configuration
                // is judged by the default window.
                let window_start = profiles
                    .get(&certificate.profile)
                    .map_or(DEFAULT_RENEWAL_WINDOW_START, |p| p.renewal_window_start);
                CertificateRow {
                    renewal_window: suggested_window(
                        certificate.not_before,
                        certificate.not_after,
                        window_start,
                        false,
                        now,
                    ),
                    serial: certificate.serial,
                    names: certificate.names,
                    profile: certificate.profile,
                    not_before: certificate.not_before,
                    not_after: certificate.not_after,
                }
            })
            .collect()
    });
    let page = StatusPage {
        now,
        readiness,
        profiles: rows,
        certificates,
        limit: CERTIFICATES_SHOWN,
        ca: ca_health.last(),
    };
    Ok((
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CONTENT_SECURITY_POLICY, POLICY.as_str()),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (CACHE_CONTROL, "no-store"),
        ],
        render::page(&page),
    )
        .into_response())
}

/// `/status`, listing certificates or not.
pub fn routes(table: CertificateTable) -> Router<AcmeState> {
    Router::new().route(
        "/status",
        get(
            move |store, profiles, clock, readiness, ca_health, urls| async move {
                status(table, store, profiles, clock, readiness, ca_health, urls).await
            },
        ),
    )
}
