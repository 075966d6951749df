//! Time as certgate sees it: behind a trait, so that handlers and background
//! tasks all read one clock, and code that builds the state itself (a test,
//! a tool) can substitute its own.

pub trait Clock: Send + Sync {
    /// Unix seconds, UTC.
    fn now(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// `duration` after `at` (unix seconds), saturating rather than wrapping
/// for durations no clock will reach.
pub fn seconds_after(at: i64, duration: std::time::Duration) -> i64 {
    at.saturating_add(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}
