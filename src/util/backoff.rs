//! Waiting between attempts at something that may succeed later: a CA that
//! is unavailable, a database that is busy. Background work retries rather
//! than giving up, because giving up would strand an order in `processing`.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// Doubling pauses from one second up to a minute.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The pause the next [`wait`](Self::wait) will take.
    pub fn next_delay(&self) -> Duration {
        self.next
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Self::MAX);
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `attempt` until it succeeds, logging each failure as `what`.
pub async fn until_ok<T, E, F, Fut>(what: &str, mut attempt: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::new();
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => {
                tracing::warn!(error = %e, retry_in_s = backoff.next_delay().as_secs(), "{what} failed; retrying");
                backoff.wait().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retries_until_the_attempt_succeeds_with_growing_pauses() {
        let started = tokio::time::Instant::now();
        let mut failures_left = 3;
        let value = until_ok("test", || {
            let fail = failures_left > 0;
            failures_left -= 1;
            async move {
                if fail {
                    Err("busy")
                } else {
                    Ok(42)
                }
            }
        })
        .await;
        assert_eq!(value, 42);
        // 1 s + 2 s + 4 s of (virtual) waiting.
        assert_eq!(started.elapsed(), Duration::from_secs(7));
    }
}
