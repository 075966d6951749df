//! What a mount issued, as Vault lists it: `LIST certs` (every stored
//! serial, the mount's CA certificate included), `LIST certs/revoked`, and
//! the mount's CRL (`crl` as DER, `crl/pem`, `cert/crl` wrapped).

use axum::http::header;
use axum::response::IntoResponse;
use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde_json::json;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::envelope::{ok, Reply, VaultError};
use super::issue::format_serial;
use super::state::{App, PkiMount};

/// How long a CRL the stand-in builds is current: Vault's default `expiry`
/// of `config/crl` is 72h.
pub const CRL_VALIDITY: time::Duration = time::Duration::hours(72);

/// The serial of the mount's intermediate, as Vault prints serials.
pub fn ca_serial(mount: &PkiMount) -> Option<String> {
    let ca = mount.ca.as_ref()?;
    let (_, cert) = X509Certificate::from_der(&ca.intermediate.der).ok()?;
    Some(format_serial(cert.raw_serial()))
}

/// `keys` in a list answer; an empty list is a 404 with no errors, as in Vault.
fn keys(mut keys: Vec<String>) -> Reply {
    if keys.is_empty() {
        return Err(VaultError::not_found());
    }
    keys.sort();
    Ok(ok(json!({ "keys": keys })))
}

/// `LIST certs`: every certificate the mount keeps, its CA's included.
pub fn list_certs(mount: &PkiMount) -> Reply {
    let mut serials: Vec<String> = mount.certs.lock().unwrap().keys().cloned().collect();
    serials.extend(ca_serial(mount));
    keys(serials)
}

/// `LIST certs/revoked`: the serials revoked on this mount.
pub fn list_revoked(mount: &PkiMount) -> Reply {
    let serials = mount
        .certs
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, cert)| cert.revoked_at.is_some())
        .map(|(serial, _)| serial.clone())
        .collect();
    keys(serials)
}

/// The mount's CRL (DER), signed by its intermediate, current from now for
/// [`CRL_VALIDITY`]; `None` when the mount has no CA.
fn crl_der(app: &App, mount: &PkiMount) -> Option<Vec<u8>> {
    let ca = mount.ca.as_ref()?;
    let now = app.clock.now();
    let revoked_certs = mount
        .certs
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(serial, cert)| {
            let at = cert.revoked_at?;
            let bytes: Vec<u8> = serial
                .split(':')
                .filter_map(|pair| u8::from_str_radix(pair, 16).ok())
                .collect();
            Some(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: OffsetDateTime::from_unix_timestamp(at).unwrap_or(now),
                reason_code: None,
                invalidity_date: None,
            })
        })
        .collect();
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + CRL_VALIDITY,
        crl_number: SerialNumber::from_slice(&now.unix_timestamp().to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    Some(
        params
            .signed_by(&ca.intermediate.issuer)
            .expect("the CRL is signed")
            .der()
            .to_vec(),
    )
}

/// `GET crl` (raw DER) and `GET crl/pem`: no token, not wrapped.
pub fn raw_crl(app: &App, mount: &PkiMount, as_pem: bool) -> Reply {
    let der = crl_der(app, mount).ok_or_else(VaultError::no_ca)?;
    Ok(if as_pem {
        let text = ::pem::encode(&::pem::Pem::new("X509 CRL", der));
        ([(header::CONTENT_TYPE, "application/pem-file")], text).into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response()
    })
}

/// `GET cert/crl`: the CRL PEM in `data.certificate`.
pub fn wrapped_crl(app: &App, mount: &PkiMount) -> Reply {
    let der = crl_der(app, mount).ok_or_else(VaultError::no_ca)?;
    let text = ::pem::encode(&::pem::Pem::new("X509 CRL", der));
    Ok(ok(json!({
        "certificate": text,
        "revocation_time": 0,
    })))
}
