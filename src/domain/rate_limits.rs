//! The rate limits newOrder is held to: the tokens an order takes, taken
//! from the store's buckets all or none.

use crate::config::rate_limits::RateLimits;
use crate::protocol::identifiers::OrderedIdentifier;
use crate::protocol::problem::Problem;
use crate::store::Store;

/// Takes the tokens a newOrder by `account_id` for `names` needs, or refuses
/// it with `rateLimited`. Runs before anything of the order is stored.
pub async fn check_new_order(
    store: &Store,
    limits: &RateLimits,
    now: i64,
    account_id: &str,
    names: &[OrderedIdentifier],
) -> Result<(), Problem> {
    let buckets = limits.buckets_for_order(account_id, names);
    if buckets.is_empty() {
        return Ok(());
    }
    match store.take_tokens(&buckets, now).await? {
        Ok(()) => Ok(()),
        Err(refusal) => {
            tracing::info!(
                bucket = %refusal.bucket.key,
                limit = %refusal.bucket.limit,
                retry_after = refusal.retry_after,
                "new order refused by a rate limit"
            );
            Err(refusal.problem())
        }
    }
}
