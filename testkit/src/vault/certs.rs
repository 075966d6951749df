//! Reading certificates back (`cert/{serial}`, the CA chain, issuer JSON) and
//! revoking them by serial or by PEM.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde_json::{json, Value};
use x509_parser::prelude::*;

use super::clock::rfc3339;
use super::envelope::{ok, ok_with_warnings, Reply, VaultError};
use super::fields::Fields;
use super::issue::{format_serial, normalize_serial};
use super::record::{push, Revocation};
use super::state::{App, PkiMount, StoredCert};

/// `GET ca_chain`: raw PEM, issuer first; 204 when the mount has no CA.
pub fn raw_chain(mount: &PkiMount) -> Reply {
    Ok(match &mount.ca {
        Some(ca) => (
            [(header::CONTENT_TYPE, "application/pem-file")],
            format!("{}\n", ca.chain().join("\n")),
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `GET ca/pem`: the issuing certificate as raw PEM; 204 when there is none.
pub fn raw_issuer(mount: &PkiMount) -> Reply {
    Ok(match &mount.ca {
        Some(ca) => (
            [(header::CONTENT_TYPE, "application/pem-file")],
            ca.intermediate.pem.clone(),
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `GET cert/{serial}`, including the special serials `ca` and `ca_chain`.
pub fn read_cert(mount: &PkiMount, serial: &str) -> Reply {
    match (serial, &mount.ca) {
        ("ca_chain", Some(ca)) => {
            let chain = ca.chain().join("\n");
            return Ok(ok(json!({
                "certificate": chain,
                "ca_chain": chain,
                "revocation_time": 0,
                "revocation_time_rfc3339": "",
            })));
        }
        ("ca", Some(ca)) => {
            return Ok(ok(json!({
                "certificate": ca.intermediate.pem,
                "revocation_time": 0,
                "revocation_time_rfc3339": "",
            })));
        }
        ("ca" | "ca_chain", None) => return Err(VaultError::not_found()),
        _ => {}
    }
    let serial = normalize_serial(serial);
    if let (Some(ca), Some(ca_serial)) = (&mount.ca, super::listing::ca_serial(mount)) {
        if serial == ca_serial {
            return Ok(ok(json!({
                "certificate": format!("{}\n", ca.intermediate.pem),
                "revocation_time": 0,
                "revocation_time_rfc3339": "",
                "issuer_id": ca.issuer_id,
                "ca_chain": Value::Null,
            })));
        }
    }
    let certs = mount.certs.lock().unwrap();
    let stored = certs.get(&serial).ok_or_else(VaultError::not_found)?;
    Ok(ok(json!({
        "certificate": format!("{}\n", stored.pem),
        "revocation_time": stored.revoked_at.unwrap_or(0),
        "revocation_time_rfc3339": stored.revoked_at.map(rfc3339).unwrap_or_default(),
        "issuer_id": mount.ca.as_ref().map(|ca| ca.issuer_id.clone()).unwrap_or_default(),
        "ca_chain": Value::Null,
    })))
}

/// `GET issuer/{ref}/json`.
pub fn issuer_json(mount: &PkiMount, reference: &str) -> Reply {
    let ca = mount
        .ca
        .as_ref()
        .filter(|ca| ca.answers_to(reference))
        .ok_or_else(VaultError::not_found)?;
    Ok(ok(json!({
        "issuer_id": ca.issuer_id,
        "issuer_name": ca.issuer_name,
        "key_id": "",
        "certificate": format!("{}\n", ca.intermediate.pem),
        "ca_chain": ca.chain().iter().map(|p| format!("{p}\n")).collect::<Vec<_>>(),
        "leaf_not_after_behavior": "err",
        "usage": "crl-signing,issuing-certificates,ocsp-signing,read-only",
    })))
}

/// Serial and NotAfter of a PEM certificate that this mount's issuer signed.
fn issued_here(mount: &PkiMount, pem_text: &str) -> Result<(String, i64, String), VaultError> {
    let not_ours = || {
        VaultError::bad_request(
            "unable to verify signature on presented cert from any present issuer in this mount; cannot revoke",
        )
    };
    let block = ::pem::parse(pem_text.trim())
        .map_err(|_| VaultError::bad_request("certificate could not be parsed"))?;
    let (_, cert) = X509Certificate::from_der(block.contents())
        .map_err(|_| VaultError::bad_request("certificate could not be parsed"))?;
    let ca = mount.ca.as_ref().ok_or_else(not_ours)?;
    let (_, issuer) = X509Certificate::from_der(&ca.intermediate.der).expect("intermediate parses");
    cert.verify_signature(Some(issuer.public_key()))
        .map_err(|_| not_ours())?;
    Ok((
        format_serial(cert.raw_serial()),
        cert.validity().not_after.timestamp(),
        ::pem::encode(&block).trim_end().to_owned(),
    ))
}

/// `POST revoke` with `serial_number` xor `certificate`.
pub fn revoke(app: &App, mount: &PkiMount, fields: &Fields) -> Reply {
    let serial_field = fields.string("serial_number")?;
    let pem_field = fields.string("certificate")?;
    let by_pem = !pem_field.is_empty();
    let outcome = revoke_inner(app, mount, &serial_field, &pem_field);
    push(
        &app.record.revocations,
        Revocation {
            mount: mount.name.clone(),
            serial: match &outcome {
                Ok((serial, _)) => serial.clone(),
                Err(_) => normalize_serial(&serial_field),
            },
            by_pem,
            status: outcome.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200),
        },
    );
    outcome.map(|(_, reply)| reply)
}

fn revoke_inner(
    app: &App,
    mount: &PkiMount,
    serial_field: &str,
    pem_field: &str,
) -> Result<(String, axum::response::Response), VaultError> {
    if serial_field.is_empty() && pem_field.is_empty() {
        return Err(VaultError::bad_request(
            "The serial number or certificate to revoke must be provided.",
        ));
    }
    if !serial_field.is_empty() && !pem_field.is_empty() {
        return Err(VaultError::bad_request(
            "Must provide either the certificate or the serial to revoke; not both.",
        ));
    }
    let now = app.clock.unix();
    let mut certs = mount.certs.lock().unwrap();
    let serial = if pem_field.is_empty() {
        let serial = normalize_serial(serial_field);
        if !certs.contains_key(&serial) {
            return Err(VaultError::bad_request(format!(
                "certificate with serial {serial} not found."
            )));
        }
        serial
    } else {
        // A PEM revocation works for no_store certificates too: the
        // revocation entry is what Vault keeps, and it can be read back.
        let (serial, not_after, pem) = issued_here(mount, pem_field)?;
        if not_after >= now {
            certs.entry(serial.clone()).or_insert(StoredCert {
                pem,
                not_after,
                revoked_at: None,
            });
        } else if !certs.contains_key(&serial) {
            return Ok((serial.clone(), expired(&serial)));
        }
        serial
    };
    let entry = certs.get_mut(&serial).expect("present");
    if entry.revoked_at.is_none() && entry.not_after < now {
        return Ok((serial.clone(), expired(&serial)));
    }
    let at = *entry.revoked_at.get_or_insert(now);
    let data = json!({ "revocation_time": at, "revocation_time_rfc3339": rfc3339(at), "state": "revoked" });
    Ok((serial, ok(data)))
}

/// Vault does not revoke a certificate that has already expired: 200, no data, a warning.
fn expired(serial: &str) -> axum::response::Response {
    let warning = format!("certificate with serial {serial} is expired; not revoking");
    ok_with_warnings(Value::Null, &[warning])
}
