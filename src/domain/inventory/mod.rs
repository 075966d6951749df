//! Operating certgate's inventory: what the `certs` and `accounts`
//! commands and the admin HTTP API share: the same queries, the same JSON
//! objects ([`view`]) and the same actions (deactivating an account is
//! [`super::accounts::deactivate_account`], shared with ACME itself).

pub mod export;
pub mod export_dir;
pub mod filter;
pub mod sync;
pub mod view;

use crate::store::inventory::CertificateFilter;
use crate::store::vault_certificates::VaultFilter;
use crate::store::{Store, StoreResult};
use view::CertificateView;

/// The certificates `filter` selects, as operators see them: one query for
/// `certs list` and the admin API alike. Those the inventory sync found at
/// Vault come with certgate's own, soonest expiry first.
pub async fn certificate_views(
    store: &Store,
    filter: &CertificateFilter,
    now: i64,
) -> StoreResult<Vec<CertificateView>> {
    let mut views: Vec<(i64, CertificateView)> = store
        .list_certificates(filter, now)
        .await?
        .iter()
        .map(|certificate| {
            (
                certificate.not_after,
                CertificateView::new(certificate, now),
            )
        })
        .collect();
    if filter.account_id.is_none() {
        let vault_filter = VaultFilter {
            mount: None,
            expiring_by: filter.expiring_by,
            revoked_only: filter.revoked_only,
            include_superseded: filter.include_superseded,
            profile: filter.profile.clone(),
        };
        views.extend(
            store
                .list_vault_certificates(&vault_filter, now)
                .await?
                .iter()
                .map(|c| (c.not_after, CertificateView::from_vault(c, now))),
        );
    }
    views.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.serial.cmp(&b.1.serial)));
    let limit = filter
        .limit
        .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(0));
    Ok(views.into_iter().take(limit).map(|(_, v)| v).collect())
}
