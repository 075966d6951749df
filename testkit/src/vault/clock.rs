//! The stand-in's own clock. Tests move it forward to expire tokens and
//! certificates without waiting; everything time-dependent reads it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Debug)]
pub struct Clock {
    /// Seconds added to the real time (or to the frozen one).
    offset: AtomicI64,
    /// When set, the time the clock stands at, moved only by `advance`.
    frozen_at: Option<OffsetDateTime>,
}

impl Clock {
    /// The real time, or (`frozen`) the real time of now held still, so
    /// that a test comparing token TTLs to the second is not moved by a
    /// second ticking between two of its requests.
    pub fn new(frozen: bool) -> Self {
        Self {
            offset: AtomicI64::new(0),
            frozen_at: frozen.then(|| {
                OffsetDateTime::now_utc()
                    .replace_nanosecond(0)
                    .expect("0 ns is valid")
            }),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.frozen_at.unwrap_or_else(OffsetDateTime::now_utc)
            + time::Duration::seconds(self.offset.load(Ordering::SeqCst))
    }

    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).expect("duration fits in i64");
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

/// RFC 3339 text of a unix time, as Vault prints `expire_time` and `revocation_time_rfc3339`.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .expect("valid unix time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable time")
}
