//! Rate limits on newOrder (RFC 8555 §6.6): orders per account and orders per
//! registered domain, each a token bucket.
//!
//! A limit `BURST/PERIOD` is a bucket that holds at most BURST tokens and
//! refills evenly, BURST tokens per PERIOD (one every PERIOD/BURST). A
//! newOrder takes one token from its account's bucket and one from the bucket
//! of each registered domain (or IP address) it names, all or none. When one
//! of them is empty the order is refused with `rateLimited` and a
//! `Retry-After` of the seconds until it holds a token again.
//!
//! The buckets live in the database and change in one `BEGIN IMMEDIATE`
//! transaction, the one that stores the order they pay for
//! ([`Store::create_order_within_limits`](crate::store::Store::create_order_within_limits)),
//! so they hold across restarts and across replicas sharing the database,
//! and a token is never taken for an order that was not created.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use crate::protocol::identifier::IdentifierKind;
use crate::protocol::identifiers::OrderedIdentifier;
use crate::protocol::problem::{Problem, ProblemType};

/// Default of `rate-limit-orders-per-account`: far above what a homelab's
/// clients ask for, low enough to stop a client stuck in a loop.
pub const DEFAULT_ORDERS_PER_ACCOUNT: &str = "300/3h";
/// Default of `rate-limit-orders-per-domain`. A homelab usually has all its
/// names under one registered domain, so this is in effect a limit for the
/// whole server, and as generous.
pub const DEFAULT_ORDERS_PER_DOMAIN: &str = "300/1h";

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

/// The limits newOrder is held to; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub orders_per_account: Option<Limit>,
    pub orders_per_domain: Option<Limit>,
}

impl Default for RateLimits {
    fn default() -> Self {
        let default = |text| Limit::parse(text).expect("the default limits parse");
        Self {
            orders_per_account: default(DEFAULT_ORDERS_PER_ACCOUNT),
            orders_per_domain: default(DEFAULT_ORDERS_PER_DOMAIN),
        }
    }
}

impl RateLimits {
    /// No limits at all.
    pub const OFF: Self = Self {
        orders_per_account: None,
        orders_per_domain: None,
    };

    /// The buckets a newOrder by `account_id` for `names` takes a token from,
    /// each once: the account's, then one per registered domain or address.
    pub fn buckets_for_order(&self, account_id: &str, names: &[OrderedIdentifier]) -> Vec<Bucket> {
        let mut buckets = Vec::new();
        if let Some(limit) = self.orders_per_account {
            buckets.push(Bucket {
                key: format!("account:{account_id}"),
                limit,
                setting: "rate-limit-orders-per-account",
            });
        }
        if let Some(limit) = self.orders_per_domain {
            let mut seen = BTreeSet::new();
            for name in names {
                let key = match name.kind {
                    IdentifierKind::Dns => format!("domain:{}", registered_domain(&name.base)),
                    IdentifierKind::Ip => format!("ip:{}", name.base),
                };
                if seen.insert(key.clone()) {
                    buckets.push(Bucket {
                        key,
                        limit,
                        setting: "rate-limit-orders-per-domain",
                    });
                }
            }
        }
        buckets
    }
}

/// One token bucket: its key in the database and the limit it enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// `account:<id>`, `domain:<registered domain>` or `ip:<address>`.
    pub key: String,
    pub limit: Limit,
    /// The setting that configures the limit, for messages.
    pub setting: &'static str,
}

/// Why an order was refused: the empty bucket that a token returns to last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitRefusal {
    pub bucket: Bucket,
    /// Seconds until the bucket holds a token.
    pub retry_after: u64,
}

impl RateLimitRefusal {
    /// The `rateLimited` problem (HTTP 429) with its `Retry-After`.
    pub fn problem(&self) -> Problem {
        let Bucket {
            key,
            limit,
            setting,
        } = &self.bucket;
        let what = match key.split_once(':') {
            Some(("account", _)) => "this account".to_owned(),
            Some(("domain", domain)) => format!("registered domain {domain}"),
            Some(("ip", address)) => format!("IP address {address}"),
            _ => key.clone(),
        };
        Problem::new(
            ProblemType::RateLimited,
            format!(
                "too many new orders for {what}: limit {setting} = {limit} \
                 (bucket {key}); retry after {} s",
                self.retry_after
            ),
        )
        .with_retry_after(self.retry_after)
    }
}

/// The registered domain `name` counts under: the label left of its public
/// suffix and that suffix (`example.co.uk` for `nas.lab.example.co.uk`).
/// A name outside the Public Suffix List (`.home`, `.lan`, `.test`,
/// `.internal`) counts under its last two labels, a name of one label or a
/// public suffix itself under the name.
pub fn registered_domain(name: &str) -> String {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(domain) = psl::domain(name.as_bytes()) {
        if domain.suffix().is_known() {
            if let Ok(domain) = std::str::from_utf8(domain.trim().as_bytes()) {
                return domain.to_owned();
            }
        }
    }
    let mut labels = name.rsplitn(3, '.');
    match (labels.next(), labels.next()) {
        (Some(tld), Some(second)) => format!("{second}.{tld}"),
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;
    use crate::protocol::identifiers::{parse_dns, parse_ip};
    use crate::store::Store;

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
        let defaults = RateLimits::default();
        assert_eq!(defaults.orders_per_account, Some(limit("300/3h")));
        assert_eq!(defaults.orders_per_domain, Some(limit("300/1h")));
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

    #[test]
    fn registered_domains() {
        for (name, domain) in [
            ("nas.lab.example.com", "example.com"),
            ("example.com", "example.com"),
            ("a.b.example.co.uk", "example.co.uk"),
            ("printer.home.example.org", "example.org"),
            // Private suffixes of the list count too: each user's own domain.
            ("nas.alice.duckdns.org", "alice.duckdns.org"),
            // Outside the list: the last two labels.
            ("nas.lab.home", "lab.home"),
            ("a.b.c.lan", "c.lan"),
            ("nas.lab.example", "lab.example"),
            ("x.y.test", "y.test"),
            ("NAS.Lab.Internal.", "lab.internal"),
            // One label, or a public suffix itself: the name.
            ("localhost", "localhost"),
            ("co.uk", "co.uk"),
        ] {
            assert_eq!(registered_domain(name), domain, "{name}");
        }
    }

    #[test]
    fn an_order_takes_one_token_per_bucket() {
        let names: Vec<OrderedIdentifier> = [
            "a.lab.example",
            "*.lab.example",
            "b.other.example",
            "www.example.co.uk",
        ]
        .iter()
        .map(|n| parse_dns(n).unwrap())
        .chain([parse_ip("10.0.0.5").unwrap(), parse_ip("::1").unwrap()])
        .collect();
        let keys: Vec<String> = RateLimits::default()
            .buckets_for_order("acct1", &names)
            .into_iter()
            .map(|b| b.key)
            .collect();
        assert_eq!(
            keys,
            [
                "account:acct1",
                "domain:lab.example",
                "domain:other.example",
                "domain:example.co.uk",
                "ip:10.0.0.5",
                "ip:::1",
            ]
        );
        assert!(RateLimits::OFF
            .buckets_for_order("acct1", &names)
            .is_empty());
    }

    #[test]
    fn a_refusal_is_rate_limited_with_retry_after() {
        let refusal = RateLimitRefusal {
            bucket: Bucket {
                key: "domain:lab.example".into(),
                limit: limit("2/1h"),
                setting: "rate-limit-orders-per-domain",
            },
            retry_after: 1800,
        };
        let problem = refusal.problem();
        assert_eq!(problem.kind, ProblemType::RateLimited);
        assert_eq!(problem.status, 429);
        assert!(problem.detail.contains("domain:lab.example"), "{problem}");
        assert!(problem.detail.contains("2/1h"), "{problem}");
        let response = problem.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1800");
    }

    async fn store() -> (tempfile::TempDir, Store) {
        crate::store::testing::temporary().await
    }

    fn bucket(key: &str, text: &str) -> Bucket {
        Bucket {
            key: key.into(),
            limit: limit(text),
            setting: "test",
        }
    }

    async fn take_one(store: &Store, bucket: &Bucket, now: i64) -> Result<(), RateLimitRefusal> {
        store
            .take_tokens(std::slice::from_ref(bucket), now)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn stored_buckets_take_all_or_nothing() {
        let (_dir, store) = store().await;
        let a = bucket("domain:a.example", "1/1h");
        let b = bucket("domain:b.example", "2/1h");
        assert_eq!(take_one(&store, &a, 0).await, Ok(()));
        // a is empty: b keeps both its tokens.
        let refused = store
            .take_tokens(&[b.clone(), a.clone()], 10)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.bucket, a);
        assert_eq!(refused.retry_after, 3590);
        assert_eq!(take_one(&store, &b, 10).await, Ok(()));
        assert_eq!(take_one(&store, &b, 10).await, Ok(()));
        // Both empty: the later of the two is the one to wait for.
        let refused = store
            .take_tokens(&[a.clone(), b.clone()], 20)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((refused.bucket, refused.retry_after), (a.clone(), 3580));
        // Time refills them.
        assert_eq!(store.take_tokens(&[a, b], 3600).await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn stored_buckets_survive_reopening_and_full_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let a = bucket("account:x", "2/2h");
        let store = Store::open(&url).await.unwrap();
        for _ in 0..2 {
            assert_eq!(take_one(&store, &a, 100).await, Ok(()));
        }
        store.close().await;
        let store = Store::open(&url).await.unwrap();
        let refused = take_one(&store, &a, 200).await;
        assert_eq!(refused.unwrap_err().retry_after, 3500);
        assert_eq!(store.rate_limit_bucket_count().await.unwrap(), 1);
        // Full again at 100 + 2h: the row goes, and the bucket reads as full.
        let other = bucket("account:y", "2/2h");
        assert_eq!(take_one(&store, &other, 100 + 7200).await, Ok(()));
        assert_eq!(store.rate_limit_bucket_count().await.unwrap(), 1);
        for _ in 0..2 {
            assert_eq!(take_one(&store, &a, 100 + 7200).await, Ok(()));
        }
    }
}
