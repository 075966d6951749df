//! Accounts: keyed by id, unique by key thumbprint.

use sqlx::Row;
use sqlx::{any::AnyRow, AnyConnection};

use super::{Account, AccountBinding, NewAccount, Store, StoreError, StoreResult};
use crate::protocol::status::AccountStatus;

/// An account's columns with its binding's (`a` and `e`), read by
/// [`account_from_row`].
pub(super) const ACCOUNT_COLUMNS: &str =
    "a.id, a.key_thumbprint, a.jwk, a.contact, a.tos_agreed, a.status, a.created_at,
     e.kid AS eab_kid, e.revoked_at AS eab_revoked_at";
/// Accounts with the external account key each was bound with, if any.
pub(super) const ACCOUNTS_AND_BINDINGS: &str =
    "accounts a LEFT JOIN eab_keys e ON e.account_id = a.id";

pub(super) fn account_from_row(row: &AnyRow) -> StoreResult<Account> {
    let status: String = row.try_get("status")?;
    Ok(Account {
        id: row.try_get("id")?,
        key_thumbprint: row.try_get("key_thumbprint")?,
        jwk: serde_json::from_str(row.try_get("jwk")?)?,
        contact: serde_json::from_str(row.try_get("contact")?)?,
        // 0 or 1: SQLite has no boolean, and both backends store the same.
        tos_agreed: row
            .try_get::<Option<i64>, _>("tos_agreed")?
            .map(|agreed| agreed != 0),
        status: AccountStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("account status {status:?}")))?,
        created_at: row.try_get("created_at")?,
        binding: row
            .try_get::<Option<String>, _>("eab_kid")?
            .map(|kid| -> StoreResult<AccountBinding> {
                Ok(AccountBinding {
                    kid,
                    revoked: row.try_get::<Option<i64>, _>("eab_revoked_at")?.is_some(),
                })
            })
            .transpose()?,
    })
}

/// The row of a new valid account, unless one already holds its key; true
/// when inserted. Shared by the two ways an account is created.
pub(super) async fn insert_account(
    connection: &mut AnyConnection,
    id: &str,
    new: &NewAccount,
    now: i64,
) -> StoreResult<bool> {
    Ok(sqlx::query(
        "INSERT INTO accounts (id, key_thumbprint, jwk, contact, tos_agreed, status, created_at)
         VALUES ($1, $2, $3, $4, $5, 'valid', $6)
         ON CONFLICT (key_thumbprint) DO NOTHING",
    )
    .bind(id)
    .bind(&new.key_thumbprint)
    .bind(new.jwk.to_string())
    .bind(serde_json::to_string(&new.contact)?)
    .bind(new.tos_agreed.map(i64::from))
    .bind(now)
    .execute(&mut *connection)
    .await?
    .rows_affected()
        == 1)
}

/// The account that holds key `thumbprint`, read through `executor` (the
/// readers, or a write unit's connection).
pub(super) async fn account_with_key<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    thumbprint: &str,
) -> StoreResult<Option<Account>> {
    let row = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNTS_AND_BINDINGS} WHERE a.key_thumbprint = $1"
    ))
    .bind(thumbprint)
    .fetch_optional(executor)
    .await?;
    row.as_ref().map(account_from_row).transpose()
}

impl Store {
    /// Creates the account unless one already holds the key; either way returns
    /// the stored account and whether it was created now. Two concurrent
    /// newAccount requests with one key therefore end with one account.
    pub async fn create_account(
        &self,
        id: &str,
        new: &NewAccount,
        now: i64,
    ) -> StoreResult<(Account, bool)> {
        let (id, new) = (id.to_owned(), new.clone());
        self.write(move |connection| {
            let (id, new) = (id.clone(), new.clone());
            Box::pin(async move {
                let inserted = insert_account(connection, &id, &new, now).await?;
                let account = account_with_key(&mut *connection, &new.key_thumbprint)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("account vanished after insert".into()))?;
                Ok((account, inserted))
            })
        })
        .await
    }

    pub async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNTS_AND_BINDINGS} WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn account_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Option<Account>> {
        account_with_key(&self.pool, thumbprint).await
    }

    /// Replaces the contact list of a valid account.
    pub async fn update_account_contact(&self, id: &str, contact: &[String]) -> StoreResult<bool> {
        let (id, contact) = (id.to_owned(), serde_json::to_string(contact)?);
        self.write(move |connection| {
            let (id, contact) = (id.clone(), contact.clone());
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE accounts SET contact = $1 WHERE id = $2 AND status = 'valid'",
                )
                .bind(contact)
                .bind(id)
                .execute(&mut *connection)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Moves a valid account from the key `old_thumbprint` to `new_jwk`
    /// (keyChange, RFC 8555 §7.3.5). The update is a compare-and-set on the
    /// old key, so of two concurrent rollovers only one wins.
    ///
    /// `Ok(true)`: the key was changed. `Ok(false)`: the account no longer
    /// has the old key or is no longer valid. `Err(id)`: the new key already
    /// belongs to account `id` (the UNIQUE thumbprint said so; the lookup
    /// runs in the same write transaction, so `id` is the current holder).
    pub async fn update_account_key(
        &self,
        id: &str,
        old_thumbprint: &str,
        new_thumbprint: &str,
        new_jwk: &serde_json::Value,
    ) -> StoreResult<Result<bool, String>> {
        let (id, old_thumbprint, new_thumbprint, new_jwk) = (
            id.to_owned(),
            old_thumbprint.to_owned(),
            new_thumbprint.to_owned(),
            new_jwk.to_string(),
        );
        self.write(move |connection| {
            let (id, old_thumbprint, new_thumbprint, new_jwk) = (
                id.clone(),
                old_thumbprint.clone(),
                new_thumbprint.clone(),
                new_jwk.clone(),
            );
            Box::pin(async move {
                let updated = sqlx::query(
                    "UPDATE accounts SET key_thumbprint = $1, jwk = $2
                     WHERE id = $3 AND key_thumbprint = $4 AND status = 'valid'",
                )
                .bind(&new_thumbprint)
                .bind(new_jwk)
                .bind(id)
                .bind(old_thumbprint)
                .execute(&mut *connection)
                .await;
                match updated {
                    Ok(done) => Ok(Ok(done.rows_affected() == 1)),
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        // SQLite undoes only the failed statement; the
                        // transaction and its write lock are still held.
                        let holder = account_with_key(&mut *connection, &new_thumbprint)
                            .await?
                            .ok_or_else(|| {
                                StoreError::Corrupt(
                                    "key thumbprint conflict without a holder".into(),
                                )
                            })?;
                        Ok(Err(holder.id))
                    }
                    Err(e) => Err(e.into()),
                }
            })
        })
        .await
    }

    /// valid → deactivated. Unfinished orders of the account become invalid
    /// in the same transaction (RFC 8555 §7.3.6: pending operations are
    /// cancelled), with `why` as their error.
    pub async fn deactivate_account(
        &self,
        id: &str,
        why: &crate::protocol::problem::Problem,
        now: i64,
    ) -> StoreResult<bool> {
        let id = id.to_owned();
        let problem = serde_json::to_string(why)?;
        self.write(move |connection| {
            let (id, problem) = (id.clone(), problem.clone());
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE accounts SET status = 'deactivated' WHERE id = $1 AND status = 'valid'",
                )
                .bind(&id)
                .execute(&mut *connection)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE orders SET status = 'invalid', error = $1, updated_at = $2
                     WHERE account_id = $3 AND status IN ('pending', 'ready')",
                )
                .bind(problem)
                .bind(now)
                .bind(&id)
                .execute(&mut *connection)
                .await?;
                sqlx::query(
                    "UPDATE authorizations SET status = 'deactivated'
                     WHERE account_id = $1 AND status IN ('pending', 'valid')",
                )
                .bind(&id)
                .execute(&mut *connection)
                .await?;
                Ok(true)
            })
        })
        .await
    }
}
