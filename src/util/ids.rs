//! Random identifiers and challenge tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A resource id: 128 random bits, so ids cannot be guessed or enumerated.
pub fn resource_id() -> String {
    random_b64(16)
}

/// A challenge token: 256 random bits, as RFC 8555 §8.3 asks for at least 128.
pub fn challenge_token() -> String {
    random_b64(32)
}
