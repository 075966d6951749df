//! What happens to an account whoever asks for it: the account itself over
//! ACME (RFC 8555 §7.3.6), an operator through the admin API or
//! `certgate accounts deactivate`. One function per change, so the store
//! transition, the log line and the audit record cannot drift apart between
//! the callers; each caller only words the outcome for its audience.

use crate::audit::{Actor, AuditEvent, AuditLog};
use crate::protocol::problem::Problem;
use crate::protocol::status::AccountStatus;
use crate::store::{Account, Store, StoreResult};

/// The accounts a signed request may name by `kid`, and nothing else of the
/// store: what checking a request's signature needs.
#[derive(Clone)]
pub struct AccountKeys {
    store: Store,
}

impl AccountKeys {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Account `id`, with its key and status, if it exists.
    pub async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        self.store.account(id).await
    }
}

/// What deactivating an account came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deactivation {
    Deactivated,
    /// The account was no longer valid (a concurrent request may have
    /// deactivated it first); it stays as it was.
    AlreadyInactive(AccountStatus),
    Unknown,
}

/// Deactivates account `id` on behalf of `by`: it can no longer order, its
/// unfinished orders become invalid and its authorizations deactivated, in
/// one transaction. Only an actual change is logged and audited, so asking
/// twice leaves one record.
pub async fn deactivate_account(
    store: &Store,
    audit: &AuditLog,
    id: &str,
    by: Actor,
    now: i64,
) -> StoreResult<Deactivation> {
    let why = Problem::unauthorized("account was deactivated");
    if store.deactivate_account(id, &why, now).await? {
        tracing::info!(account = id, ?by, "account deactivated");
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuditLogTarget;
    use crate::protocol::identifier::Identifier;
    use crate::protocol::status::{AuthorizationStatus, OrderStatus};
    use crate::store::testing::{on_both_backends, TestDatabase};
    use crate::store::{NewAuthorization, NewChallenge, NewOrder, OrderAuthorization};

    const NOW: i64 = 1_700_000_000;

    /// A store in a temporary directory with one valid account holding one
    /// pending order of one pending authorization.
    async fn store_with_pending_order() -> (TestDatabase, Store, AuditLog) {
        let (dir, store) = crate::store::testing::with_account("acct", NOW).await;
        let audit = AuditLog::open(&AuditLogTarget::Off, store.clone()).unwrap();
        let identifier = Identifier::from_value("nas.lab.example");
        let order = NewOrder {
            id: "order".into(),
            account_id: "acct".into(),
            profile: "default".into(),
            identifiers: vec![identifier.clone()],
            expires_at: NOW + 3600,
            authorizations: vec![OrderAuthorization::New(NewAuthorization {
                id: "authz".into(),
                identifier,
                wildcard: false,
                expires_at: NOW + 3600,
                challenges: vec![NewChallenge {
                    id: "challenge".into(),
                    kind: crate::protocol::challenge::ChallengeKind::Http01,
                    token: "token".into(),
                }],
            })],
            replaces: None,
        };
        store
            .create_order_within_limits(&order, &Default::default(), NOW)
            .await
            .unwrap()
            .unwrap();
        (dir, store, audit)
    }

    on_both_backends! {
        async fn deactivation_cancels_pending_work_and_is_audited_once() {
            let (_dir, store, audit) = store_with_pending_order().await;
            let outcome = deactivate_account(&store, &audit, "acct", Actor::Cli, NOW)
                .await
                .unwrap();
            assert_eq!(outcome, Deactivation::Deactivated);
            let account = store.account("acct").await.unwrap().unwrap();
            assert_eq!(account.status, AccountStatus::Deactivated);
            let order = store.order("order").await.unwrap().unwrap();
            assert_eq!(order.status, OrderStatus::Invalid);
            let authz = store.authorization("authz").await.unwrap().unwrap();
            assert_eq!(authz.status, AuthorizationStatus::Deactivated);

            // Asking again changes nothing and records nothing more.
            let again = deactivate_account(&store, &audit, "acct", Actor::AdminApi, NOW)
                .await
                .unwrap();
            assert_eq!(
                again,
                Deactivation::AlreadyInactive(AccountStatus::Deactivated)
            );
            let unknown = deactivate_account(&store, &audit, "nobody", Actor::Cli, NOW)
                .await
                .unwrap();
            assert_eq!(unknown, Deactivation::Unknown);

            let records = store.audit_records().await.unwrap();
            assert_eq!(records.len(), 1, "{records:?}");
            let record: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
            assert_eq!(record["event"], "account_deactivated");
            assert_eq!(record["account"], "acct");
            assert_eq!(record["by"], serde_json::json!({"kind": "cli"}));
        }
    }
}
