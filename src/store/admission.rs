//! The two writes that take rate-limit tokens with what the tokens pay
//! for: a new order, and a finalize. Both are units of the
//! [`Isolation::RowLocks`](super::backend::Isolation) kind: every client's
//! finalize takes from the bucket of its registered domain, one hot row
//! that SERIALIZABLE would send most of them back to run again, so on
//! PostgreSQL each unit locks what it decides on (the account, the order,
//! the buckets) before it reads it, and concurrent ones wait their turn.

use sqlx::{AnyConnection, Row};

use super::backend::Backend;
use super::orders::insert_order;
use super::rate_limits::{check_tokens_on, take_tokens_on};
use super::reuse::reusable_authorization_on;
use super::{Lease, NewOrder, OrderAuthorization, Store, StoreResult};
use crate::config::rate_limits::{Bucket, OrderLimits, OrderRefusal, RateLimitRefusal};

/// Holds `account_id`'s row until the unit ends (nothing to do on SQLite,
/// whose units run one at a time).
async fn lock_account(
    connection: &mut AnyConnection,
    backend: Backend,
    account_id: &str,
) -> StoreResult<()> {
    let lock = backend.for_update();
    if !lock.is_empty() {
        sqlx::query(&format!("SELECT id FROM accounts WHERE id = $1 {lock}"))
            .bind(account_id)
            .fetch_optional(&mut *connection)
            .await?;
    }
    Ok(())
}

/// The authorizations of account `$1` pending and live at `$2`: how many,
/// and when the first expires. Read by every newOrder, through the partial
/// index on pending authorizations (migration 0012).
pub(super) const PENDING_OF_ACCOUNT: &str =
    "SELECT COUNT(*) AS pending, MIN(expires_at) AS earliest FROM authorizations
     WHERE account_id = $1 AND status = 'pending' AND expires_at > $2";

/// When `order` would leave its account with more than `limit` pending
/// authorizations: the seconds until the earliest pending one expires (0
/// when it has none, the order alone being too large).
async fn pending_over_cap(
    connection: &mut AnyConnection,
    order: &NewOrder,
    limit: u32,
    now: i64,
) -> StoreResult<Option<u64>> {
    let new = order
        .authorizations
        .iter()
        .filter(|a| {
            matches!(
                a,
                OrderAuthorization::New(_) | OrderAuthorization::ReuseOrNew(_)
            )
        })
        .count() as i64;
    let row = sqlx::query(PENDING_OF_ACCOUNT)
        .bind(&order.account_id)
        .bind(now)
        .fetch_one(&mut *connection)
        .await?;
    let pending: i64 = row.try_get("pending")?;
    if new == 0 || pending + new <= i64::from(limit) {
        return Ok(None);
    }
    let earliest: Option<i64> = row.try_get("earliest")?;
    Ok(Some(
        earliest.map_or(0, |at| at.saturating_sub(now).max(0) as u64),
    ))
}

/// Decides each [`OrderAuthorization::ReuseOrNew`] of `order`: the valid
/// authorization it may reuse, else the new one.
async fn resolve_reuse(
    connection: &mut AnyConnection,
    order: &mut NewOrder,
    now: i64,
) -> StoreResult<()> {
    let NewOrder {
        account_id,
        profile,
        authorizations,
        ..
    } = order;
    for authorization in authorizations.iter_mut() {
        let OrderAuthorization::ReuseOrNew(new) = authorization else {
            continue;
        };
        let reusable = reusable_authorization_on(
            connection,
            account_id,
            &new.identifier,
            new.wildcard,
            profile,
            now,
        )
        .await?;
        *authorization = match reusable {
            Some(id) => OrderAuthorization::Reused(id),
            None => OrderAuthorization::New(new.clone()),
        };
    }
    Ok(())
}

impl Store {
    /// Stores the order with its new authorizations and challenges, in one
    /// write transaction behind a lock on its account, if it passes its `limits`: a token from each
    /// bucket `taken` (the account's new orders), a token present in each
    /// bucket `checked` (those its certificate will take from), and no more
    /// pending authorizations for the account, new ones included, than
    /// allowed. All or nothing: a refusal (`Ok(Err(..))`) leaves every
    /// bucket as it was and stores nothing; an order that fails to be stored
    /// rolls its tokens back with it. So a taken token always has its
    /// order, and a client is never charged for an order it did not get.
    pub async fn create_order_within_limits(
        &self,
        order: &NewOrder,
        limits: &OrderLimits,
        now: i64,
    ) -> StoreResult<Result<(), OrderRefusal>> {
        let (order, limits, backend) = (order.clone(), limits.clone(), self.backend);
        self.write_row_locked(move |connection| {
            let (mut order, limits) = (order.clone(), limits.clone());
            Box::pin(async move {
                // The account's requests queue here: its pending
                // authorizations and its new-order bucket are its own.
                lock_account(connection, backend, &order.account_id).await?;
                resolve_reuse(connection, &mut order, now).await?;
                if let Some(limit) = limits.pending_authorizations {
                    if let Some(expires_in) =
                        pending_over_cap(connection, &order, limit, now).await?
                    {
                        return Ok(Err(OrderRefusal::PendingAuthorizations {
                            limit,
                            expires_in,
                        }));
                    }
                }
                if let Err(refusal) = check_tokens_on(connection, &limits.checked, now).await? {
                    return Ok(Err(OrderRefusal::RateLimit(refusal)));
                }
                if let Err(refusal) =
                    take_tokens_on(connection, backend, &limits.taken, now).await?
                {
                    return Ok(Err(OrderRefusal::RateLimit(refusal)));
                }
                insert_order(connection, &order, now).await?;
                Ok(Ok(()))
            })
        })
        .await
    }

    /// ready → processing with the accepted CSR, taking `lease` on the
    /// issuance and one token from each of `buckets` (the certificate's
    /// per-domain buckets) in the same transaction. Exactly one of any number of concurrent finalize
    /// requests gets `Ok(true)` and goes on to issue; the others get
    /// `Ok(false)`, and `Err(refusal)` when a bucket is empty (the order
    /// stays ready and no token is taken).
    pub async fn begin_finalize(
        &self,
        order_id: &str,
        csr_der: &[u8],
        buckets: &[Bucket],
        now: i64,
        lease: &Lease,
    ) -> StoreResult<Result<bool, RateLimitRefusal>> {
        let (order_id, csr_der, buckets, lease) = (
            order_id.to_owned(),
            csr_der.to_vec(),
            buckets.to_vec(),
            lease.clone(),
        );
        let backend = self.backend;
        self.write_row_locked(move |connection| {
            let (order_id, csr_der, buckets, lease) = (
                order_id.clone(),
                csr_der.clone(),
                buckets.clone(),
                lease.clone(),
            );
            Box::pin(async move {
                // Locked until the unit ends: a concurrent finalize of the
                // same order waits here, then finds it no longer ready and
                // takes no token.
                let ready: Option<i64> = sqlx::query_scalar(&format!(
                    "SELECT 1 FROM orders WHERE id = $1 AND status = 'ready' AND expires_at > $2 {}",
                    backend.for_update()
                ))
                .bind(&order_id)
                .bind(now)
                .fetch_optional(&mut *connection)
                .await?;
                if ready.is_none() {
                    return Ok(Ok(false));
                }
                if let Err(refusal) = take_tokens_on(connection, backend, &buckets, now).await? {
                    return Ok(Err(refusal));
                }
                // The order is locked since the read above (SQLite: the
                // write lock), so it is still ready; the condition stays
                // as a guard.
                let done = sqlx::query(
                    "UPDATE orders SET status = 'processing', csr = $1, updated_at = $2,
                                       lease_owner = $5, lease_until = $6
                     WHERE id = $3 AND status = 'ready' AND expires_at > $4",
                )
                .bind(csr_der)
                .bind(now)
                .bind(&order_id)
                .bind(now)
                .bind(lease.owner)
                .bind(lease.until)
                .execute(&mut *connection)
                .await?;
                Ok(Ok(done.rows_affected() == 1))
            })
        })
        .await
    }
}
