//! The stand-in's own clock. Tests move it forward to expire tokens and
//! certificates without waiting; everything time-dependent reads it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Debug, Default)]
pub struct Clock {
    /// Seconds added to the real time.
    offset: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset.load(Ordering::SeqCst))
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
