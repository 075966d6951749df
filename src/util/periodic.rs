//! Housekeeping that runs now and then for as long as certgate runs (expired
//! nonces, full rate-limit buckets, old orders), and deletes in small
//! batches so that a request's write queued behind it waits milliseconds,
//! not the length of a large purge.

use std::future::Future;
use std::time::Duration;

/// Runs `job` now and then every `period`, forever. A run that takes longer
/// than `period` delays the next one instead of bunching them up.
pub async fn every<F, Fut>(period: Duration, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        job().await;
    }
}

/// Runs `batch`, which deletes at most `size` rows and says how many, until
/// one deletes fewer; returns how many went in all.
pub async fn in_batches<E, F, Fut>(size: u32, mut batch: F) -> Result<u64, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, E>>,
{
    let mut total = 0;
    loop {
        let deleted = batch().await?;
        total += deleted;
        if deleted < u64::from(size) {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_run_until_one_comes_back_short() {
        let mut left = 7_u64;
        let total = in_batches::<(), _, _>(3, || {
            let deleted = left.min(3);
            left -= deleted;
            async move { Ok(deleted) }
        })
        .await;
        assert_eq!((total, left), (Ok(7), 0));
    }

    #[tokio::test]
    async fn a_failed_batch_ends_the_purge_with_its_error() {
        let total = in_batches(3, || async { Err::<u64, _>("disk full") }).await;
        assert_eq!(total, Err("disk full"));
    }
}
