//! The token buckets of the rate limits ([`crate::config::rate_limits`]).

use sqlx::AnyConnection;
use sqlx::Row;

use super::backend::Backend;
use super::{Store, StoreResult};
use crate::config::rate_limits::{Bucket, BucketState, RateLimitRefusal};

/// Each of `buckets` after taking one token at `now`, read on the writer's
/// `connection`; or the refusal naming the empty bucket that refills last.
/// Writes nothing.
async fn decide(
    connection: &mut AnyConnection,
    buckets: &[Bucket],
    now: i64,
) -> StoreResult<Result<Vec<BucketState>, RateLimitRefusal>> {
    let mut taken = Vec::with_capacity(buckets.len());
    let mut refusal: Option<RateLimitRefusal> = None;
    for bucket in buckets {
        let stored =
            sqlx::query("SELECT tokens, updated_at FROM rate_limit_buckets WHERE key = $1")
                .bind(&bucket.key)
                .fetch_optional(&mut *connection)
                .await?
                .map(|row| -> StoreResult<BucketState> {
                    Ok(BucketState {
                        tokens: row.try_get("tokens")?,
                        updated_at: row.try_get("updated_at")?,
                    })
                })
                .transpose()?;
        match bucket.limit.take(bucket.limit.refill(stored, now)) {
            Ok(after) => taken.push(after),
            Err(wait) => {
                if refusal.as_ref().is_none_or(|r| wait > r.retry_after) {
                    refusal = Some(RateLimitRefusal {
                        bucket: bucket.clone(),
                        retry_after: wait,
                    });
                }
            }
        }
    }
    Ok(refusal.map_or(Ok(taken), Err))
}

/// Whether each of `buckets` holds a token at `now`, taking none: newOrder
/// asks this of the buckets its certificate will take from at finalize.
pub(super) async fn check_tokens_on(
    connection: &mut AnyConnection,
    buckets: &[Bucket],
    now: i64,
) -> StoreResult<Result<(), RateLimitRefusal>> {
    Ok(decide(connection, buckets, now).await?.map(drop))
}

/// Takes one token from each of `buckets` at `now`, all or none, on the
/// writer's `connection` inside the caller's unit of work, so that taking
/// the tokens and what they pay for (an order, a finalize) commit or roll
/// back together. `Err(refusal)` names the empty bucket that refills last;
/// then no bucket changes. On PostgreSQL each bucket's key is locked
/// first (in one order, so two units never wait for each other), since a
/// bucket never stored has no row to lock, and the unit then reads what
/// the last one to hold it committed.
pub(super) async fn take_tokens_on(
    connection: &mut AnyConnection,
    backend: Backend,
    buckets: &[Bucket],
    now: i64,
) -> StoreResult<Result<(), RateLimitRefusal>> {
    if let Some(lock) = backend.lock_key() {
        let mut keys: Vec<&str> = buckets.iter().map(|b| b.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            sqlx::query(lock)
                .bind(format!("rate_limit_bucket:{key}"))
                .execute(&mut *connection)
                .await?;
        }
    }
    // Every bucket is read and decided before any is written, so a refusal
    // leaves them all as they were.
    let taken = match decide(connection, buckets, now).await? {
        Ok(taken) => taken,
        Err(refusal) => return Ok(Err(refusal)),
    };
    for (bucket, after) in buckets.iter().zip(taken) {
        sqlx::query(
            "INSERT INTO rate_limit_buckets (key, tokens, updated_at, full_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET tokens = excluded.tokens,
                 updated_at = excluded.updated_at, full_at = excluded.full_at",
        )
        .bind(&bucket.key)
        .bind(after.tokens)
        .bind(after.updated_at)
        .bind(bucket.limit.full_at(after))
        .execute(&mut *connection)
        .await?;
    }
    Ok(Ok(()))
}

impl Store {
    /// Takes one token from each of `buckets` at `now`, all or none, in one
    /// write transaction: concurrent orders (of this process or of another
    /// sharing the database) queue on the buckets' locks instead of both
    /// taking the last token. `Err(refusal)` names the empty bucket that refills
    /// last; then no bucket changes. newAccount takes its token this way;
    /// newOrder and finalize take theirs together with what they store
    /// ([`Store::create_order_within_limits`], [`Store::begin_finalize`]).
    pub async fn take_tokens(
        &self,
        buckets: &[Bucket],
        now: i64,
    ) -> StoreResult<Result<(), RateLimitRefusal>> {
        let (buckets, backend) = (buckets.to_vec(), self.backend);
        self.write_row_locked(move |connection| {
            let buckets = buckets.clone();
            Box::pin(async move { take_tokens_on(connection, backend, &buckets, now).await })
        })
        .await
    }

    /// Deletes up to `batch` buckets that are full again at `now`, which
    /// read no differently from buckets never stored, and says how many
    /// went. Done apart from the decisions (see `domain::bucket_sweep`):
    /// a delete by `full_at` inside every decision read the whole table,
    /// so on PostgreSQL every newOrder and finalize conflicted with every
    /// other.
    pub async fn purge_full_buckets(&self, now: i64, batch: u32) -> StoreResult<u64> {
        self.write(move |connection| {
            Box::pin(async move {
                Ok(sqlx::query(
                    "DELETE FROM rate_limit_buckets WHERE key IN
                     (SELECT key FROM rate_limit_buckets WHERE full_at <= $1 LIMIT $2)",
                )
                .bind(now)
                .bind(i64::from(batch))
                .execute(&mut *connection)
                .await?
                .rows_affected())
            })
        })
        .await
    }

    /// Buckets stored (those not yet full again, or not yet dropped).
    pub async fn rate_limit_bucket_count(&self) -> StoreResult<i64> {
        Ok(sqlx::query("SELECT COUNT(*) FROM rate_limit_buckets")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }
}
