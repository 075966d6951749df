//! Operating certgate's inventory: what the `certs` and `accounts`
//! commands and the admin HTTP API share: the same queries, the same JSON
//! objects ([`view`]) and the same actions (deactivating an account is
//! [`super::accounts::deactivate_account`], shared with ACME itself).

pub mod export;
pub mod filter;
pub mod view;

use crate::store::inventory::CertificateFilter;
use crate::store::{Store, StoreResult};
use view::CertificateView;

/// The certificates `filter` selects, as operators see them: one query for
/// `certs list` and the admin API alike.
pub async fn certificate_views(
    store: &Store,
    filter: &CertificateFilter,
    now: i64,
) -> StoreResult<Vec<CertificateView>> {
    Ok(store
        .list_certificates(filter, now)
        .await?
        .iter()
        .map(|certificate| CertificateView::new(certificate, now))
        .collect())
}
