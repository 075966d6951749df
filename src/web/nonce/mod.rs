//! Anti-replay nonces (RFC 8555 §6.5): 128 random bits, valid once, for
//! [`NonceStore::DEFAULT_LIFETIME`].
//!
//! Where they are kept follows from who must know them. One process serves
//! a SQLite database (`serve.lock`), so it keeps its nonces in memory and a
//! request spends no SQL on them ([`NonceStore`]). Replicas on PostgreSQL
//! keep them in the database, so that a nonce one replica issued is good
//! once on any of them ([`SharedNonces`]). Handlers see one [`Nonces`]
//! either way; with the database, a nonce that cannot be issued or checked
//! is a database fault (`503`), never a `badNonce`.

mod memory;
mod shared;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

pub use memory::NonceStore;
pub use shared::SharedNonces;

use crate::store::StoreResult;

type NonceBytes = [u8; 16];

/// The nonces of this server, wherever they are kept.
pub enum Nonces {
    /// In this process's memory: SQLite, one process.
    InMemory(NonceStore),
    /// In the database every replica shares: PostgreSQL.
    Shared(SharedNonces),
}

impl Nonces {
    /// Issues a fresh nonce.
    pub async fn issue(&self) -> StoreResult<String> {
        match self {
            Self::InMemory(nonces) => Ok(nonces.issue()),
            Self::Shared(nonces) => nonces.issue().await,
        }
    }

    /// Whether [`Nonces::consume`] would take `nonce` now, without taking
    /// it: lets a request with a nonce we never issued be refused before
    /// its signature costs any work, while a valid nonce is spent only by
    /// a request whose signature holds.
    pub async fn is_live(&self, nonce: &str) -> StoreResult<bool> {
        match self {
            Self::InMemory(nonces) => Ok(nonces.is_live(nonce)),
            Self::Shared(nonces) => nonces.is_live(nonce).await,
        }
    }

    /// Consumes `nonce`: true exactly once for a nonce we issued that has
    /// not expired.
    pub async fn consume(&self, nonce: &str) -> StoreResult<bool> {
        match self {
            Self::InMemory(nonces) => Ok(nonces.consume(nonce)),
            Self::Shared(nonces) => nonces.consume(nonce).await,
        }
    }
}

/// 128 fresh random bits.
fn random() -> NonceBytes {
    let mut bytes = NonceBytes::default();
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// A nonce as clients see it: base64url without padding (RFC 8555 §6.5.1).
fn encode(bytes: NonceBytes) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The bits of a nonce we could have issued, or `None` for any other text.
fn decode(nonce: &str) -> Option<NonceBytes> {
    URL_SAFE_NO_PAD
        .decode(nonce)
        .ok()
        .and_then(|v| NonceBytes::try_from(v).ok())
}
