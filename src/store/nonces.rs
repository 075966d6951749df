//! Nonces shared by replicas (RFC 8555 §6.5): a row per nonce issued and
//! not yet used, deleted by its one use. Each operation is one statement,
//! so a request pays one round trip for it; the row count of the `DELETE`
//! says whether the nonce was live, which makes a nonce good exactly once
//! even when two replicas receive it at the same moment.
//!
//! Times are unix seconds; a nonce issued at `issued_at` is live while
//! `issued_at > cutoff`, the cutoff being now minus the nonces' lifetime.

use super::{Store, StoreResult};

impl Store {
    /// Records `nonce`, issued at `now`.
    pub async fn insert_nonce(&self, nonce: &str, now: i64) -> StoreResult<()> {
        let nonce = nonce.to_owned();
        self.write_statement(move |connection| {
            let nonce = nonce.clone();
            Box::pin(async move {
                sqlx::query("INSERT INTO nonces (nonce, issued_at) VALUES ($1, $2)")
                    .bind(nonce)
                    .bind(now)
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Whether `nonce` was issued after `cutoff` and is not used yet,
    /// without using it.
    pub async fn nonce_is_live(&self, nonce: &str, cutoff: i64) -> StoreResult<bool> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM nonces WHERE nonce = $1 AND issued_at > $2")
                .bind(nonce)
                .bind(cutoff)
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    /// Uses `nonce`: true when it was issued after `cutoff` and not used
    /// before, for exactly one of any number of concurrent callers. An
    /// expired nonce stays for [`Store::purge_nonces`].
    pub async fn consume_nonce(&self, nonce: &str, cutoff: i64) -> StoreResult<bool> {
        let nonce = nonce.to_owned();
        self.write_statement(move |connection| {
            let nonce = nonce.clone();
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM nonces WHERE nonce = $1 AND issued_at > $2")
                    .bind(nonce)
                    .bind(cutoff)
                    .execute(&mut *connection)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Deletes at most `batch` nonces issued at or before `cutoff`, oldest
    /// first, and says how many went: a small write, however many expired.
    pub async fn purge_nonces(&self, cutoff: i64, batch: u32) -> StoreResult<u64> {
        self.write_statement(move |connection| {
            Box::pin(async move {
                let done = sqlx::query(
                    "DELETE FROM nonces WHERE nonce IN (
                         SELECT nonce FROM nonces WHERE issued_at <= $1
                         ORDER BY issued_at LIMIT $2)",
                )
                .bind(cutoff)
                .bind(i64::from(batch))
                .execute(&mut *connection)
                .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use futures_util::future::join_all;

    use crate::store::testing::{on_both_backends, temporary};
    use crate::store::Store;

    const NOW: i64 = 1_700_000_000;
    /// The cutoff of a nonce lifetime of an hour, at `NOW`.
    const CUTOFF: i64 = NOW - 3600;

    on_both_backends! {
        /// A nonce is live until it is used or its lifetime ends; looking
        /// at it does not use it; one never issued is not live.
        async fn a_nonce_is_live_until_used_once_or_expired() {
            let (_database, store) = temporary().await;
            store.insert_nonce("n1", NOW).await.unwrap();
            assert!(store.nonce_is_live("n1", CUTOFF).await.unwrap());
            assert!(store.nonce_is_live("n1", CUTOFF).await.unwrap());
            assert!(store.consume_nonce("n1", CUTOFF).await.unwrap());
            assert!(!store.consume_nonce("n1", CUTOFF).await.unwrap());
            assert!(!store.nonce_is_live("n1", CUTOFF).await.unwrap());
            assert!(!store.nonce_is_live("never", CUTOFF).await.unwrap());
            assert!(!store.consume_nonce("never", CUTOFF).await.unwrap());

            // Issued exactly a lifetime ago: over.
            store.insert_nonce("old", CUTOFF).await.unwrap();
            assert!(!store.nonce_is_live("old", CUTOFF).await.unwrap());
            assert!(!store.consume_nonce("old", CUTOFF).await.unwrap());
        }
    }

    on_both_backends! {
        /// Two handles with pools of their own, as two replicas, each
        /// spending the same nonce eight times at once: one use wins.
        async fn two_replicas_racing_for_one_nonce_spend_it_once() {
            let (database, first) = temporary().await;
            let second = Store::open(database.url()).await.unwrap();
            for round in 0..5 {
                let nonce = format!("raced-{round}");
                first.insert_nonce(&nonce, NOW).await.unwrap();
                let uses = (0..16).map(|n| {
                    let (store, nonce) = (if n % 2 == 0 { &first } else { &second }, &nonce);
                    async move { store.consume_nonce(nonce, CUTOFF).await.unwrap() }
                });
                let won = join_all(uses).await.into_iter().filter(|won| *won).count();
                assert_eq!(won, 1, "round {round}");
            }
            second.close().await;
        }
    }

    on_both_backends! {
        /// Purging takes expired nonces only, a bounded batch at a time.
        async fn purging_takes_expired_nonces_in_bounded_batches() {
            let (_database, store) = temporary().await;
            for n in 0..5 {
                store.insert_nonce(&format!("expired-{n}"), CUTOFF - n).await.unwrap();
            }
            store.insert_nonce("live", NOW).await.unwrap();
            assert_eq!(store.purge_nonces(CUTOFF, 3).await.unwrap(), 3);
            assert_eq!(store.purge_nonces(CUTOFF, 3).await.unwrap(), 2);
            assert_eq!(store.purge_nonces(CUTOFF, 3).await.unwrap(), 0);
            assert!(store.consume_nonce("live", CUTOFF).await.unwrap());
        }
    }
}
