//! Certificates found at Vault PKI mounts by the inventory sync
//! (`domain::inventory::sync`): what certgate did not issue through ACME,
//! and what it asked for but never heard back about (a lost answer).

use std::collections::HashSet;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::inventory::normalize_serial;
use super::{Store, StoreResult};
use crate::protocol::identifier::Identifier;

/// One certificate read from `<mount>/cert/<serial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultCertificate {
    pub mount: String,
    /// Lower-case hex, no separators, no leading zero byte.
    pub serial: String,
    pub role: Option<String>,
    pub names: Vec<String>,
    pub chain_pem: String,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
    pub public_key_sha256: String,
    pub is_ca: bool,
    /// The ACME order whose lost answer this certificate was.
    pub order_id: Option<String>,
    pub account_id: Option<String>,
    pub profile: Option<String>,
    pub superseded_by: Option<String>,
    pub synced_at: i64,
}

/// An order that failed because the CA's answer was lost: the CA may hold
/// its certificate.
#[derive(Debug, Clone)]
pub struct LostAnswer {
    pub order_id: String,
    pub account_id: String,
    pub profile: String,
    pub identifiers: Vec<Identifier>,
    pub csr: Vec<u8>,
}

/// Which Vault certificates to list. `None` fields do not narrow.
#[derive(Debug, Clone, Default)]
pub struct VaultFilter {
    pub mount: Option<String>,
    /// Only those still in use whose not-after is at most this.
    pub expiring_by: Option<i64>,
    pub revoked_only: bool,
    /// Superseded ones too.
    pub include_superseded: bool,
    /// Only the certificates linked to an order of this profile.
    pub profile: Option<String>,
}

const COLUMNS: &str = "mount, serial, role, names, chain_pem, not_before, not_after, revoked_at,
     public_key_sha256, is_ca, order_id, account_id, profile, superseded_by, synced_at";

fn from_row(row: &AnyRow) -> StoreResult<VaultCertificate> {
    Ok(VaultCertificate {
        mount: row.try_get("mount")?,
        serial: row.try_get("serial")?,
        role: row.try_get("role")?,
        names: serde_json::from_str(row.try_get("names")?)?,
        chain_pem: row.try_get("chain_pem")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        revoked_at: row.try_get("revoked_at")?,
        public_key_sha256: row.try_get("public_key_sha256")?,
        is_ca: row.try_get::<i64, _>("is_ca")? != 0,
        order_id: row.try_get("order_id")?,
        account_id: row.try_get("account_id")?,
        profile: row.try_get("profile")?,
        superseded_by: row.try_get("superseded_by")?,
        synced_at: row.try_get("synced_at")?,
    })
}

impl Store {
    /// Every serial the inventory already holds for `mount` (normalized):
    /// those read from it before, and every certificate certgate issued
    /// itself, which Vault lists too.
    pub async fn known_vault_serials(&self, mount: &str) -> StoreResult<HashSet<String>> {
        let read: Vec<String> =
            sqlx::query_scalar("SELECT serial FROM vault_certificates WHERE mount = $1")
                .bind(mount)
                .fetch_all(&self.pool)
                .await?;
        let issued: Vec<String> = sqlx::query_scalar("SELECT serial FROM certificates")
            .fetch_all(&self.pool)
            .await?;
        Ok(read
            .into_iter()
            .chain(issued.iter().map(|s| normalize_serial(s)))
            .collect())
    }

    /// Stores certificates read from Vault in one write; one already there
    /// (a sync running beside another) is left as it is. Returns how many
    /// were new.
    pub async fn insert_vault_certificates(
        &self,
        certificates: Vec<VaultCertificate>,
    ) -> StoreResult<u64> {
        if certificates.is_empty() {
            return Ok(0);
        }
        let mut rows = Vec::with_capacity(certificates.len());
        for c in certificates {
            let names = serde_json::to_string(&c.names)?;
            rows.push((c, names));
        }
        self.write(move |connection| {
            let rows = rows.clone();
            Box::pin(async move {
                let mut stored = 0;
                for (c, names) in rows {
                    let done = sqlx::query(&format!(
                        "INSERT INTO vault_certificates ({COLUMNS})
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                         ON CONFLICT (mount, serial) DO NOTHING"
                    ))
                    .bind(&c.mount)
                    .bind(&c.serial)
                    .bind(&c.role)
                    .bind(names)
                    .bind(&c.chain_pem)
                    .bind(c.not_before)
                    .bind(c.not_after)
                    .bind(c.revoked_at)
                    .bind(&c.public_key_sha256)
                    .bind(i64::from(c.is_ca))
                    .bind(&c.order_id)
                    .bind(&c.account_id)
                    .bind(&c.profile)
                    .bind(&c.superseded_by)
                    .bind(c.synced_at)
                    .execute(&mut *connection)
                    .await?;
                    stored += done.rows_affected();
                }
                Ok(stored)
            })
        })
        .await
    }

    /// The serials of `mount` the inventory holds as not revoked.
    pub async fn unrevoked_vault_serials(&self, mount: &str) -> StoreResult<HashSet<String>> {
        let serials: Vec<String> = sqlx::query_scalar(
            "SELECT serial FROM vault_certificates WHERE mount = $1 AND revoked_at IS NULL",
        )
        .bind(mount)
        .fetch_all(&self.pool)
        .await?;
        Ok(serials.into_iter().collect())
    }

    /// Marks certificates of `mount` revoked at the given times; returns
    /// how many were not marked before.
    pub async fn mark_vault_revoked(
        &self,
        mount: &str,
        revoked: Vec<(String, i64)>,
    ) -> StoreResult<u64> {
        if revoked.is_empty() {
            return Ok(0);
        }
        let mount = mount.to_owned();
        self.write(move |connection| {
            let (mount, revoked) = (mount.clone(), revoked.clone());
            Box::pin(async move {
                let mut marked = 0;
                for (serial, at) in revoked {
                    let done = sqlx::query(
                        "UPDATE vault_certificates SET revoked_at = $1
                         WHERE mount = $2 AND serial = $3 AND revoked_at IS NULL",
                    )
                    .bind(at)
                    .bind(&mount)
                    .bind(serial)
                    .execute(&mut *connection)
                    .await?;
                    marked += done.rows_affected();
                }
                Ok(marked)
            })
        })
        .await
    }

    /// Orders that failed on a lost answer from the CA and have no
    /// certificate linked yet: what a sync may find at Vault.
    pub async fn unlinked_lost_answers(&self) -> StoreResult<Vec<LostAnswer>> {
        let rows = sqlx::query(
            "SELECT o.id, o.account_id, o.profile, o.identifiers, o.csr FROM orders o
             WHERE o.status = 'invalid' AND o.sign_attempted_at IS NOT NULL
               AND o.csr IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.order_id = o.id)
               AND NOT EXISTS (SELECT 1 FROM vault_certificates v WHERE v.order_id = o.id)",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LostAnswer {
                    order_id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    profile: row.try_get("profile")?,
                    identifiers: serde_json::from_str(row.try_get("identifiers")?)?,
                    csr: row.try_get("csr")?,
                })
            })
            .collect()
    }

    /// Leaf certificates of `mount` over the public key with this hash that
    /// no order is linked to yet.
    pub async fn unlinked_vault_certificates_by_key(
        &self,
        mount: &str,
        public_key_sha256: &str,
    ) -> StoreResult<Vec<VaultCertificate>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vault_certificates
             WHERE mount = $1 AND public_key_sha256 = $2 AND is_ca = 0 AND order_id IS NULL
             ORDER BY not_before"
        ))
        .bind(mount)
        .bind(public_key_sha256)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Links a certificate found at Vault to the order whose answer was lost.
    pub async fn link_vault_certificate(
        &self,
        mount: &str,
        serial: &str,
        answer: &LostAnswer,
        role: Option<&str>,
    ) -> StoreResult<bool> {
        let (mount, serial) = (mount.to_owned(), serial.to_owned());
        let (order, account, profile) = (
            answer.order_id.clone(),
            answer.account_id.clone(),
            answer.profile.clone(),
        );
        let role = role.map(str::to_owned);
        self.write(move |connection| {
            let (mount, serial, order, account, profile, role) = (
                mount.clone(),
                serial.clone(),
                order.clone(),
                account.clone(),
                profile.clone(),
                role.clone(),
            );
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE vault_certificates
                     SET order_id = $1, account_id = $2, profile = $3, role = COALESCE(role, $4)
                     WHERE mount = $5 AND serial = $6 AND order_id IS NULL",
                )
                .bind(order)
                .bind(account)
                .bind(profile)
                .bind(role)
                .bind(mount)
                .bind(serial)
                .execute(&mut *connection)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Leaf certificates found at Vault that `filter` selects, soonest
    /// expiry first.
    pub async fn list_vault_certificates(
        &self,
        filter: &VaultFilter,
        now: i64,
    ) -> StoreResult<Vec<VaultCertificate>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM vault_certificates
             WHERE is_ca = 0
               AND ($1 IS NULL OR mount = $1)
               AND ($2 IS NULL OR (revoked_at IS NULL AND not_after > $3 AND not_after <= $2))
               AND ($4 = 0 OR revoked_at IS NOT NULL)
               AND ($5 = 1 OR superseded_by IS NULL)
               AND ($6 IS NULL OR profile = $6)
             ORDER BY not_after, serial"
        ))
        .bind(&filter.mount)
        .bind(filter.expiring_by)
        .bind(now)
        .bind(i64::from(filter.revoked_only))
        .bind(i64::from(filter.include_superseded))
        .bind(&filter.profile)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }
}
