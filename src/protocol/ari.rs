//! ACME Renewal Information (RFC 9773): certificate identifiers and the
//! renewal window certgate suggests for a certificate.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::problem::Problem;

/// How often a client should ask again, in seconds (RFC 9773 §4.3).
pub const RETRY_AFTER_SECS: u64 = 6 * 3600;

/// RFC 9773 §4.1: `base64url(AKI keyIdentifier) "." base64url(serial)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    pub key_identifier: Vec<u8>,
    /// The DER INTEGER's content octets, as in the certificate.
    pub serial: Vec<u8>,
}

impl CertId {
    pub fn parse(text: &str) -> Result<Self, Problem> {
        let malformed =
            || Problem::malformed(format!("{text:?} is not an RFC 9773 certificate ID"));
        let (aki, serial) = text.split_once('.').ok_or_else(malformed)?;
        let key_identifier = URL_SAFE_NO_PAD.decode(aki).map_err(|_| malformed())?;
        let serial = URL_SAFE_NO_PAD.decode(serial).map_err(|_| malformed())?;
        if key_identifier.is_empty() || serial.is_empty() {
            return Err(malformed());
        }
        Ok(Self {
            key_identifier,
            serial,
        })
    }

    /// The certificate ID of a leaf certificate (DER); `None` without an AKI.
    pub fn of_certificate(der: &[u8]) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let key_identifier = cert
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    aki.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            })?;
        Some(Self {
            key_identifier,
            serial: cert.raw_serial().to_vec(),
        })
    }

    /// The serial as certgate stores it: lower-case hex, no separators.
    pub fn serial_hex(&self) -> String {
        self.serial.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Display for CertId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&self.key_identifier),
            URL_SAFE_NO_PAD.encode(&self.serial)
        )
    }
}

/// The suggested renewal window (unix seconds): from `start_fraction` of the
/// certificate's life to halfway between there and expiry. A revoked
/// certificate's window lies in the past, so clients renew at once.
pub fn suggested_window(
    not_before: i64,
    not_after: i64,
    start_fraction: f64,
    revoked: bool,
    now: i64,
) -> (i64, i64) {
    if revoked {
        return (now - 2 * 3600, now - 3600);
    }
    let lifetime = (not_after - not_before).max(0) as f64;
    let start = not_before + (lifetime * start_fraction).round() as i64;
    let end =
        not_before + (lifetime * (start_fraction + (1.0 - start_fraction) / 2.0)).round() as i64;
    (start, end.max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cert_ids_round_trip_and_refuse_garbage() {
        let id = CertId {
            key_identifier: vec![0x69, 0x88, 0x5b],
            serial: vec![0x00, 0x87, 0x65],
        };
        assert_eq!(CertId::parse(&id.to_string()).unwrap(), id);
        assert_eq!(id.serial_hex(), "008765");
        for bad in ["", "abc", ".AA", "AA.", "A*.AA"] {
            assert!(CertId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_window_opens_at_two_thirds_and_a_revoked_one_is_past() {
        let day = 86_400;
        assert_eq!(
            suggested_window(0, 90 * day, 2.0 / 3.0, false, 0),
            (60 * day, 75 * day)
        );
        let (start, end) = suggested_window(0, 90 * day, 2.0 / 3.0, true, 10 * day);
        assert!(start < end && end < 10 * day);
    }
}
