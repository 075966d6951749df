//! The gauges of the last CA health check (see
//! [`crate::domain::ca_health`]), added to a scrape's registry.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use crate::domain::ca_health::CaReport;
use crate::metrics::ProfileLabels;

type TimeGauge = Gauge<f64, AtomicU64>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaLabels {
    /// `embedded`, or the Vault mount.
    ca: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CaCertificateLabels {
    ca: String,
    subject: String,
}

/// Adds the gauges of `report` to `registry`; each of `profiles` gets its
/// `ca_expires_before_leaves` series, at 0 unless the report flags it.
/// Nothing is added before the first check.
pub fn register(registry: &mut Registry, report: Option<&CaReport>, profiles: &[String]) {
    let Some(report) = report else {
        return;
    };
    let readable = Family::<CaLabels, Gauge>::default();
    let not_after = Family::<CaCertificateLabels, TimeGauge>::default();
    let next_update = Family::<CaLabels, TimeGauge>::default();
    let stale = Family::<CaLabels, Gauge>::default();
    for ca in &report.cas {
        let labels = CaLabels {
            ca: ca.name.clone(),
        };
        readable
            .get_or_create(&labels)
            .set(i64::from(ca.state.is_ok()));
        let Ok(state) = &ca.state else {
            continue;
        };
        for certificate in &state.certificates {
            not_after
                .get_or_create(&CaCertificateLabels {
                    ca: ca.name.clone(),
                    subject: certificate.subject.clone(),
                })
                .set(certificate.not_after as f64);
        }
        if let Some(next) = state.crl_next_update {
            next_update.get_or_create(&labels).set(next as f64);
            stale
                .get_or_create(&labels)
                .set(i64::from(state.crl_is_stale(report.checked_at)));
        }
    }
    let short = Family::<ProfileLabels, Gauge>::default();
    for profile in profiles {
        let flagged = report.short.iter().any(|s| &s.profile == profile);
        short
            .get_or_create(&ProfileLabels {
                profile: profile.clone(),
            })
            .set(i64::from(flagged));
    }
    registry.register(
        "ca_check_succeeded",
        "Whether the last CA health check (hourly) could read the CA's certificates and CRL: 1 or 0, by CA (embedded or the Vault mount)",
        readable,
    );
    registry.register_with_unit(
        "ca_certificate_not_after",
        "When each CA certificate of a CA's chain expires (unix time), by CA and certificate subject",
        Unit::Seconds,
        not_after,
    );
    registry.register(
        "ca_expires_before_leaves",
        "1 when a CA certificate above a profile's certificates expires before a certificate issued now would, by profile",
        short,
    );
    registry.register_with_unit(
        "crl_next_update",
        "When the CA's CRL says it will next be updated (unix time), by CA",
        Unit::Seconds,
        next_update,
    );
    registry.register(
        "crl_stale",
        "1 when the CA's CRL is past its next update, by CA",
        stale,
    );
}
