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
