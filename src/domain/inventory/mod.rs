//! Operating certgate's inventory: what the `certs` and `accounts`
//! commands and the admin HTTP API share: the same queries, the same JSON
//! objects ([`view`]) and the same actions.

pub mod export;
pub mod filter;
pub mod view;

use crate::audit::{Actor, AuditEvent, AuditLog};
use crate::protocol::status::AccountStatus;
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

/// What deactivating an account came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deactivation {
    Deactivated,
    /// The account was no longer valid; it stays as it was.
    AlreadyInactive(AccountStatus),
    Unknown,
}

/// Deactivates account `id` for an operator, as the account itself could
/// (RFC 8555 §7.3.6): it can no longer order, and its unfinished orders
/// become invalid. Only an actual change is audited.
pub async fn deactivate_account(
    store: &Store,
    audit: &AuditLog,
    id: &str,
    by: Actor,
    now: i64,
) -> StoreResult<Deactivation> {
    if store.deactivate_account(id, now).await? {
        tracing::info!(account = id, ?by, "account deactivated by an operator");
        audit
            .record(AuditEvent::AccountDeactivated {
                account: id.to_owned(),
                by,
            })
            .await;
        return Ok(Deactivation::Deactivated);
    }
    Ok(match store.account(id).await? {
        Some(account) => Deactivation::AlreadyInactive(account.status),
        None => Deactivation::Unknown,
    })
}
