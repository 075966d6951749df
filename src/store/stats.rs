//! Aggregates read at every `/metrics` scrape: orders by status and the
//! certificates in use by profile. Each is one GROUP BY over an indexed
//! column, cheap enough to run whenever Prometheus asks, so the gauges never
//! drift from what the database holds (after a restart, or with several
//! replicas sharing one database).

use std::time::Duration;

use sqlx::Row;

use super::{Store, StoreError, StoreResult};
use crate::protocol::status::OrderStatus;

/// The certificates of one profile that are in use: neither revoked nor
/// expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileCertificates {
    pub profile: String,
    pub valid: i64,
    /// How many of them expire within each horizon asked for, in that order.
    pub expiring: Vec<i64>,
    /// The soonest not-after among them (unix seconds).
    pub earliest_not_after: i64,
}

impl Store {
    /// How many orders are in each status; statuses without orders are left out.
    pub async fn orders_by_status(&self) -> StoreResult<Vec<(OrderStatus, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM orders GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let status: &str = row.try_get("status")?;
                let status = OrderStatus::parse(status)
                    .ok_or_else(|| StoreError::Corrupt(format!("order status {status:?}")))?;
                Ok((status, row.try_get("n")?))
            })
            .collect()
    }

    /// The certificates in use at `now`, by profile, with how many expire
    /// within each of `horizons`. Profiles with none in use are left out.
    pub async fn valid_certificates_by_profile(
        &self,
        now: i64,
        horizons: &[Duration],
    ) -> StoreResult<Vec<ProfileCertificates>> {
        self.in_use("profile", "certificates", "", now, horizons)
            .await
    }

    /// [`Store::valid_certificates_by_profile`] for the leaf certificates
    /// the inventory sync found at Vault, by mount (in `profile`).
    pub async fn valid_vault_certificates_by_mount(
        &self,
        now: i64,
        horizons: &[Duration],
    ) -> StoreResult<Vec<ProfileCertificates>> {
        self.in_use(
            "mount",
            "vault_certificates",
            " AND is_ca = 0",
            now,
            horizons,
        )
        .await
    }

    /// Certificates of `table` in use and not superseded, grouped by `group`.
    async fn in_use(
        &self,
        group: &str,
        table: &str,
        condition: &str,
        now: i64,
        horizons: &[Duration],
    ) -> StoreResult<Vec<ProfileCertificates>> {
        // $1 is `now`; $2… the ends of the horizons, one column each.
        let within: String = (0..horizons.len())
            .map(|index| {
                format!(
                    ", COUNT(CASE WHEN not_after <= ${} THEN 1 END) AS within_{index}",
                    index + 2
                )
            })
            .collect();
        let sql = format!(
            "SELECT {group} AS profile, COUNT(*) AS valid, MIN(not_after) AS earliest{within}
             FROM {table} WHERE revoked_at IS NULL AND not_after > $1 AND superseded_by IS NULL{condition}
             GROUP BY {group} ORDER BY {group}"
        );
        let mut query = sqlx::query(&sql).bind(now);
        for horizon in horizons {
            query = query.bind(crate::util::clock::seconds_after(now, *horizon));
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let expiring = (0..horizons.len())
                    .map(|index| row.try_get(format!("within_{index}").as_str()))
                    .collect::<Result<_, _>>()?;
                Ok(ProfileCertificates {
                    profile: row.try_get("profile")?,
                    valid: row.try_get("valid")?,
                    expiring,
                    earliest_not_after: row.try_get("earliest")?,
                })
            })
            .collect()
    }
}
