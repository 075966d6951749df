//! External account binding keys: stored encrypted (see [`crate::domain::eab`]),
//! bound to at most one account by a compare-and-set.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::accounts::{account_with_key, insert_account};
use super::{Account, NewAccount, Store, StoreError, StoreResult};

const COLUMNS: &str = "kid, profile, key_ciphertext, key_nonce, names, note, created_at,
                       expires_at, revoked_at, account_id, bound_at";

/// One `eab_keys` row. The HMAC key is only here encrypted.
#[derive(Clone)]
pub struct EabKeyRecord {
    pub kid: String,
    pub profile: String,
    /// AES-256-GCM ciphertext of the HMAC key, tag appended.
    pub key_ciphertext: Vec<u8>,
    pub key_nonce: Vec<u8>,
    /// Name patterns the bound account may order; `None` means no limit.
    pub names: Option<Vec<String>>,
    pub note: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub account_id: Option<String>,
    pub bound_at: Option<i64>,
}

impl std::fmt::Debug for EabKeyRecord {
    /// Leaves the (encrypted) key material out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabKeyRecord")
            .field("kid", &self.kid)
            .field("profile", &self.profile)
            .field("names", &self.names)
            .field("note", &self.note)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("account_id", &self.account_id)
            .field("bound_at", &self.bound_at)
            .finish_non_exhaustive()
    }
}

impl EabKeyRecord {
    /// True once `expires_at` has passed.
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What binding a key while creating an account came to.
#[derive(Debug)]
pub enum BoundAccount {
    /// The account was created and the key now names it.
    Created(Account),
    /// An account already held the JWK (a concurrent newAccount with the
    /// same key won); nothing was bound, nothing created.
    Existing(Account),
    /// The key was bound, revoked or expired by the time of the write, or
    /// is not a key of the profile; no account was created.
    KeyUnavailable,
}

/// What `revoke_eab_key` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    AlreadyRevoked(i64),
    Unknown,
}

fn record_from_row(row: &AnyRow) -> StoreResult<EabKeyRecord> {
    let names: Option<String> = row.try_get("names")?;
    Ok(EabKeyRecord {
        kid: row.try_get("kid")?,
        profile: row.try_get("profile")?,
        key_ciphertext: row.try_get("key_ciphertext")?,
        key_nonce: row.try_get("key_nonce")?,
        names: names.map(|n| serde_json::from_str(&n)).transpose()?,
        note: row.try_get("note")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        account_id: row.try_get("account_id")?,
        bound_at: row.try_get("bound_at")?,
    })
}

impl Store {
    /// Stores a new key; `bound_at`, `revoked_at` and `account_id` of
    /// `record` are ignored (a new key is unused).
    pub async fn insert_eab_key(&self, record: &EabKeyRecord) -> StoreResult<()> {
        let names = record
            .names
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?;
        let record = record.clone();
        self.write(move |connection| {
            let (record, names) = (record.clone(), names.clone());
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO eab_keys (kid, profile, key_ciphertext, key_nonce, names, note,
                                           created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&record.kid)
                .bind(&record.profile)
                .bind(&record.key_ciphertext)
                .bind(&record.key_nonce)
                .bind(names)
                .bind(&record.note)
                .bind(record.created_at)
                .bind(record.expires_at)
                .execute(&mut *connection)
                .await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn eab_key(&self, kid: &str) -> StoreResult<Option<EabKeyRecord>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM eab_keys WHERE kid = $1"))
            .bind(kid)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Every key, oldest first.
    pub async fn eab_keys(&self) -> StoreResult<Vec<EabKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM eab_keys ORDER BY created_at, kid"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Marks a key revoked, once.
    pub async fn revoke_eab_key(&self, kid: &str, now: i64) -> StoreResult<RevokeOutcome> {
        let owned_kid = kid.to_owned();
        let done = self
            .write(move |connection| {
                let owned_kid = owned_kid.clone();
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE eab_keys SET revoked_at = $1 WHERE kid = $2 AND revoked_at IS NULL",
                    )
                    .bind(now)
                    .bind(owned_kid)
                    .execute(&mut *connection)
                    .await?;
                    Ok(done.rows_affected())
                })
            })
            .await?;
        if done == 1 {
            return Ok(RevokeOutcome::Revoked);
        }
        Ok(match self.eab_key(kid).await? {
            Some(EabKeyRecord {
                revoked_at: Some(at),
                ..
            }) => RevokeOutcome::AlreadyRevoked(at),
            _ => RevokeOutcome::Unknown,
        })
    }

    /// Creates account `id` and binds key `kid` of `profile` to it in one
    /// write transaction: the key is taken by a compare-and-set (unbound,
    /// unrevoked, unexpired), so of two accounts racing for one key exactly
    /// one is created, and an account is never left behind without the
    /// binding it was created with.
    pub async fn create_account_with_eab(
        &self,
        id: &str,
        new: &NewAccount,
        kid: &str,
        profile: &str,
        now: i64,
    ) -> StoreResult<BoundAccount> {
        let (id, new, kid, profile) = (
            id.to_owned(),
            new.clone(),
            kid.to_owned(),
            profile.to_owned(),
        );
        self.write(move |connection| {
            let (id, new, kid, profile) = (id.clone(), new.clone(), kid.clone(), profile.clone());
            // The transaction holds the write lock from its start, so what
            // these reads find still holds when the writes below run.
            Box::pin(async move {
                if let Some(existing) =
                    account_with_key(&mut *connection, &new.key_thumbprint).await?
                {
                    return Ok(BoundAccount::Existing(existing));
                }
                let available: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM eab_keys
                     WHERE kid = $1 AND profile = $2 AND account_id IS NULL
                       AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)",
                )
                .bind(&kid)
                .bind(&profile)
                .bind(now)
                .fetch_optional(&mut *connection)
                .await?;
                if available.is_none() {
                    return Ok(BoundAccount::KeyUnavailable);
                }
                insert_account(connection, &id, &new, now).await?;
                sqlx::query("UPDATE eab_keys SET account_id = $1, bound_at = $2 WHERE kid = $3")
                    .bind(&id)
                    .bind(now)
                    .bind(&kid)
                    .execute(&mut *connection)
                    .await?;
                let account = account_with_key(&mut *connection, &new.key_thumbprint)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("account vanished after insert".into()))?;
                Ok(BoundAccount::Created(account))
            })
        })
        .await
    }
}
