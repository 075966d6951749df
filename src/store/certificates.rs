//! Issued certificates. A certificate row is committed together with the
//! order turning valid, so a client never hears "valid" for a certificate the
//! database does not have.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Certificate, NewCertificate, Store, StoreResult};
use crate::protocol::identifier::Identifier;

/// The columns [`certificate_from_row`] reads.
pub(super) const CERTIFICATE_COLUMNS: &str = "id, order_id, account_id, profile, serial, names, chain_pem, not_before, not_after, revoked_at, revocation_reason, created_at, superseded_by";

pub(super) fn certificate_from_row(row: &AnyRow) -> StoreResult<Certificate> {
    Ok(Certificate {
        id: row.try_get("id")?,
        order_id: row.try_get("order_id")?,
        account_id: row.try_get("account_id")?,
        profile: row.try_get("profile")?,
        serial: row.try_get("serial")?,
        names: serde_json::from_str(row.try_get("names")?)?,
        chain_pem: row.try_get("chain_pem")?,
        not_before: row.try_get("not_before")?,
        not_after: row.try_get("not_after")?,
        revoked_at: row.try_get("revoked_at")?,
        revocation_reason: row.try_get("revocation_reason")?,
        created_at: row.try_get("created_at")?,
        superseded_by: row.try_get("superseded_by")?,
    })
}

impl Store {
    /// Stores the certificate and turns its order processing → valid, in one
    /// transaction. False (and nothing written) if the order was not processing.
    pub async fn complete_order(
        &self,
        order_id: &str,
        certificate: &NewCertificate,
        now: i64,
    ) -> StoreResult<bool> {
        let (order_id, certificate) = (order_id.to_owned(), certificate.clone());
        let names = serde_json::to_string(&certificate.names)?;
        self.write(move |connection| {
            let (order_id, certificate, names) = (order_id.clone(), certificate.clone(), names.clone());
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE orders SET status = 'valid', error = NULL, updated_at = $1,
                                       lease_owner = NULL, lease_until = NULL
                     WHERE id = $2 AND status = 'processing'",
                )
                .bind(now)
                .bind(&order_id)
                .execute(&mut *connection)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO certificates (id, order_id, account_id, profile, serial, names,
                                               chain_pem, not_before, not_after, created_at)
                     SELECT $1, id, account_id, profile, $2, $3, $4, $5, $6, $7 FROM orders WHERE id = $8",
                )
                .bind(&certificate.id)
                .bind(&certificate.serial)
                .bind(names)
                .bind(&certificate.chain_pem)
                .bind(certificate.not_before)
                .bind(certificate.not_after)
                .bind(now)
                .bind(&order_id)
                .execute(&mut *connection)
                .await?;
                sqlx::query(super::superseded::SUPERSEDE_BY_NEW)
                    .bind(&certificate.id)
                    .execute(&mut *connection)
                    .await?;
                Ok(true)
            })
        })
        .await
    }

    pub async fn certificate(&self, id: &str) -> StoreResult<Option<Certificate>> {
        let row = sqlx::query(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(certificate_from_row).transpose()
    }

    /// Records a revocation the CA confirmed. False (and nothing written)
    /// when the certificate was already revoked: of two concurrent
    /// revocations, one wins.
    pub async fn revoke_certificate(&self, id: &str, reason: i64, now: i64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |connection| {
            let id = id.clone();
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE certificates SET revoked_at = $1, revocation_reason = $2
                     WHERE id = $3 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(reason)
                .bind(id)
                .execute(&mut *connection)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Revoked certificates that expire after `not_after_from`, oldest
    /// revocation first: what a CRL must still list.
    pub async fn revoked_certificates(&self, not_after_from: i64) -> StoreResult<Vec<Certificate>> {
        let rows = sqlx::query(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates
             WHERE revoked_at IS NOT NULL AND not_after > $1
             ORDER BY revoked_at, serial"
        ))
        .bind(not_after_from)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(certificate_from_row).collect()
    }

    /// Whether `account_id` holds a valid, unexpired authorization for each
    /// of `identifiers` (any wildcard flag: control of a name covers its
    /// wildcard too). What lets an account revoke a certificate it did not
    /// order (RFC 8555 §7.6).
    pub async fn holds_authorizations_for(
        &self,
        account_id: &str,
        identifiers: &[Identifier],
        now: i64,
    ) -> StoreResult<bool> {
        for identifier in identifiers {
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM authorizations
                 WHERE account_id = $1 AND identifier_type = $2
                   AND identifier_value = $3 AND status = 'valid' AND expires_at > $4
                 LIMIT 1",
            )
            .bind(account_id)
            .bind(identifier.kind.as_str())
            .bind(&identifier.value)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            if held.is_none() {
                return Ok(false);
            }
        }
        Ok(!identifiers.is_empty())
    }

    /// How many certificates were issued for an order (tests and audits).
    pub async fn certificate_count_for_order(&self, order_id: &str) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM certificates WHERE order_id = $1")
                .bind(order_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
