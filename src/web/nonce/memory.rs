//! Nonces in the memory of the one process that serves a SQLite
//! database: no SQL on any request for them.
//!
//! A nonce is valid once, for the store's lifetime. Real clients give up
//! after one or two `badNonce` answers, so a nonce we handed out is never
//! dropped early except when the store is full — and the capacity is far
//! above what a fleet of clients holds at once.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{decode, encode, random, NonceBytes};

#[derive(Debug)]
pub struct NonceStore {
    lifetime: Duration,
    capacity: usize,
    inner: Mutex<Issued>,
}

#[derive(Debug, Default)]
struct Issued {
    /// Outstanding nonces and when each was issued.
    live: HashMap<NonceBytes, Instant>,
    /// Issue order, for expiring the oldest first. May hold nonces already
    /// consumed; they are skipped when reached.
    order: VecDeque<(NonceBytes, Instant)>,
}

impl NonceStore {
    /// Default lifetime: comfortably above the hour RFC-following clients
    /// (and slow operators) may hold one.
    pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(2 * 3600);
    /// About 100 MB at most; enough for a million clients mid-request.
    pub const DEFAULT_CAPACITY: usize = 1_000_000;

    pub fn new(lifetime: Duration, capacity: usize) -> Self {
        Self {
            lifetime,
            capacity,
            inner: Mutex::new(Issued::default()),
        }
    }

    /// Issues a fresh nonce.
    pub fn issue(&self) -> String {
        let bytes = random();
        let now = Instant::now();
        let mut issued = self.inner.lock().expect("nonce store lock");
        issued.prune(now, self.lifetime, self.capacity.saturating_sub(1));
        issued.live.insert(bytes, now);
        issued.order.push_back((bytes, now));
        encode(bytes)
    }

    /// Consumes `nonce`: true exactly once for a nonce we issued that has not
    /// expired.
    pub fn consume(&self, nonce: &str) -> bool {
        let Some(bytes) = decode(nonce) else {
            return false;
        };
        let now = Instant::now();
        let mut issued = self.inner.lock().expect("nonce store lock");
        match issued.live.remove(&bytes) {
            Some(at) => now.duration_since(at) < self.lifetime,
            None => false,
        }
    }

    /// Whether [`NonceStore::consume`] would take `nonce` now, without
    /// taking it: lets a request with a nonce we never issued be refused
    /// before its signature costs any work, while a valid nonce is spent
    /// only by a request whose signature holds.
    pub fn is_live(&self, nonce: &str) -> bool {
        let Some(bytes) = decode(nonce) else {
            return false;
        };
        let issued = self.inner.lock().expect("nonce store lock");
        issued
            .live
            .get(&bytes)
            .is_some_and(|at| at.elapsed() < self.lifetime)
    }
}

impl Issued {
    /// Drops expired nonces, then the oldest ones until at most `keep` remain.
    fn prune(&mut self, now: Instant, lifetime: Duration, keep: usize) {
        while let Some(&(bytes, at)) = self.order.front() {
            let expired = now.duration_since(at) >= lifetime;
            if !expired && self.order.len() <= keep {
                break;
            }
            self.order.pop_front();
            if self.live.get(&bytes) == Some(&at) {
                self.live.remove(&bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_exactly_once() {
        let store = NonceStore::new(NonceStore::DEFAULT_LIFETIME, 10);
        let n = store.issue();
        assert!(store.consume(&n));
        assert!(!store.consume(&n));
    }

    #[test]
    fn unknown_and_garbage_nonces_are_refused() {
        let store = NonceStore::new(NonceStore::DEFAULT_LIFETIME, 10);
        assert!(!store.consume("AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!store.consume("not base64 !"));
        assert!(!store.consume(""));
    }

    #[test]
    fn checking_a_nonce_does_not_spend_it() {
        let store = NonceStore::new(NonceStore::DEFAULT_LIFETIME, 10);
        let n = store.issue();
        assert!(store.is_live(&n) && store.is_live(&n));
        assert!(store.consume(&n));
        assert!(!store.is_live(&n));
        assert!(!store.is_live("AAAAAAAAAAAAAAAAAAAAAA") && !store.is_live("not base64 !"));
        let expired = NonceStore::new(Duration::ZERO, 10);
        assert!(!expired.is_live(&expired.issue()));
    }

    #[test]
    fn an_expired_nonce_is_refused() {
        let store = NonceStore::new(Duration::ZERO, 10);
        let n = store.issue();
        assert!(!store.consume(&n));
    }

    #[test]
    fn capacity_drops_the_oldest_first_and_keeps_the_newest() {
        let store = NonceStore::new(NonceStore::DEFAULT_LIFETIME, 3);
        let nonces: Vec<String> = (0..5).map(|_| store.issue()).collect();
        assert!(!store.consume(&nonces[0]));
        assert!(!store.consume(&nonces[1]));
        for n in &nonces[2..] {
            assert!(store.consume(n), "recent nonce refused");
        }
    }

    #[test]
    fn consumed_nonces_do_not_count_against_capacity_forever() {
        let store = NonceStore::new(NonceStore::DEFAULT_LIFETIME, 4);
        for _ in 0..100 {
            let n = store.issue();
            assert!(store.consume(&n));
        }
        let inner = store.inner.lock().unwrap();
        assert!(inner.order.len() <= 4 && inner.live.is_empty());
    }
}
