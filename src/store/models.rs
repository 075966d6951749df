//! Rows as the rest of certgate sees them.

use serde::{Deserialize, Serialize};

use crate::protocol::challenge::ChallengeKind;
use crate::protocol::identifier::Identifier;
use crate::protocol::problem::Problem;
use crate::protocol::status::{AccountStatus, AuthorizationStatus, ChallengeStatus, OrderStatus};

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub key_thumbprint: String,
    /// The account's public key as a JWK JSON object.
    pub jwk: serde_json::Value,
    pub contact: Vec<String>,
    pub tos_agreed: Option<bool>,
    pub status: AccountStatus,
    pub created_at: i64,
    /// The external account key the account was bound with, read with the
    /// account: most accounts have none, and then no request of theirs
    /// reads the keyring.
    pub binding: Option<AccountBinding>,
}

/// Which external account key bound an account, and whether the operator
/// has revoked it since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBinding {
    pub kid: String,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub key_thumbprint: String,
    pub jwk: serde_json::Value,
    pub contact: Vec<String>,
    pub tos_agreed: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Order {
    pub id: String,
    pub account_id: String,
    pub profile: String,
    pub status: OrderStatus,
    pub identifiers: Vec<Identifier>,
    pub expires_at: i64,
    pub csr: Option<Vec<u8>>,
    pub error: Option<Problem>,
    /// Set while a signing request may be out at the CA (see `store::signing`).
    pub sign_attempted_at: Option<i64>,
    /// Id of the certificate this order replaces (RFC 9773).
    pub replaces: Option<String>,
    pub authorization_ids: Vec<String>,
    pub certificate_id: Option<String>,
    pub created_at: i64,
}

impl Order {
    /// The status a client should see now: an unfinished order past its expiry
    /// is invalid even if no request has touched it since (RFC 8555 §7.1.6).
    pub fn effective_status(&self, now: i64) -> OrderStatus {
        match self.status {
            OrderStatus::Pending | OrderStatus::Ready if self.expires_at <= now => {
                OrderStatus::Invalid
            }
            s => s,
        }
    }
}

/// What `create_order_within_limits` needs; ids and tokens are chosen by the caller.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub account_id: String,
    pub profile: String,
    pub identifiers: Vec<Identifier>,
    pub expires_at: i64,
    /// One per identifier, in order.
    pub authorizations: Vec<OrderAuthorization>,
    /// Id of the certificate this order replaces (RFC 9773).
    pub replaces: Option<String>,
}

/// An order's authorization: made for it, or a valid one it reuses.
#[derive(Debug, Clone)]
pub enum OrderAuthorization {
    New(NewAuthorization),
    Reused(String),
    /// A valid authorization of the account for the same identifier, if
    /// one was made for an order of the same profile, else this new one:
    /// decided in the unit of work that stores the order.
    ReuseOrNew(NewAuthorization),
}

#[derive(Debug, Clone)]
pub struct NewAuthorization {
    pub id: String,
    pub identifier: Identifier,
    pub wildcard: bool,
    pub expires_at: i64,
    pub challenges: Vec<NewChallenge>,
}

#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub id: String,
    pub kind: ChallengeKind,
    pub token: String,
}

#[derive(Debug, Clone)]
pub struct Authorization {
    pub id: String,
    pub account_id: String,
    pub identifier: Identifier,
    pub wildcard: bool,
    pub status: AuthorizationStatus,
    pub expires_at: i64,
    pub challenges: Vec<Challenge>,
}

impl Authorization {
    pub fn effective_status(&self, now: i64) -> AuthorizationStatus {
        match self.status {
            AuthorizationStatus::Pending | AuthorizationStatus::Valid if self.expires_at <= now => {
                AuthorizationStatus::Expired
            }
            s => s,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: String,
    pub authorization_id: String,
    pub kind: ChallengeKind,
    pub token: String,
    pub status: ChallengeStatus,
    pub validated_at: Option<i64>,
    pub error: Option<Problem>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Certificate {
    pub id: String,
    pub order_id: String,
    pub account_id: String,
    pub profile: String,
    /// Lower-case hex, no separators.
    pub serial: String,
    pub names: Vec<String>,
    pub chain_pem: String,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<i64>,
    pub created_at: i64,
    /// The id of a newer certificate that supersedes this one (see
    /// `store::superseded`).
    pub superseded_by: Option<String>,
}

/// A certificate as the issuer returned it, before it has an id and an owner.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    pub id: String,
    pub serial: String,
    pub names: Vec<String>,
    pub chain_pem: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// What a finished validation found.
#[derive(Debug, Clone)]
pub enum ValidationOutcome {
    Valid,
    Invalid(Problem),
}
