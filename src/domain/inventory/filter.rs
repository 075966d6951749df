//! Turning what an operator typed (`--expiring-within 30d`,
//! `?expiring_within=30d`) into a [`CertificateFilter`], one way for the
//! command line and the admin API alike.

use crate::config::{parse_duration, ConfigError};
use crate::store::inventory::CertificateFilter;

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("expiring within: {0}")]
    ExpiringWithin(ConfigError),
    /// `expiring_by` only ever matches certificates still in use, so the
    /// combination would always be empty; saying so beats an empty list.
    #[error("a revoked certificate is not counted as expiring: ask for revoked or expiring-within, not both")]
    RevokedAndExpiring,
}

/// Certificates of `profile` (any when `None`), still in use and expiring
/// within `expiring_within` of `now` (a duration such as `30d` or `12h`),
/// or revoked ones only; superseded ones too when `all`.
pub fn certificate_filter(
    profile: Option<String>,
    expiring_within: Option<&str>,
    revoked: bool,
    all: bool,
    now: i64,
) -> Result<CertificateFilter, FilterError> {
    if revoked && expiring_within.is_some() {
        return Err(FilterError::RevokedAndExpiring);
    }
    let expiring_by = expiring_within
        .map(parse_duration)
        .transpose()
        .map_err(FilterError::ExpiringWithin)?
        .map(|within| crate::util::clock::seconds_after(now, within));
    Ok(CertificateFilter {
        profile: profile.filter(|p| !p.is_empty()),
        expiring_by,
        revoked_only: revoked,
        include_superseded: all,
        ..CertificateFilter::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_within_counts_from_now() {
        let filter =
            certificate_filter(Some("lab".into()), Some("30d"), false, false, 1_000).unwrap();
        assert_eq!(filter.expiring_by, Some(1_000 + 30 * 86_400));
        assert_eq!(filter.profile.as_deref(), Some("lab"));
        assert!(!filter.revoked_only);
        assert!(!filter.include_superseded);
    }

    #[test]
    fn nonsense_is_refused_with_what_was_typed() {
        let error = certificate_filter(None, Some("soon"), false, false, 0).unwrap_err();
        assert!(error.to_string().contains("\"soon\""), "{error}");
        assert!(matches!(
            certificate_filter(None, Some("30d"), true, false, 0),
            Err(FilterError::RevokedAndExpiring)
        ));
    }
}
