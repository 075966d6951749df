//! The routes for operators and for what sits around certgate: health and
//! readiness, metrics, the status page, the embedded CA's root and CRL.

pub mod crl;
pub mod health;
pub mod metrics;
pub mod status_page;
