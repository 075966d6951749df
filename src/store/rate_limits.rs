//! The token buckets of the rate limits ([`crate::config::rate_limits`]).

use sqlx::AnyConnection;
use sqlx::Row;

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
    // A bucket full again is no different from one never stored, so
    // dropping them is right whatever this request comes to.
    sqlx::query("DELETE FROM rate_limit_buckets WHERE full_at <= $1")
        .bind(now)
        .execute(&mut *connection)
        .await?;
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
/// then no bucket changes.
pub(super) async fn take_tokens_on(
    connection: &mut AnyConnection,
    buckets: &[Bucket],
    now: i64,
) -> StoreResult<Result<(), RateLimitRefusal>> {
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
    /// sharing the database) queue on the write lock instead of both taking
    /// the last token. `Err(refusal)` names the empty bucket that refills
    /// last; then no bucket changes. newAccount takes its token this way;
    /// newOrder and finalize take theirs together with what they store
    /// ([`Store::create_order_within_limits`], [`Store::begin_finalize`]).
    pub async fn take_tokens(
        &self,
        buckets: &[Bucket],
        now: i64,
    ) -> StoreResult<Result<(), RateLimitRefusal>> {
        let buckets = buckets.to_vec();
        self.write(move |connection| {
            let buckets = buckets.clone();
            Box::pin(async move { take_tokens_on(connection, &buckets, now).await })
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
