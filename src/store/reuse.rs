//! What a new order builds on: valid authorizations it may reuse, and the
//! certificate it replaces (RFC 9773).

use sqlx::AnyConnection;

use super::{Certificate, Store, StoreResult};
use crate::protocol::ari::CertId;
use crate::protocol::identifier::Identifier;

/// A valid, unexpired authorization of `account_id` for `identifier`
/// (same wildcard flag) that was made for an order of `profile`: reused
/// so a renewal skips validation. Only the same profile's, because each
/// profile validates under its own rules (CAA, denied networks). Read in
/// the unit of work that stores the new order.
pub(super) async fn reusable_authorization_on(
    connection: &mut AnyConnection,
    account_id: &str,
    identifier: &Identifier,
    wildcard: bool,
    profile: &str,
    now: i64,
) -> StoreResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT a.id FROM authorizations a
             WHERE a.account_id = $1 AND a.identifier_type = $2 AND a.identifier_value = $3
               AND a.wildcard = $4 AND a.status = 'valid' AND a.expires_at > $5
               AND EXISTS (SELECT 1 FROM order_authorizations oa JOIN orders o ON o.id = oa.order_id
                           WHERE oa.authorization_id = a.id AND o.profile = $6)
             ORDER BY a.expires_at DESC LIMIT 1",
    )
    .bind(account_id)
    .bind(identifier.kind.as_str())
    .bind(&identifier.value)
    .bind(i64::from(wildcard))
    .bind(now)
    .bind(profile)
    .fetch_optional(&mut *connection)
    .await?)
}

impl Store {
    /// The certificate with this serial (lower-case hex, no separators).
    pub async fn certificate_by_serial(&self, serial: &str) -> StoreResult<Option<Certificate>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM certificates WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&self.pool)
                .await?;
        match id {
            Some(id) => self.certificate(&id).await,
            None => Ok(None),
        }
    }

    /// The certificate certgate issued that `cert_id` names (RFC 9773):
    /// found by serial, then its authority key identifier compared as well.
    pub async fn certificate_named_by(&self, cert_id: &CertId) -> StoreResult<Option<Certificate>> {
        let Some(certificate) = self.certificate_by_serial(&cert_id.serial_hex()).await? else {
            return Ok(None);
        };
        let matches = pem::parse(&certificate.chain_pem)
            .ok()
            .and_then(|leaf| CertId::of_certificate(leaf.contents()))
            .is_some_and(|id| &id == cert_id);
        Ok(matches.then_some(certificate))
    }

    /// The live (not invalid) order that already replaces certificate `id`.
    pub async fn replacing_order(&self, certificate_id: &str) -> StoreResult<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE replaces = $1 AND status != 'invalid' LIMIT 1",
        )
        .bind(certificate_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}
