//! Leases on background work: which process runs a `processing`
//! challenge's validation or order's issuance, and until when.
//!
//! A lease is taken in the very statement that makes the row `processing`
//! (`start_challenge`, `begin_finalize`), renewed by the task while it
//! works, and cleared by the transition out of `processing`. A process
//! that dies stops renewing; once its lease has run out, another claims
//! the row here and runs the work again. A claim is a compare-and-set on
//! the expired lease, so two processes sweeping at once never both win a
//! row, and a process never claims back a lease of its own: its own tasks
//! renew those.

use super::{Store, StoreResult};

/// A lease as a process takes it: its owner id, and the instant (unix
/// seconds) until which nobody else may claim the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: i64,
}

/// The two kinds of work that run in the background under a lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeasedWork {
    /// A challenge's validation.
    Validation,
    /// An order's issuance.
    Issuance,
}

impl LeasedWork {
    /// The table whose rows hold this work's status and lease.
    fn table(self) -> &'static str {
        match self {
            Self::Validation => "challenges",
            Self::Issuance => "orders",
        }
    }
}

impl std::fmt::Display for LeasedWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Validation => "validation",
            Self::Issuance => "issuance",
        })
    }
}

impl Store {
    /// Extends `lease` on `id`: true while `id` is `processing` and its
    /// lease is still `lease.owner`'s, even if it ran out meanwhile (nobody
    /// claimed it); false once another process claimed it or the work
    /// left `processing`.
    pub async fn renew_lease(
        &self,
        work: LeasedWork,
        id: &str,
        lease: &Lease,
    ) -> StoreResult<bool> {
        let sql = format!(
            "UPDATE {} SET lease_until = $1
             WHERE id = $2 AND status = 'processing' AND lease_owner = $3",
            work.table()
        );
        let (id, lease) = (id.to_owned(), lease.clone());
        self.write(move |connection| {
            let (sql, id, owner) = (sql.clone(), id.clone(), lease.owner.clone());
            Box::pin(async move {
                let done = sqlx::query(&sql)
                    .bind(lease.until)
                    .bind(id)
                    .bind(owner)
                    .execute(&mut *connection)
                    .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Claims for `lease` at most `limit` pieces of `processing` work whose
    /// lease ran out before `now` (or that never had one) and that belong
    /// to another owner, longest expired first, and returns their ids: the
    /// work this process must now run.
    pub async fn claim_expired(
        &self,
        work: LeasedWork,
        lease: &Lease,
        now: i64,
        limit: u32,
    ) -> StoreResult<Vec<String>> {
        let expired = "status = 'processing'
             AND (lease_until IS NULL OR lease_until < $3)
             AND (lease_owner IS NULL OR lease_owner <> $1)";
        let sql = format!(
            "UPDATE {table} SET lease_owner = $1, lease_until = $2
             WHERE id IN (SELECT id FROM {table} WHERE {expired}
                          ORDER BY lease_until LIMIT $4 {skip_locked})
               AND {expired}
             RETURNING id",
            table = work.table(),
            skip_locked = self.backend.skip_locked(),
        );
        self.claim(sql, lease, Some((now, limit))).await
    }

    /// Claims for `lease` every piece of `processing` work, whatever its
    /// lease, and returns their ids. Only for a start on SQLite, where the
    /// data directory's lock proves that the process that held them is
    /// gone, so nobody need wait for its leases to run out.
    pub async fn take_over_processing(
        &self,
        work: LeasedWork,
        lease: &Lease,
    ) -> StoreResult<Vec<String>> {
        let sql = format!(
            "UPDATE {} SET lease_owner = $1, lease_until = $2
             WHERE status = 'processing' RETURNING id",
            work.table()
        );
        self.claim(sql, lease, None).await
    }

    /// Runs a claiming `sql` (`$1` owner, `$2` until, then `$3` now and
    /// `$4` limit when `expired` gives them) and returns the ids it claimed.
    async fn claim(
        &self,
        sql: String,
        lease: &Lease,
        expired: Option<(i64, u32)>,
    ) -> StoreResult<Vec<String>> {
        let lease = lease.clone();
        self.write(move |connection| {
            let (sql, owner) = (sql.clone(), lease.owner.clone());
            Box::pin(async move {
                let mut query = sqlx::query_scalar(&sql).bind(owner).bind(lease.until);
                if let Some((now, limit)) = expired {
                    query = query.bind(now).bind(i64::from(limit));
                }
                Ok(query.fetch_all(&mut *connection).await?)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::problem::Problem;
    use crate::store::testing::{on_both_backends, with_account};
    use crate::store::{NewCertificate, ValidationOutcome};

    async fn pending_order(store: &Store, id: &str) {
        crate::store::testing::pending_order(store, id, NOW).await
    }

    const NOW: i64 = 1_700_000_000;

    fn lease(owner: &str, until: i64) -> Lease {
        Lease {
            owner: owner.into(),
            until,
        }
    }

    /// `(lease_owner, lease_until)` of `id` in `table`.
    async fn lease_of(store: &Store, table: &str, id: &str) -> (Option<String>, Option<i64>) {
        sqlx::query_as(&format!(
            "SELECT lease_owner, lease_until FROM {table} WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&store.pool)
        .await
        .unwrap()
    }

    on_both_backends! {
        /// The transition to `processing` takes the lease; a live lease is
        /// not claimed, its renewal keeps it live, an expired one is
        /// claimed by another owner and the first can no longer renew it;
        /// the transition out of `processing` ends it.
        async fn a_lease_is_taken_renewed_claimed_when_expired_and_ended() {
            const WORK: LeasedWork = LeasedWork::Validation;
            let (_database, store) = with_account("acct", NOW).await;
            pending_order(&store, "o").await;
            let a = |until| lease("replica-a", until);
            let b = |now| lease("replica-b", now + 30);
            let claim = |lease: Lease, now| {
                let store = store.clone();
                async move { store.claim_expired(WORK, &lease, now, 10).await.unwrap() }
            };
            let renew = |lease: Lease| {
                let store = store.clone();
                async move { store.renew_lease(WORK, "chall-o", &lease).await.unwrap() }
            };

            assert!(store.start_challenge("chall-o", NOW, &a(NOW + 30)).await.unwrap());
            let taken = (Some("replica-a".to_owned()), Some(NOW + 30));
            assert_eq!(lease_of(&store, "challenges", "chall-o").await, taken);
            // Live: nobody claims it.
            assert!(claim(b(NOW + 29), NOW + 29).await.is_empty());
            // Renewed, it outlives its first end.
            assert!(renew(a(NOW + 60)).await);
            assert!(claim(b(NOW + 45), NOW + 45).await.is_empty());
            // Its owner never claims it back, expired or not.
            assert!(claim(a(NOW + 91), NOW + 61).await.is_empty());
            // Expired: another owner claims it, once.
            assert_eq!(claim(b(NOW + 61), NOW + 61).await, ["chall-o"]);
            assert!(claim(b(NOW + 62), NOW + 62).await.is_empty());
            // The first owner has lost it: no renewal, no outcome recorded.
            assert!(!renew(a(NOW + 92)).await);
            let finish = |owner: &'static str| {
                let store = store.clone();
                async move {
                    let outcome = ValidationOutcome::Valid;
                    let at = NOW + 63;
                    store.finish_challenge("chall-o", &outcome, at, at + 999, owner).await.unwrap()
                }
            };
            assert!(!finish("replica-a").await);
            assert!(finish("replica-b").await);
            assert_eq!(lease_of(&store, "challenges", "chall-o").await, (None, None));
            // Done: nothing left to renew.
            assert!(!renew(b(NOW + 64)).await);

            // The order, ready now: finalize takes its lease, the
            // certificate ends it.
            let finalized = store.begin_finalize("o", b"csr", &[], NOW + 64, &b(NOW + 64)).await;
            assert!(finalized.unwrap().unwrap());
            let taken = (Some("replica-b".to_owned()), Some(NOW + 94));
            assert_eq!(lease_of(&store, "orders", "o").await, taken);
            let certificate = NewCertificate {
                id: "c".into(),
                serial: "01".into(),
                names: vec!["o.test".into()],
                chain_pem: "PEM".into(),
                not_before: NOW,
                not_after: NOW + 86_400,
            };
            assert!(store.complete_order("o", &certificate, NOW + 65).await.unwrap());
            assert_eq!(lease_of(&store, "orders", "o").await, (None, None));
        }
    }

    on_both_backends! {
        /// Two handles with pools of their own, as two replicas, claim ten
        /// expired orders at once, five at a time each: every order is
        /// claimed by exactly one of them. A failed order's lease ends with it.
        async fn two_replicas_sweeping_at_once_never_claim_one_order_twice() {
            let (database, first) = with_account("acct", NOW).await;
            let second = Store::open(database.url()).await.unwrap();
            let dead = lease("dead-replica", NOW + 30);
            for n in 0..10 {
                let id = format!("o{n}");
                pending_order(&first, &id).await;
                let challenge = format!("chall-{id}");
                assert!(first.start_challenge(&challenge, NOW, &dead).await.unwrap());
                let outcome = ValidationOutcome::Valid;
                let owner = "dead-replica";
                assert!(first.finish_challenge(&challenge, &outcome, NOW, NOW + 3600, owner).await.unwrap());
                assert!(first.begin_finalize(&id, b"csr", &[], NOW, &dead).await.unwrap().unwrap());
            }
            let later = NOW + 31;
            let sweep = |store: Store, owner: &'static str| async move {
                let mut claimed = Vec::new();
                loop {
                    let batch = store
                        .claim_expired(LeasedWork::Issuance, &lease(owner, later + 30), later, 5)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return claimed;
                    }
                    claimed.extend(batch);
                }
            };
            let (a, b) = tokio::join!(sweep(first.clone(), "a"), sweep(second.clone(), "b"));
            let mut all: Vec<String> = a.iter().chain(&b).cloned().collect();
            all.sort();
            all.dedup();
            assert_eq!(a.len() + b.len(), 10, "a {a:?}, b {b:?}");
            assert_eq!(all.len(), 10);
            // Only the claimant may mark a signing attempt.
            let (winner, loser) = if a.contains(&"o0".to_owned()) { ("a", "b") } else { ("b", "a") };
            assert!(!first.mark_sign_attempt("o0", later, loser).await.unwrap());
            assert!(first.mark_sign_attempt("o0", later, winner).await.unwrap());
            assert!(first.fail_order("o0", &Problem::malformed("test"), later).await.unwrap());
            assert_eq!(lease_of(&first, "orders", "o0").await, (None, None));
            second.close().await;
        }
    }

    on_both_backends! {
        /// At a start on SQLite, everything `processing` is taken over at
        /// once, live leases of the previous run included.
        async fn a_take_over_claims_every_processing_row_at_once() {
            let (_database, store) = with_account("acct", NOW).await;
            for id in ["o1", "o2", "o3"] {
                pending_order(&store, id).await;
            }
            let previous = lease("previous-run", NOW + 30);
            assert!(store.start_challenge("chall-o1", NOW, &previous).await.unwrap());
            assert!(store.start_challenge("chall-o2", NOW, &previous).await.unwrap());
            let this_run = lease("this-run", NOW + 31);
            let mut taken = store
                .take_over_processing(LeasedWork::Validation, &this_run)
                .await
                .unwrap();
            taken.sort();
            assert_eq!(taken, ["chall-o1", "chall-o2"]);
            assert_eq!(
                lease_of(&store, "challenges", "chall-o2").await,
                (Some("this-run".into()), Some(NOW + 31))
            );
            let this_run = lease("this-run", NOW + 31);
            let orders = store.take_over_processing(LeasedWork::Issuance, &this_run).await;
            assert!(orders.unwrap().is_empty());
        }
    }
}
