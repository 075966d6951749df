//! The store's guarantees when units race, on both backends: on SQLite the
//! one writer runs them in turn, on PostgreSQL they run side by side at
//! SERIALIZABLE and the losers run again. Either way one finalize wins an
//! order, one signing attempt is marked, a bucket of N tokens serves N
//! takers, and a unit whose caller went away still commits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use futures_util::future::join_all;
use futures_util::FutureExt;
use sqlx::Connection;

use super::testing::{on_both_backends, pending_order, with_account};
use super::{Lease, Store, StoreError, ValidationOutcome};
use crate::config::rate_limits::{Bucket, BucketKind, Limit};

const NOW: i64 = 1_700_000_000;
/// Callers racing for one thing.
const RACERS: usize = 16;
/// The process every unit here runs for.
const OWNER: &str = "this-process";

fn lease() -> Lease {
    Lease {
        owner: OWNER.into(),
        until: NOW + 30,
    }
}

/// An order of `acct` for one name, its authorization validated: `ready`.
async fn ready_order(store: &Store, id: &str) {
    pending_order(store, id, NOW).await;
    let challenge = format!("chall-{id}");
    assert!(store
        .start_challenge(&challenge, NOW, &lease())
        .await
        .unwrap());
    let outcome = ValidationOutcome::Valid;
    assert!(store
        .finish_challenge(&challenge, &outcome, NOW, NOW + 3600, OWNER)
        .await
        .unwrap());
}

/// How many of `outcomes` are `true`.
fn winners(outcomes: impl IntoIterator<Item = bool>) -> usize {
    outcomes.into_iter().filter(|won| *won).count()
}

on_both_backends! {
    /// 16 finalizes of one ready order at once: one moves it to
    /// processing; then 16 signing attempts at once: one is marked.
    async fn one_of_many_finalizes_wins_and_one_signing_attempt_is_marked() {
        let (_database, store) = with_account("acct", NOW).await;
        ready_order(&store, "o").await;
        let finalizes = join_all((0..RACERS).map(|n| {
            let store = store.clone();
            async move {
                store
                    .begin_finalize("o", &[n as u8], &[], NOW, &lease())
                    .await
                    .unwrap()
                    .unwrap()
            }
        }))
        .await;
        assert_eq!(winners(finalizes), 1);
        let marks = join_all((0..RACERS).map(|_| {
            let store = store.clone();
            async move { store.mark_sign_attempt("o", NOW, OWNER).await.unwrap() }
        }))
        .await;
        assert_eq!(winners(marks), 1);
    }
}

on_both_backends! {
    /// 16 takers at once from a bucket of 5: exactly 5 get a token, and
    /// the bucket is then empty.
    async fn a_bucket_of_five_serves_five_of_sixteen_concurrent_takers() {
        let (_database, store) = with_account("acct", NOW).await;
        let bucket = Bucket {
            key: "account:acct".into(),
            limit: Limit::parse("5/1h").unwrap().unwrap(),
            kind: BucketKind::OrdersPerAccount,
        };
        let taken = join_all((0..RACERS).map(|_| {
            let (store, bucket) = (store.clone(), bucket.clone());
            async move { store.take_tokens(&[bucket], NOW).await.unwrap().is_ok() }
        }))
        .await;
        assert_eq!(winners(taken), 5);
        let refused = store.take_tokens(&[bucket], NOW).await.unwrap();
        assert!(refused.is_err());
    }
}

on_both_backends! {
    /// A unit whose caller stops waiting half-way still runs to its commit.
    async fn a_write_whose_caller_gave_up_still_commits() {
        let (_database, store) = with_account("acct", NOW).await;
        let slow = store.write(|connection| {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                sqlx::query("INSERT INTO audit_events (at, event, record) VALUES ($1, $2, $3)")
                    .bind(NOW)
                    .bind("test")
                    .bind("{}")
                    .execute(&mut *connection)
                    .await?;
                Ok(())
            })
        });
        let gave_up = tokio::time::timeout(Duration::from_millis(20), slow).await;
        assert!(gave_up.is_err(), "the caller stopped waiting before the commit");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while store.audit_records().await.unwrap().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "the unit was cut short");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

on_both_backends! {
    /// Units that wait while another runs (on SQLite, one transaction
    /// for all of them) each end as they would alone: one unit's failure
    /// undoes only its own writes, and the others are committed.
    async fn units_that_wait_together_keep_their_own_outcomes() {
        let (database, store) = with_account("acct", NOW).await;
        let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let runs: Arc<[AtomicUsize; 3]> = Arc::default();
        let insert = |event: &'static str| {
            sqlx::query("INSERT INTO audit_events (at, event, record) VALUES ($1, 'test', $2)")
                .bind(NOW)
                .bind(event)
        };
        let holding = {
            let (started, release) = (started.clone(), release.clone());
            store.write(move |connection| {
                let (started, release) = (started.clone(), release.clone());
                Box::pin(async move {
                    started.notify_one();
                    release.notified().await;
                    insert("first").execute(&mut *connection).await?;
                    Ok(())
                })
            })
        };
        let mut holding = std::pin::pin!(holding);
        assert!(holding.as_mut().now_or_never().is_none());
        started.notified().await;
        // Three units queue behind it; the second fails after writing.
        let mut waiting: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .enumerate()
            .map(|(index, event)| {
                let runs = runs.clone();
                Box::pin(store.write(move |connection| {
                    let runs = runs.clone();
                    Box::pin(async move {
                        runs[index].fetch_add(1, Ordering::SeqCst);
                        insert(event).execute(&mut *connection).await?;
                        if event == "b" {
                            return Err(StoreError::Corrupt("planted".into()));
                        }
                        Ok(event)
                    })
                }))
            })
            .collect();
        for unit in &mut waiting {
            assert!(unit.as_mut().now_or_never().is_none());
        }
        release.notify_one();
        holding.await.unwrap();
        let outcomes = join_all(waiting).await;
        assert_eq!(outcomes[0].as_ref().unwrap(), &"a");
        assert!(matches!(outcomes[1], Err(StoreError::Corrupt(_))), "{:?}", outcomes[1]);
        assert_eq!(outcomes[2].as_ref().unwrap(), &"c");
        // On PostgreSQL the units run side by side, in no set order.
        let mut written = store.audit_records().await.unwrap();
        written.sort();
        assert_eq!(written, ["a", "c", "first"]);
        if database.url().starts_with("sqlite:") {
            // Together, rolled back by b, then each alone: a ran twice, c
            // (after b) once.
            let runs: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
            assert_eq!(runs, [2, 2, 1]);
        }
    }
}

/// PostgreSQL only: the server ends every connection of the store (as a
/// restart or a failover does). The next write fails as unavailable (`503`
/// with `Retry-After` to the client), and writes succeed again at once,
/// on new connections, without reopening the store.
#[tokio::test]
async fn a_lost_postgres_connection_is_unavailable_then_heals() {
    let name = concat!(
        module_path!(),
        "::a_lost_postgres_connection_is_unavailable_then_heals"
    );
    super::testing::on(super::Backend::Postgres, name, async {
        let (database, store) = with_account("acct", NOW).await;
        let mut other = sqlx::AnyConnection::connect(database.url()).await.unwrap();
        let terminated: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut other)
        .await
        .unwrap();
        assert!(!terminated.is_empty(), "the store held no connection");
        let lost = store
            .append_audit_event(NOW, "test", "{}")
            .await
            .unwrap_err();
        assert!(lost.is_unavailable(), "{lost:?}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Err(error) = store.append_audit_event(NOW, "test", "{}").await {
            assert!(error.is_unavailable(), "{error:?}");
            assert!(tokio::time::Instant::now() < deadline, "{error:?}");
        }
    })
    .await
}
