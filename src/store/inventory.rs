//! Reading the inventory for operators: certificates by profile, expiry
//! and revocation, one certificate by serial, and the accounts. Shared by
//! the `certs`/`accounts` commands, the admin API and the status page.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::accounts::{account_from_row, ACCOUNTS_AND_BINDINGS, ACCOUNT_COLUMNS};
use super::certificates::{certificate_from_row, CERTIFICATE_COLUMNS};
use super::{Account, Certificate, Store, StoreResult};

/// Which certificates to list. Every field narrows; the default lists all.
#[derive(Debug, Clone, Default)]
pub struct CertificateFilter {
    pub profile: Option<String>,
    /// Only certificates still in use (neither revoked nor expired at
    /// `now`) whose not-after is at most this (unix seconds).
    pub expiring_by: Option<i64>,
    /// Only revoked certificates.
    pub revoked_only: bool,
    pub account_id: Option<String>,
    /// At most this many, soonest expiry first.
    pub limit: Option<i64>,
    /// Superseded certificates too (see `store::superseded`).
    pub include_superseded: bool,
}

/// Where a certificate stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateState {
    Valid,
    Expired,
    Revoked,
}

impl CertificateState {
    pub fn of(certificate: &Certificate, now: i64) -> Self {
        if certificate.revoked_at.is_some() {
            Self::Revoked
        } else if certificate.not_after <= now {
            Self::Expired
        } else {
            Self::Valid
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

/// A serial as operators type it: hex, any case, with or without `:`, with
/// or without the leading zero byte DER adds to keep a serial positive.
pub fn normalize_serial(text: &str) -> String {
    let hex: String = text
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    match hex.strip_prefix("00") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => hex,
    }
}

impl Store {
    /// Certificates matching `filter`, soonest expiry first.
    pub async fn list_certificates(
        &self,
        filter: &CertificateFilter,
        now: i64,
    ) -> StoreResult<Vec<Certificate>> {
        // One statement for every filter: a filter left out binds NULL
        // (or false) and its condition holds for every row.
        let rows = sqlx::query(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificates
             WHERE ($1 IS NULL OR profile = $1)
               AND ($2 IS NULL OR account_id = $2)
               AND ($3 IS NULL OR (revoked_at IS NULL AND not_after > $4 AND not_after <= $3))
               AND ($5 = 0 OR revoked_at IS NOT NULL)
               AND ($7 = 1 OR superseded_by IS NULL)
             ORDER BY not_after, serial
             LIMIT $6"
        ))
        .bind(&filter.profile)
        .bind(&filter.account_id)
        .bind(filter.expiring_by)
        .bind(now)
        .bind(i64::from(filter.revoked_only))
        .bind(filter.limit.unwrap_or(i64::MAX))
        .bind(i64::from(filter.include_superseded))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(certificate_from_row).collect()
    }

    /// The certificate with a serial as an operator typed it (see
    /// [`normalize_serial`]), stored with or without DER's leading zero byte.
    pub async fn certificate_by_typed_serial(
        &self,
        serial: &str,
    ) -> StoreResult<Option<Certificate>> {
        let serial = normalize_serial(serial);
        match self.certificate_by_serial(&serial).await? {
            Some(found) => Ok(Some(found)),
            None => self.certificate_by_serial(&format!("00{serial}")).await,
        }
    }

    /// Every account, oldest first, with how many certificates it holds.
    pub async fn list_accounts(&self) -> StoreResult<Vec<(Account, i64)>> {
        let rows = sqlx::query(&accounts_with_counts("ORDER BY a.created_at, a.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(account_with_count).collect()
    }

    /// One account with how many certificates it holds.
    pub async fn account_with_certificate_count(
        &self,
        id: &str,
    ) -> StoreResult<Option<(Account, i64)>> {
        let row = sqlx::query(&accounts_with_counts("WHERE a.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(account_with_count).transpose()
    }
}

/// Accounts with their certificate counts, then `rest` (a condition, an
/// order), read by [`account_with_count`].
fn accounts_with_counts(rest: &str) -> String {
    format!(
        "SELECT {ACCOUNT_COLUMNS},
                (SELECT COUNT(*) FROM certificates c WHERE c.account_id = a.id) AS certificates
         FROM {ACCOUNTS_AND_BINDINGS} {rest}"
    )
}

fn account_with_count(row: &AnyRow) -> StoreResult<(Account, i64)> {
    Ok((account_from_row(row)?, row.try_get("certificates")?))
}

#[cfg(test)]
mod tests {
    use super::normalize_serial;

    #[test]
    fn serials_compare_as_operators_type_them() {
        assert_eq!(normalize_serial("00:AB:cd:01"), "abcd01");
        assert_eq!(normalize_serial("00"), "00");
        assert_eq!(normalize_serial(" abcd01 "), "abcd01");
    }
}
