//! Deleting what no client can need any more: orders long past their end,
//! and the authorizations and challenges no remaining order uses. Issued
//! certificates and the audit log are never deleted here.

use super::{Store, StoreResult};

/// What one batch deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub orders: u64,
    pub authorizations: u64,
    pub challenges: u64,
}

impl Pruned {
    pub fn add(&mut self, other: Pruned) {
        self.orders += other.orders;
        self.authorizations += other.authorizations;
        self.challenges += other.challenges;
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Orders that ended before the cutoff and were last changed before it. A
/// `processing` order is never one: its issuance resumes at start.
/// `ORDER BY id` makes the statement pick the same rows each time it runs
/// in one transaction.
const OLD_ORDERS: &str = "SELECT id FROM orders
     WHERE expires_at < $1 AND updated_at < $1 AND status != 'processing'
     ORDER BY id LIMIT $2";

/// Authorizations that ended before the cutoff and that no order names.
const UNUSED_AUTHORIZATIONS: &str = "SELECT id FROM authorizations a
     WHERE a.expires_at < $1
       AND NOT EXISTS (SELECT 1 FROM order_authorizations oa WHERE oa.authorization_id = a.id)
     ORDER BY id LIMIT $2";

impl Store {
    /// Deletes at most `batch` orders that ended before `cutoff` (with
    /// their links to authorizations), then at most `batch` authorizations
    /// that ended before it and no order uses, with their challenges: one
    /// small write, so other writes wait for it only briefly.
    pub async fn prune_batch(&self, cutoff: i64, batch: u32) -> StoreResult<Pruned> {
        // In this order: an order's links before the order, an
        // authorization's challenges before the authorization.
        let statements = [
            format!("DELETE FROM order_authorizations WHERE order_id IN ({OLD_ORDERS})"),
            format!("DELETE FROM orders WHERE id IN ({OLD_ORDERS})"),
            format!("DELETE FROM challenges WHERE authorization_id IN ({UNUSED_AUTHORIZATIONS})"),
            format!("DELETE FROM authorizations WHERE id IN ({UNUSED_AUTHORIZATIONS})"),
        ];
        self.write(move |connection| {
            let statements = statements.clone();
            Box::pin(async move {
                let mut deleted = [0; 4];
                for (sql, count) in statements.iter().zip(&mut deleted) {
                    *count = sqlx::query(sql)
                        .bind(cutoff)
                        .bind(i64::from(batch))
                        .execute(&mut *connection)
                        .await?
                        .rows_affected();
                }
                let [_, orders, challenges, authorizations] = deleted;
                Ok(Pruned {
                    orders,
                    authorizations,
                    challenges,
                })
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection, SqliteConnection};

    use super::*;
    use crate::store::testing;
    use crate::store::testing::on_both_backends;

    const NOW: i64 = 1_700_000_000;
    const DAY: i64 = 86_400;

    async fn exec(connection: &mut SqliteConnection, sql: &str) {
        sqlx::query(sql).execute(&mut *connection).await.unwrap();
    }

    /// An order with one authorization of one challenge, its times `ended`.
    async fn order(store: &Store, id: &str, status: &str, ended: i64) {
        let statements = [
            format!(
                "INSERT INTO orders (id, account_id, profile, status, identifiers, expires_at, created_at, updated_at)
                 VALUES ('{id}', 'acct', 'default', '{status}', '[]', {ended}, {ended}, {ended})"
            ),
            format!(
                "INSERT INTO authorizations (id, account_id, identifier_type, identifier_value, status, expires_at, created_at)
                 VALUES ('authz-{id}', 'acct', 'dns', '{id}.test', 'valid', {ended}, {ended})"
            ),
            format!(
                "INSERT INTO order_authorizations (order_id, authorization_id, position) VALUES ('{id}', 'authz-{id}', 0)"
            ),
            format!(
                "INSERT INTO challenges (id, authorization_id, type, token, status, position)
                 VALUES ('chall-{id}', 'authz-{id}', 'http-01', 't', 'valid', 0)"
            ),
        ];
        store
            .write(move |connection| {
                let statements = statements.clone();
                Box::pin(async move {
                    for sql in &statements {
                        sqlx::query(sql).execute(&mut *connection).await?;
                    }
                    Ok(())
                })
            })
            .await
            .unwrap();
    }

    async fn count(store: &Store, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&store.pool)
            .await
            .unwrap()
    }

    on_both_backends! {
        async fn only_what_ended_before_the_cutoff_and_is_not_in_progress_goes() {
            let (_dir, store) = testing::with_account("acct", NOW).await;
            let cutoff = NOW - 30 * DAY;
            order(&store, "old", "invalid", cutoff - DAY).await;
            order(&store, "old-valid", "valid", cutoff - DAY).await;
            order(&store, "recent", "pending", cutoff + DAY).await;
            order(&store, "stuck", "processing", cutoff - DAY).await;

            let pruned = store.prune_batch(cutoff, 100).await.unwrap();
            assert_eq!(
                pruned,
                Pruned {
                    orders: 2,
                    authorizations: 2,
                    challenges: 2
                }
            );
            assert_eq!(count(&store, "orders").await, 2);
            assert!(store.order("recent").await.unwrap().is_some());
            assert!(
                store.order("stuck").await.unwrap().is_some(),
                "issuance resumes it"
            );
            // The stuck order's authorization ended too, but an order uses it.
            assert_eq!(count(&store, "authorizations").await, 2);
            assert!(store.prune_batch(cutoff, 100).await.unwrap().is_empty());
        }
    }

    on_both_backends! {
        async fn batches_are_bounded() {
            let (_dir, store) = testing::with_account("acct", NOW).await;
            for n in 0..5 {
                order(&store, &format!("o{n}"), "invalid", NOW - 40 * DAY).await;
            }
            let first = store.prune_batch(NOW - 30 * DAY, 2).await.unwrap();
            assert_eq!((first.orders, first.authorizations), (2, 2));
            assert_eq!(count(&store, "orders").await, 3);
        }
    }

    /// Migration 0009 rebuilds `certificates` under existing data: every
    /// certificate row stays, an order's `replaces` still points at its
    /// certificate, and an issued order can then be deleted.
    #[tokio::test]
    async fn certificates_survive_the_rebuild_that_lets_them_outlive_orders() {
        let dir = tempfile::tempdir().unwrap();
        let mut connection = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .foreign_keys(true)
            .connect()
            .await
            .unwrap();
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version < 9)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        before.run(&mut connection).await.unwrap();
        for sql in [
            "INSERT INTO accounts (id, key_thumbprint, jwk, status, created_at) VALUES ('a', 't', '{}', 'valid', 1)",
            "INSERT INTO orders (id, account_id, profile, status, identifiers, expires_at, created_at, updated_at)
             VALUES ('o1', 'a', 'default', 'valid', '[]', 1, 1, 1)",
            "INSERT INTO certificates (id, order_id, account_id, profile, serial, names, chain_pem, not_before, not_after, created_at)
             VALUES ('c1', 'o1', 'a', 'default', '0a', '[]', 'PEM', 1, 2, 1)",
            "INSERT INTO orders (id, account_id, profile, status, identifiers, expires_at, created_at, updated_at, replaces)
             VALUES ('o2', 'a', 'default', 'pending', '[]', 1, 1, 1, 'c1')",
        ] {
            exec(&mut connection, sql).await;
        }
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut connection)
            .await
            .unwrap();

        let (certificate, chain): (String, String) =
            sqlx::query_as("SELECT order_id, chain_pem FROM certificates WHERE id = 'c1'")
                .fetch_one(&mut connection)
                .await
                .unwrap();
        assert_eq!((certificate.as_str(), chain.as_str()), ("o1", "PEM"));
        let violations = sqlx::query("PRAGMA foreign_key_check")
            .fetch_all(&mut connection)
            .await
            .unwrap();
        assert!(violations.is_empty());
        exec(&mut connection, "DELETE FROM orders WHERE id = 'o1'").await;
        let replaced: String = sqlx::query_scalar("SELECT replaces FROM orders WHERE id = 'o2'")
            .fetch_one(&mut connection)
            .await
            .unwrap();
        assert_eq!(replaced, "c1");
        // The database still refuses a second certificate for one order.
        let second = sqlx::query(
            "INSERT INTO certificates (id, order_id, account_id, profile, serial, names, chain_pem, not_before, not_after, created_at)
             VALUES ('c2', 'o1', 'a', 'default', '0b', '[]', 'PEM', 1, 2, 1)",
        )
        .execute(&mut connection)
        .await;
        assert!(second.is_err());
        connection.close().await.unwrap();
    }
}
