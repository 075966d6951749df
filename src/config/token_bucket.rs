//! A token bucket, the shape of every rate limit: `BURST/PERIOD` is a
//! bucket that holds at most BURST tokens and refills evenly, BURST tokens
//! per PERIOD (one every PERIOD/BURST). What each bucket limits, and where
//! it is stored, is [`super::rate_limits`]'s business.

use std::fmt;
use std::time::Duration;

/// A bucket that would hold a token within this many seconds holds one, so
/// that float rounding never makes a client wait a second more than it was
/// told.
const SLACK_SECS: f64 = 1e-6;

/// A limit: a bucket of `burst` tokens, refilled evenly over `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub burst: u32,
    pub period: Duration,
}

/// A bucket's tokens as of a time (unix seconds), as stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketState {
    pub tokens: f64,
    pub updated_at: i64,
}

impl Limit {
    /// `BURST/PERIOD` (`300/3h`, `20/30m`), or `off` for no limit.
    pub fn parse(text: &str) -> Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let (burst, period) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not BURST/PERIOD (e.g. 300/3h) or off"))?;
        let burst: u32 = burst
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: {burst:?} is not a whole number"))?;
        let period = humantime::parse_duration(period.trim())
            .map_err(|e| format!("{text:?}: period {period:?}: {e}"))?;
        if burst == 0 {
            return Err(format!(
                "{text:?}: the burst must be at least 1; off disables the limit"
            ));
        }
        if period < Duration::from_secs(1) {
            return Err(format!("{text:?}: the period must be at least 1s"));
        }
        Ok(Some(Self { burst, period }))
    }

    /// Tokens regained per second.
    fn rate(&self) -> f64 {
        f64::from(self.burst) / self.period.as_secs_f64()
    }

    /// Whole seconds until a bucket short of `missing` tokens has them.
    fn seconds_to_refill(&self, missing: f64) -> i64 {
        (missing / self.rate() - SLACK_SECS).ceil().max(0.0) as i64
    }

    /// The bucket at `now`: `stored` refilled for the time since it was
    /// written, or full when nothing is stored. A clock behind the stored
    /// time (another replica's) adds nothing and does not move it back.
    pub fn refill(&self, stored: Option<BucketState>, now: i64) -> BucketState {
        let full = f64::from(self.burst);
        match stored {
            None => BucketState {
                tokens: full,
                updated_at: now,
            },
            Some(stored) => {
                let elapsed = now.saturating_sub(stored.updated_at).max(0) as f64;
                BucketState {
                    tokens: (stored.tokens + elapsed * self.rate()).min(full),
                    updated_at: now.max(stored.updated_at),
                }
            }
        }
    }

    /// The bucket after taking one token from `state`, or the whole seconds
    /// until it holds one (at least 1, at most the period).
    pub fn take(&self, state: BucketState) -> Result<BucketState, u64> {
        match self.seconds_to_refill(1.0 - state.tokens) {
            0 => Ok(BucketState {
                tokens: (state.tokens - 1.0).max(0.0),
                updated_at: state.updated_at,
            }),
            wait => Err((wait as u64).clamp(1, self.period.as_secs().max(1))),
        }
    }

    /// When a bucket in `state` is full again; a stored bucket says nothing
    /// after that time that its absence would not.
    pub fn full_at(&self, state: BucketState) -> i64 {
        state
            .updated_at
            .saturating_add(self.seconds_to_refill(f64::from(self.burst) - state.tokens))
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.burst,
            humantime::format_duration(self.period)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(text: &str) -> Limit {
        Limit::parse(text).unwrap().unwrap()
    }

    #[test]
    fn parses_limits() {
        assert_eq!(
            limit("300/3h"),
            Limit {
                burst: 300,
                period: Duration::from_secs(3 * 3600)
            }
        );
        assert_eq!(limit(" 5 / 90m ").period, Duration::from_secs(5400));
        assert_eq!(Limit::parse("off").unwrap(), None);
        assert_eq!(Limit::parse("OFF").unwrap(), None);
        for bad in [
            "", "300", "300/", "/3h", "0/1h", "-1/1h", "3/0s", "3/soon", "x/1h",
        ] {
            assert!(Limit::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(limit("300/3h").to_string(), "300/3h");
    }

    #[test]
    fn a_bucket_starts_full_and_refills_evenly() {
        let l = limit("3/1h");
        let mut state = l.refill(None, 1000);
        assert_eq!(state.tokens, 3.0);
        for _ in 0..3 {
            state = l.take(l.refill(Some(state), 1000)).unwrap();
        }
        assert_eq!(state.tokens, 0.0);
        // One token comes back every 1200 s.
        assert_eq!(l.take(l.refill(Some(state), 1000)), Err(1200));
        assert_eq!(l.take(l.refill(Some(state), 1600)), Err(600));
        assert_eq!(l.take(l.refill(Some(state), 2199)), Err(1));
        let back = l.take(l.refill(Some(state), 2200)).unwrap();
        assert!(back.tokens.abs() < 1e-6, "{back:?}");
        assert_eq!(back.updated_at, 2200);
        // Never more than the burst, however long it waited.
        assert_eq!(l.refill(Some(state), 1_000_000).tokens, 3.0);
        // Full again 3600 s after it was emptied.
        assert_eq!(l.full_at(state), 4600);
        assert_eq!(l.full_at(l.refill(None, 50)), 50);
    }

    #[test]
    fn a_clock_behind_the_stored_time_adds_nothing() {
        let l = limit("10/10s");
        let stored = BucketState {
            tokens: 2.5,
            updated_at: 500,
        };
        assert_eq!(l.refill(Some(stored), 400), stored);
        assert_eq!(l.refill(Some(stored), 501).tokens, 3.5);
    }

    #[test]
    fn the_wait_never_exceeds_the_period() {
        let l = limit("1/1h");
        let empty = BucketState {
            tokens: 0.0,
            updated_at: 0,
        };
        assert_eq!(l.take(empty), Err(3600));
        let l = limit("1000/1s");
        assert_eq!(l.take(empty), Err(1));
    }
}
