//! SHA-256 fingerprints of certificates, written and read the way
//! `openssl x509 -noout -fingerprint -sha256` prints them (`AB:CD:…`).

use sha2::{Digest, Sha256};

/// `AB:CD:…`: upper-case hex pairs joined by colons.
pub fn colon_hex(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// SHA-256 of the first certificate in a PEM text (of its DER), if it holds one.
pub fn of_first_pem_certificate(pem_text: &[u8]) -> Option<[u8; 32]> {
    let blocks = pem::parse_many(pem_text).ok()?;
    let first = blocks.iter().find(|b| b.tag() == "CERTIFICATE")?;
    Some(Sha256::digest(first.contents()).into())
}

/// A SHA-256 fingerprint as an operator pastes it: hex, upper or lower
/// case, with or without colons or spaces, optionally after openssl's
/// `sha256 Fingerprint=`. None unless it is 32 bytes of hex.
pub fn parse(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let text = text.rsplit_once('=').map_or(text, |(_, hex)| hex);
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' ' | '-'))
        .collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_reads_back_in_every_spelling_an_operator_pastes() {
        let digest: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        let shown = colon_hex(&digest);
        assert_eq!(shown.len(), 32 * 3 - 1);
        assert_eq!(parse(&shown), Some(digest));
        assert_eq!(parse(&shown.to_lowercase().replace(':', "")), Some(digest));
        assert_eq!(
            parse(&format!("sha256 Fingerprint={shown}\n")),
            Some(digest)
        );
        assert_eq!(parse(&shown[3..]), None, "too short");
        assert_eq!(parse(&shown.replace('0', "g")), None, "not hex");
    }
}
