//! Public keys made ready to check signatures, kept by thumbprint.
//!
//! Turning a JWK into a verifier (josekit builds DER, and OpenSSL 3 runs its
//! generic key decoder on it) costs several times more than checking an
//! ES256 signature. An account signs every request with the same key, so
//! the verifier is made once per key and algorithm and kept. It is a pure
//! function of the key's public members, which the RFC 7638 thumbprint
//! (SHA-256 over exactly those members) names, so keeping it changes no
//! outcome: a key change brings a new thumbprint, and an error is never
//! kept. At most [`CAPACITY`] keys are held; past that one is dropped for
//! each new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use josekit::jws::JwsVerifier;

use super::jwk::PublicJwk;
use super::problem::Problem;

/// Keys kept at most: every account active at once on a busy server, at
/// about a kilobyte each.
pub const CAPACITY: usize = 4096;

pub type Verifier = Arc<dyn JwsVerifier>;

/// Verifiers by (algorithm, key thumbprint).
pub struct Verifiers {
    capacity: usize,
    by_key: Mutex<HashMap<(String, String), Verifier>>,
}

impl Verifiers {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            by_key: Mutex::default(),
        }
    }

    /// The verifiers every request shares.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<Verifiers> = OnceLock::new();
        SHARED.get_or_init(|| Self::new(CAPACITY))
    }

    /// The verifier of `alg` over `key`, made by `make` unless one is kept.
    pub fn get_or_make(
        &self,
        alg: &str,
        key: &PublicJwk,
        make: impl FnOnce() -> Result<Verifier, Problem>,
    ) -> Result<Verifier, Problem> {
        let id = (alg.to_owned(), key.thumbprint.clone());
        if let Some(kept) = self.lock().get(&id) {
            return Ok(kept.clone());
        }
        // Made outside the lock: other requests need not wait for it. Two
        // requests with a new key may both make it; the second one is kept.
        let made = make()?;
        let mut by_key = self.lock();
        if by_key.len() >= self.capacity {
            if let Some(any) = by_key.keys().next().cloned() {
                by_key.remove(&any);
            }
        }
        by_key.insert(id, made.clone());
        Ok(made)
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Verifier>> {
        // A panic elsewhere cannot leave the map half-changed: every change
        // is one insert or remove.
        self.by_key
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;
    use std::cell::Cell;

    fn ed25519(byte: u8) -> PublicJwk {
        PublicJwk::parse(
            &json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([byte; 32])}),
        )
        .unwrap()
    }

    fn make(key: &PublicJwk, made: &Cell<usize>) -> Result<Verifier, Problem> {
        made.set(made.get() + 1);
        let jwk = josekit::jwk::Jwk::from_map(key.value.as_object().unwrap().clone()).unwrap();
        Ok(Arc::new(
            josekit::jws::EdDSA.verifier_from_jwk(&jwk).unwrap(),
        ))
    }

    #[test]
    fn a_key_is_made_once_per_algorithm() {
        let verifiers = Verifiers::new(8);
        let (key, made) = (ed25519(1), Cell::new(0));
        for _ in 0..3 {
            verifiers
                .get_or_make("EdDSA", &key, || make(&key, &made))
                .unwrap();
        }
        assert_eq!(made.get(), 1);
        verifiers
            .get_or_make("ES256", &key, || make(&key, &made))
            .unwrap();
        assert_eq!(made.get(), 2, "another algorithm is another verifier");
        verifiers
            .get_or_make("EdDSA", &ed25519(2), || make(&key, &made))
            .unwrap();
        assert_eq!(made.get(), 3, "another key is another verifier");
    }

    #[test]
    fn a_failure_is_not_kept() {
        let verifiers = Verifiers::new(8);
        let key = ed25519(1);
        let refused = verifiers.get_or_make("EdDSA", &key, || Err(Problem::malformed("no")));
        assert!(refused.is_err());
        assert!(verifiers.is_empty());
        let made = Cell::new(0);
        verifiers
            .get_or_make("EdDSA", &key, || make(&key, &made))
            .unwrap();
        assert_eq!(made.get(), 1);
    }

    #[test]
    fn holds_at_most_its_capacity() {
        let verifiers = Verifiers::new(4);
        let made = Cell::new(0);
        for byte in 0..10 {
            let key = ed25519(byte);
            verifiers
                .get_or_make("EdDSA", &key, || make(&key, &made))
                .unwrap();
            assert!(verifiers.len() <= 4);
        }
        assert_eq!(verifiers.len(), 4);
    }
}
