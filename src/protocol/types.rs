//! The JSON objects of RFC 8555 §7.1 as they travel on the wire.
//!
//! These are views: handlers build them from store rows and the request's base
//! URL at response time, so nothing stored depends on the host name a client
//! used to reach us.

use serde::{Deserialize, Serialize};

use super::challenge::ChallengeKind;
use super::identifier::{Identifier, WireIdentifier};
use super::problem::Problem;
use super::status::{AuthorizationStatus, ChallengeStatus, OrderStatus};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    pub new_nonce: String,
    pub new_account: String,
    pub new_order: String,
    pub revoke_cert: String,
    pub key_change: String,
    /// RFC 9773.
    pub renewal_info: String,
    pub meta: DirectoryMeta,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    pub caa_identities: Vec<String>,
    pub external_account_required: bool,
    /// draft-ietf-acme-profiles: profile name → description.
    pub profiles: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    pub status: &'static str,
    pub contact: Vec<String>,
    pub orders: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    pub status: OrderStatus,
    pub expires: String,
    pub identifiers: Vec<Identifier>,
    pub profile: String,
    pub authorizations: Vec<String>,
    pub finalize: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

#[derive(Debug, Serialize)]
pub struct OrderList {
    pub orders: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AuthorizationView {
    pub identifier: Identifier,
    pub status: AuthorizationStatus,
    pub expires: String,
    pub challenges: Vec<ChallengeView>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub wildcard: bool,
}

#[derive(Debug, Serialize)]
pub struct ChallengeView {
    #[serde(rename = "type")]
    pub kind: ChallengeKind,
    pub url: String,
    pub status: ChallengeStatus,
    /// Every type but dns-persist-01, which has no token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// dns-persist-01 only: the names a record may give as its issuer.
    #[serde(
        rename = "issuer-domain-names",
        skip_serializing_if = "Option::is_none"
    )]
    pub issuer_domain_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// newAccount payload (RFC 8555 §7.3).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccountRequest {
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    #[serde(default)]
    pub terms_of_service_agreed: Option<bool>,
    #[serde(default)]
    pub only_return_existing: bool,
    #[serde(default)]
    pub external_account_binding: Option<serde_json::Value>,
}

/// Account update payload (RFC 8555 §7.3.2, §7.3.6).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdateRequest {
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub terms_of_service_agreed: Option<bool>,
}

/// newOrder payload (RFC 8555 §7.4).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrderRequest {
    pub identifiers: Vec<WireIdentifier>,
    /// draft-ietf-acme-profiles: the profile to issue under.
    #[serde(default)]
    pub profile: Option<String>,
    /// RFC 9773: the certID of the certificate this order replaces.
    #[serde(default)]
    pub replaces: Option<String>,
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub not_after: Option<String>,
}

/// finalize payload (RFC 8555 §7.4).
#[derive(Debug, Deserialize)]
pub struct FinalizeRequest {
    pub csr: String,
}

/// Authorization update payload: only deactivation is defined (§7.5.2).
#[derive(Debug, Deserialize)]
pub struct AuthorizationUpdateRequest {
    pub status: String,
}
