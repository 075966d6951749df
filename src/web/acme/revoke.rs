//! revokeCert (RFC 8555 §7.6).
//!
//! The checks run in the order Boulder runs them, so clients see the same
//! problem for the same request: a certificate this server did not issue is
//! a 404 `malformed` (there is nothing to authorize against, and RFC 8555
//! names no type for it); an expired one is `unauthorized`; a reason a
//! subscriber may not give is `badRevocationReason`; then who signed the
//! request decides; then `alreadyRevoked`. The CA revokes first, and
//! certgate records the revocation only once the CA confirmed it.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::X509Certificate;

use crate::audit::AuditLog;
use crate::audit::{Actor, AuditEvent};
use crate::domain::profiles::Profiles;
use crate::issuer::{IssueError, RevocationReason, RevokeRequest};
use crate::protocol::csr::ip_from_bytes;
use crate::protocol::identifier::Identifier;
use crate::protocol::problem::{Problem, ProblemType};
use crate::protocol::revoke_request::{certificate_der, parse_certificate, RevokePayload};
use crate::store::Certificate;
use crate::store::Store;
use crate::util::clock::Clock;
use crate::web::request::{SignedBy, SignedRequest};
use std::sync::Arc;

/// How long a client is asked to wait when the CA cannot revoke right now.
const RETRY_AFTER_SECS: u64 = 30;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The leaf of a stored chain, DER.
fn stored_leaf(certificate: &Certificate) -> Option<Vec<u8>> {
    pem::parse_many(&certificate.chain_pem)
        .ok()?
        .into_iter()
        .next()
        .map(|p| p.into_contents())
}

/// The identifiers a certificate certifies: its DNS and IP SANs and its
/// common name. A wildcard counts as its base name, which is the identifier
/// its authorization proved (RFC 8555 §7.1.3).
fn certified_identifiers(leaf: &X509Certificate<'_>) -> Vec<Identifier> {
    let mut values = BTreeSet::new();
    let mut add_name = |name: &str| {
        let name = name.to_ascii_lowercase();
        let name = name.strip_prefix("*.").unwrap_or(&name);
        values.insert(match name.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.to_string(),
            Err(_) => name.to_owned(),
        });
    };
    if let Ok(Some(san)) = leaf.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => add_name(dns),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        add_name(&ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    for cn in leaf.subject().iter_common_name() {
        if let Ok(cn) = cn.as_str() {
            add_name(cn);
        }
    }
    values.iter().map(|v| Identifier::from_value(v)).collect()
}

/// Who may revoke (RFC 8555 §7.6): the account that ordered the
/// certificate, an account holding valid authorizations for all of its
/// identifiers, or the holder of the certificate's key. Returns who it was,
/// for the log and the audit log.
async fn authorize(
    store: &Store,
    request: &SignedRequest,
    certificate: &Certificate,
    leaf: &X509Certificate<'_>,
    now: i64,
) -> Result<Actor, Problem> {
    match &request.signer {
        SignedBy::Account(account) if account.id == certificate.account_id => {
            Ok(Actor::Account(account.id.clone()))
        }
        SignedBy::Account(account) => {
            let identifiers = certified_identifiers(leaf);
            if store
                .holds_authorizations_for(&account.id, &identifiers, now)
                .await?
            {
                Ok(Actor::Account(account.id.clone()))
            } else {
                Err(Problem::unauthorized(
                    "this account neither ordered the certificate nor holds valid authorizations for all of its identifiers",
                ))
            }
        }
        SignedBy::Key(key) if key.same_key_as(leaf.public_key()) => Ok(Actor::CertificateKey),
        SignedBy::Key(_) => Err(Problem::unauthorized(
            "a request signed with jwk must be signed with the certificate's own key",
        )),
    }
}

pub async fn revoke_cert(
    State(store): State<Store>,
    State(profiles): State<Arc<Profiles>>,
    State(clock): State<Arc<dyn Clock>>,
    State(audit): State<AuditLog>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let payload: RevokePayload = request.json()?;
    let der = certificate_der(&payload)?;
    let leaf = parse_certificate(&der)?;
    let serial = hex(leaf.raw_serial());
    // The serial finds it; the whole certificate must match, so that a
    // certificate of another CA that happens to share the serial is not
    // taken for ours.
    let certificate = store
        .certificate_by_serial(&serial)
        .await?
        .filter(|stored| stored_leaf(stored).as_deref() == Some(der.as_slice()))
        .ok_or_else(|| {
            Problem::malformed("this server issued no such certificate")
                .with_status(StatusCode::NOT_FOUND)
        })?;
    let now = clock.now();
    if certificate.not_after <= now {
        return Err(Problem::unauthorized("the certificate has expired"));
    }
    let reason = match payload.reason {
        None => RevocationReason::Unspecified,
        Some(code) => RevocationReason::from_code(code).ok_or_else(|| {
            Problem::new(
                ProblemType::BadRevocationReason,
                format!(
                    "reason {code} is not accepted; use one of {}",
                    RevocationReason::ALL
                        .iter()
                        .map(|r| format!("{} ({})", r.code(), r.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?,
    };
    let by = authorize(&store, &request, &certificate, &leaf, now).await?;
    if certificate.revoked_at.is_some() {
        return Err(already_revoked());
    }

    let profile = profiles.get(&certificate.profile).ok_or_else(|| {
        Problem::internal(
            "the profile that issued this certificate is no longer configured",
            &certificate.profile,
        )
    })?;
    let leaf_pem = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()));
    let revoke = RevokeRequest {
        serial: serial.clone(),
        leaf_pem,
    };
    match profile.issuer.revoke(&revoke).await {
        Ok(()) => {}
        Err(IssueError::Unavailable(e)) => {
            tracing::warn!(%serial, profile = %profile.name, error = %e, "the CA cannot revoke now; nothing recorded");
            return Err(Problem::new(
                ProblemType::ServerInternal,
                "the CA cannot revoke the certificate right now; try again later",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
            .with_retry_after(RETRY_AFTER_SECS));
        }
        Err(e) => {
            return Err(Problem::internal(
                "the CA did not revoke the certificate",
                &e,
            ))
        }
    }
    if !store
        .revoke_certificate(&certificate.id, reason.code(), now)
        .await?
    {
        // Another request revoked it while the CA was asked.
        return Err(already_revoked());
    }
    tracing::info!(
        %serial,
        certificate = %certificate.id,
        profile = %profile.name,
        reason = reason.name(),
        by = ?by,
        "certificate revoked"
    );
    audit
        .record(AuditEvent::CertificateRevoked {
            serial,
            profile: profile.name.clone(),
            account: certificate.account_id.clone(),
            reason: reason.name().to_owned(),
            by,
        })
        .await;
    Ok(StatusCode::OK.into_response())
}

fn already_revoked() -> Problem {
    Problem::new(
        ProblemType::AlreadyRevoked,
        "the certificate is already revoked",
    )
}
