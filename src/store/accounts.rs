//! Accounts: keyed by id, unique by key thumbprint.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{Account, NewAccount, Store, StoreError, StoreResult};
use crate::acme::status::AccountStatus;

const COLUMNS: &str = "id, key_thumbprint, jwk, contact, tos_agreed, status, created_at";

pub(super) fn account_from_row(row: &SqliteRow) -> StoreResult<Account> {
    let status: String = row.try_get("status")?;
    Ok(Account {
        id: row.try_get("id")?,
        key_thumbprint: row.try_get("key_thumbprint")?,
        jwk: serde_json::from_str(row.try_get("jwk")?)?,
        contact: serde_json::from_str(row.try_get("contact")?)?,
        tos_agreed: row.try_get("tos_agreed")?,
        status: AccountStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("account status {status:?}")))?,
        created_at: row.try_get("created_at")?,
    })
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
        let inserted = sqlx::query(
            "INSERT INTO accounts (id, key_thumbprint, jwk, contact, tos_agreed, status, created_at)
             VALUES (?, ?, ?, ?, ?, 'valid', ?)
             ON CONFLICT (key_thumbprint) DO NOTHING",
        )
        .bind(id)
        .bind(&new.key_thumbprint)
        .bind(new.jwk.to_string())
        .bind(serde_json::to_string(&new.contact)?)
        .bind(new.tos_agreed)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let account = self
            .account_by_thumbprint(&new.key_thumbprint)
            .await?
            .ok_or_else(|| StoreError::Corrupt("account vanished after insert".into()))?;
        Ok((account, inserted))
    }

    pub async fn account(&self, id: &str) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM accounts WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub async fn account_by_thumbprint(&self, thumbprint: &str) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE key_thumbprint = ?"
        ))
        .bind(thumbprint)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Replaces the contact list of a valid account.
    pub async fn update_account_contact(&self, id: &str, contact: &[String]) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE accounts SET contact = ? WHERE id = ? AND status = 'valid'")
            .bind(serde_json::to_string(contact)?)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
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
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query(
            "UPDATE accounts SET key_thumbprint = ?, jwk = ?
             WHERE id = ? AND key_thumbprint = ? AND status = 'valid'",
        )
        .bind(new_thumbprint)
        .bind(new_jwk.to_string())
        .bind(id)
        .bind(old_thumbprint)
        .execute(&mut *tx)
        .await;
        let outcome = match updated {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                // SQLite undoes only the failed statement; the transaction
                // and its write lock are still held.
                let holder: Option<String> =
                    sqlx::query_scalar("SELECT id FROM accounts WHERE key_thumbprint = ?")
                        .bind(new_thumbprint)
                        .fetch_optional(&mut *tx)
                        .await?;
                Err(holder.ok_or_else(|| {
                    StoreError::Corrupt("key thumbprint conflict without a holder".into())
                })?)
            }
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// valid → deactivated. Unfinished orders of the account become invalid
    /// in the same transaction (RFC 8555 §7.3.6: pending operations are cancelled).
    pub async fn deactivate_account(&self, id: &str, now: i64) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE accounts SET status = 'deactivated' WHERE id = ? AND status = 'valid'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            let problem = crate::acme::problem::Problem::unauthorized("account was deactivated");
            sqlx::query(
                "UPDATE orders SET status = 'invalid', error = ?, updated_at = ?
                 WHERE account_id = ? AND status IN ('pending', 'ready')",
            )
            .bind(serde_json::to_string(&problem)?)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE authorizations SET status = 'deactivated'
                 WHERE account_id = ? AND status IN ('pending', 'valid')",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }
}
