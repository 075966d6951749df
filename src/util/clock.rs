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

/// RFC 3339 text for a unix timestamp, as ACME objects carry times.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
