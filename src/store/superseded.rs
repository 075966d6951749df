//! Which certificates are superseded: a newer certificate for the same
//! names exists (of the same account, for ACME; of the same mount, for
//! certificates found at Vault), or an order that said it replaces one
//! (RFC 9773's `replaces`) was issued. A superseded certificate is still
//! valid, but nobody relies on it any more: it is not overdue, not counted
//! as expiring, and `certs list` shows it only with `--all`.
//!
//! Certgate's own certificates are marked as they are issued, in the
//! transaction that stores the new one; those found at Vault after each
//! sync of their mount.

use super::{Store, StoreResult};

/// Marks, in the transaction that stores certificate `$1`, the certificates
/// it supersedes: the same account's for the same names issued no later,
/// and the one its order replaces. The candidates are found through the
/// index on names and the keys, never by a scan of every certificate: an
/// `OR` in the outer `WHERE` made each issuance read the whole table.
pub(super) const SUPERSEDE_BY_NEW: &str = "UPDATE certificates SET superseded_by = $1
     WHERE superseded_by IS NULL AND id <> $1 AND id IN (
        SELECT c.id FROM certificates n JOIN certificates c ON c.names = n.names
         WHERE n.id = $1 AND c.account_id = n.account_id AND c.not_before <= n.not_before
        UNION
        SELECT o.replaces FROM orders o JOIN certificates n ON n.order_id = o.id
         WHERE n.id = $1 AND o.replaces IS NOT NULL)";

/// Superseded certificates by profile (`vault:<mount>` for certificates
/// found at Vault that no order claims), neither revoked nor expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupersededCount {
    pub profile: String,
    pub count: i64,
}

impl Store {
    /// Marks the certificates of `mount` that a newer one for the same
    /// names supersedes; returns how many were marked.
    pub async fn mark_vault_superseded(&self, mount: &str) -> StoreResult<u64> {
        let mount = mount.to_owned();
        self.write(move |connection| {
            let mount = mount.clone();
            Box::pin(async move {
                let done = sqlx::query(
                    "UPDATE vault_certificates SET superseded_by = (
                        SELECT n.serial FROM vault_certificates n
                        WHERE n.mount = vault_certificates.mount AND n.is_ca = 0
                          AND n.names = vault_certificates.names
                          AND n.not_before > vault_certificates.not_before
                        ORDER BY n.not_before DESC LIMIT 1)
                     WHERE mount = $1 AND is_ca = 0 AND superseded_by IS NULL
                       AND EXISTS (SELECT 1 FROM vault_certificates n
                                   WHERE n.mount = vault_certificates.mount AND n.is_ca = 0
                                     AND n.names = vault_certificates.names
                                     AND n.not_before > vault_certificates.not_before)",
                )
                .bind(mount)
                .execute(&mut *connection)
                .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    /// Certificates in use (neither revoked nor expired at `now`) that are
    /// superseded, by profile; those found at Vault as `vault:<mount>`.
    pub async fn superseded_counts(&self, now: i64) -> StoreResult<Vec<SupersededCount>> {
        let acme: Vec<(String, i64)> = sqlx::query_as(
            "SELECT profile, COUNT(*) FROM certificates
             WHERE superseded_by IS NOT NULL AND revoked_at IS NULL AND not_after > $1
             GROUP BY profile ORDER BY profile",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let vault: Vec<(String, i64)> = sqlx::query_as(
            "SELECT mount, COUNT(*) FROM vault_certificates
             WHERE superseded_by IS NOT NULL AND revoked_at IS NULL AND not_after > $1
               AND is_ca = 0
             GROUP BY mount ORDER BY mount",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(acme
            .into_iter()
            .chain(
                vault
                    .into_iter()
                    .map(|(mount, count)| (format!("vault:{mount}"), count)),
            )
            .map(|(profile, count)| SupersededCount { profile, count })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::SUPERSEDE_BY_NEW;
    use crate::store::admission::PENDING_OF_ACCOUNT;
    use crate::store::testing;

    /// What SQLite plans for `statement`, one line per step.
    async fn plan(store: &crate::store::Store, statement: &str) -> Vec<String> {
        sqlx::query(&format!("EXPLAIN QUERY PLAN {statement}"))
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String, _>("detail").unwrap())
            .collect()
    }

    /// The statements every issuance runs on tables that grow with each
    /// one find their rows through an index: a scan would make an
    /// issuance's cost grow with every certificate ever stored.
    #[tokio::test]
    async fn an_issuance_reads_no_growing_table_from_end_to_end() {
        // Outside `testing::on`, a SQLite file.
        let (_database, store) = testing::temporary().await;
        for statement in [SUPERSEDE_BY_NEW, PENDING_OF_ACCOUNT] {
            let plan = plan(&store, statement).await;
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN ")),
                "{statement}\n{plan:#?}"
            );
            assert!(
                plan.iter().any(|step| step.starts_with("SEARCH ")),
                "{plan:#?}"
            );
        }
    }
}
