//! Rate limits (RFC 8555 §6.6) and the caps on what one account may hold,
//! each a token bucket ([`Limit`]) or a count:
//!
//! - new orders per account, taken at newOrder;
//! - certificates per registered domain (or IP address), all accounts
//!   together: checked at newOrder, taken at finalize, once the order's
//!   names are validated. Unvalidated orders cost nothing here, so nobody
//!   can spend a domain's tokens without proving control of its names
//!   (as Boulder's certificatesPerDomain);
//! - new accounts per client address, taken at newAccount;
//! - pending authorizations per account, counted at newOrder.
//!
//! When one is exhausted the request is refused with `rateLimited` and a
//! `Retry-After` of the seconds until it would pass.
//!
//! The buckets live in the database and change in one `BEGIN IMMEDIATE`
//! transaction, the one that stores what they pay for
//! ([`Store::create_order_within_limits`](crate::store::Store::create_order_within_limits),
//! [`Store::begin_finalize`](crate::store::Store::begin_finalize)), so they
//! hold across restarts and across replicas sharing the database, and a
//! token is never taken for something that did not happen.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::protocol::identifier::IdentifierKind;
use crate::protocol::identifiers::OrderedIdentifier;

pub use super::token_bucket::{BucketState, Limit};

/// Default of `rate-limit-orders-per-account`: far above what a homelab's
/// clients ask for, low enough to stop a client stuck in a loop.
pub const DEFAULT_ORDERS_PER_ACCOUNT: &str = "300/3h";
/// Default of `rate-limit-orders-per-domain`, which counts certificates
/// issued. A homelab usually has all its names under one registered domain,
/// so this is in effect a limit for the whole server, and as generous.
pub const DEFAULT_ORDERS_PER_DOMAIN: &str = "300/1h";
/// Default of `rate-limit-new-accounts-per-ip`. Boulder allows 10 per 3
/// hours per address on the public Internet; inside a network many clients
/// share an address (NAT, a Kubernetes node, a proxy), so a burst of 100.
pub const DEFAULT_NEW_ACCOUNTS_PER_IP: &str = "100/3h";
/// Default of `pending-authorizations-per-account`: Let's Encrypt's
/// pending-authorizations limit (Boulder's `PendingAuthorizationsPerAccount`),
/// three times the names of the largest order certgate accepts.
pub const DEFAULT_PENDING_AUTHORIZATIONS_PER_ACCOUNT: u32 = 300;
/// Longest `Retry-After` for the pending-authorization cap: a slot frees up
/// whenever a validation finishes, which the earliest expiry does not tell.
pub const PENDING_RETRY_AFTER_MAX: u64 = 3600;

/// The limits newOrder, finalize and newAccount are held to; `None` is no
/// limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub orders_per_account: Option<Limit>,
    /// Certificates per registered domain or IP address (the setting keeps
    /// its first name, `rate-limit-orders-per-domain`).
    pub orders_per_domain: Option<Limit>,
    pub new_accounts_per_ip: Option<Limit>,
    pub pending_authorizations_per_account: Option<u32>,
}

impl Default for RateLimits {
    fn default() -> Self {
        let default = |text| Limit::parse(text).expect("the default limits parse");
        Self {
            orders_per_account: default(DEFAULT_ORDERS_PER_ACCOUNT),
            orders_per_domain: default(DEFAULT_ORDERS_PER_DOMAIN),
            new_accounts_per_ip: default(DEFAULT_NEW_ACCOUNTS_PER_IP),
            pending_authorizations_per_account: Some(DEFAULT_PENDING_AUTHORIZATIONS_PER_ACCOUNT),
        }
    }
}

impl RateLimits {
    /// No limits at all.
    pub const OFF: Self = Self {
        orders_per_account: None,
        orders_per_domain: None,
        new_accounts_per_ip: None,
        pending_authorizations_per_account: None,
    };

    /// What a newOrder by `account_id` for `names` is held to.
    pub fn for_order(&self, account_id: &str, names: &[OrderedIdentifier]) -> OrderLimits {
        OrderLimits {
            taken: self.order_buckets(account_id),
            checked: self.certificate_buckets(names),
            pending_authorizations: self.pending_authorizations_per_account,
        }
    }

    /// The bucket a newOrder by `account_id` takes a token from.
    pub fn order_buckets(&self, account_id: &str) -> Vec<Bucket> {
        self.orders_per_account
            .map(|limit| Bucket {
                key: format!("account:{account_id}"),
                limit,
                kind: BucketKind::OrdersPerAccount,
            })
            .into_iter()
            .collect()
    }

    /// The buckets a certificate for `names` takes a token from, each once:
    /// one per registered domain or IP address. newOrder only checks them.
    pub fn certificate_buckets(&self, names: &[OrderedIdentifier]) -> Vec<Bucket> {
        let Some(limit) = self.orders_per_domain else {
            return Vec::new();
        };
        let mut seen = BTreeSet::new();
        names
            .iter()
            .map(|name| match name.kind {
                IdentifierKind::Dns => format!("domain:{}", registered_domain(&name.base)),
                IdentifierKind::Ip => format!("ip:{}", name.base),
            })
            .filter(|key| seen.insert(key.clone()))
            .map(|key| Bucket {
                key,
                limit,
                kind: BucketKind::CertificatesPerDomain,
            })
            .collect()
    }

    /// The bucket a new account from `client` takes a token from: one per
    /// IPv4 address, one per IPv6 /64 (the least a client network holds).
    pub fn new_account_buckets(&self, client: IpAddr) -> Vec<Bucket> {
        let Some(limit) = self.new_accounts_per_ip else {
            return Vec::new();
        };
        let key = match client {
            IpAddr::V4(v4) => format!("client:{v4}"),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => format!("client:{v4}"),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    format!("client:{}/64", std::net::Ipv6Addr::from(prefix))
                }
            },
        };
        vec![Bucket {
            key,
            limit,
            kind: BucketKind::NewAccountsPerIp,
        }]
    }
}

/// The limits one newOrder must pass, all decided in the write that
/// stores it; the default is none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderLimits {
    /// Buckets it takes a token from: the account's new orders.
    pub taken: Vec<Bucket>,
    /// Buckets that must hold a token, taken later by the certificate.
    pub checked: Vec<Bucket>,
    /// Most pending authorizations its account may hold with it.
    pub pending_authorizations: Option<u32>,
}

/// What a bucket counts, and the setting that limits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketKind {
    OrdersPerAccount,
    CertificatesPerDomain,
    NewAccountsPerIp,
}

impl BucketKind {
    pub fn setting(self) -> &'static str {
        match self {
            Self::OrdersPerAccount => "rate-limit-orders-per-account",
            Self::CertificatesPerDomain => "rate-limit-orders-per-domain",
            Self::NewAccountsPerIp => "rate-limit-new-accounts-per-ip",
        }
    }

    /// What the bucket counts, in words.
    pub fn counts(self) -> &'static str {
        match self {
            Self::OrdersPerAccount => "new orders",
            Self::CertificatesPerDomain => "certificates issued",
            Self::NewAccountsPerIp => "new accounts",
        }
    }
}

/// One token bucket: its key in the database and the limit it enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// `account:<id>`, `domain:<registered domain>`, `ip:<address>` or
    /// `client:<address or /64>`.
    pub key: String,
    pub limit: Limit,
    pub kind: BucketKind,
}

/// Why a request was refused: the empty bucket that a token returns to last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitRefusal {
    pub bucket: Bucket,
    /// Seconds until the bucket holds a token.
    pub retry_after: u64,
}

/// Why newOrder was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRefusal {
    RateLimit(RateLimitRefusal),
    /// The account would hold more pending authorizations than `limit`;
    /// the earliest of them expires in `expires_in` seconds.
    PendingAuthorizations {
        limit: u32,
        expires_in: u64,
    },
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
    use super::*;
    use crate::protocol::identifiers::{parse_dns, parse_ip};
    use crate::store::testing::on_both_backends;
    use crate::store::Store;

    fn limit(text: &str) -> Limit {
        Limit::parse(text).unwrap().unwrap()
    }

    #[test]
    fn defaults() {
        let defaults = RateLimits::default();
        assert_eq!(defaults.orders_per_account, Some(limit("300/3h")));
        assert_eq!(defaults.orders_per_domain, Some(limit("300/1h")));
        assert_eq!(defaults.new_accounts_per_ip, Some(limit("100/3h")));
        assert_eq!(defaults.pending_authorizations_per_account, Some(300));
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
    fn an_order_and_its_certificate_take_one_token_per_bucket() {
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
        let limits = RateLimits::default();
        assert_eq!(keys_of(limits.order_buckets("acct1")), ["account:acct1"]);
        assert_eq!(
            keys_of(limits.certificate_buckets(&names)),
            [
                "domain:lab.example",
                "domain:other.example",
                "domain:example.co.uk",
                "ip:10.0.0.5",
                "ip:::1",
            ]
        );
        assert!(RateLimits::OFF.order_buckets("acct1").is_empty());
        assert!(RateLimits::OFF.certificate_buckets(&names).is_empty());
    }

    #[test]
    fn new_accounts_count_per_ipv4_address_and_per_ipv6_64() {
        let limits = RateLimits::default();
        let key = |ip: &str| keys_of(limits.new_account_buckets(ip.parse().unwrap()));
        assert_eq!(key("192.0.2.7"), ["client:192.0.2.7"]);
        assert_eq!(key("::ffff:192.0.2.7"), ["client:192.0.2.7"]);
        assert_eq!(key("2001:db8:1:2:aaaa::1"), ["client:2001:db8:1:2::/64"]);
        assert_eq!(key("2001:db8:1:2::ffff"), ["client:2001:db8:1:2::/64"]);
        assert_eq!(key("2001:db8:1:3::1"), ["client:2001:db8:1:3::/64"]);
        assert!(RateLimits::OFF
            .new_account_buckets("192.0.2.7".parse().unwrap())
            .is_empty());
    }

    fn keys_of(buckets: Vec<Bucket>) -> Vec<String> {
        buckets.into_iter().map(|b| b.key).collect()
    }

    async fn store() -> (crate::store::testing::TestDatabase, Store) {
        crate::store::testing::temporary().await
    }

    fn bucket(key: &str, text: &str) -> Bucket {
        Bucket {
            key: key.into(),
            limit: limit(text),
            kind: BucketKind::OrdersPerAccount,
        }
    }

    async fn take_one(store: &Store, bucket: &Bucket, now: i64) -> Result<(), RateLimitRefusal> {
        store
            .take_tokens(std::slice::from_ref(bucket), now)
            .await
            .unwrap()
    }

    on_both_backends! {
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
    }

    on_both_backends! {
        async fn stored_buckets_survive_reopening_and_full_ones_are_dropped() {
            let database = crate::store::testing::TestDatabase::create().await;
            let url = database.url();
            let a = bucket("account:x", "2/2h");
            let store = Store::open(url).await.unwrap();
            for _ in 0..2 {
                assert_eq!(take_one(&store, &a, 100).await, Ok(()));
            }
            store.close().await;
            let store = Store::open(url).await.unwrap();
            let refused = take_one(&store, &a, 200).await;
            assert_eq!(refused.unwrap_err().retry_after, 3500);
            assert_eq!(store.rate_limit_bucket_count().await.unwrap(), 1);
            // Full again at 100 + 2h: the sweep deletes the row, and the
            // bucket reads as full.
            let other = bucket("account:y", "2/2h");
            assert_eq!(take_one(&store, &other, 100 + 7200).await, Ok(()));
            assert_eq!(store.rate_limit_bucket_count().await.unwrap(), 2);
            assert_eq!(store.purge_full_buckets(100 + 7200, 10).await.unwrap(), 1);
            assert_eq!(store.rate_limit_bucket_count().await.unwrap(), 1);
            for _ in 0..2 {
                assert_eq!(take_one(&store, &a, 100 + 7200).await, Ok(()));
            }
        }
    }
}
