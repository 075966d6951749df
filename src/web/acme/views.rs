//! Store rows rendered as the JSON objects of RFC 8555 §7.1.

use crate::protocol::challenge::ChallengeKind;
use crate::protocol::status::OrderStatus;
use crate::protocol::types::{AccountView, AuthorizationView, ChallengeView, OrderView};
use crate::store::{Account, Authorization, Challenge, Order};
use crate::util::clock::rfc3339;
use crate::web::urls::Urls;

pub fn account(urls: &Urls, account: &Account) -> AccountView {
    AccountView {
        status: account.status.as_str(),
        contact: account.contact.clone(),
        orders: urls.account_orders(&account.id),
        terms_of_service_agreed: account.tos_agreed,
    }
}

pub fn order(urls: &Urls, order: &Order, now: i64) -> OrderView {
    let status = order.effective_status(now);
    let error = match (status, &order.error) {
        (OrderStatus::Invalid, None) => Some(crate::protocol::problem::Problem::malformed(
            "order expired before it was finalized",
        )),
        (_, error) => error.clone(),
    };
    OrderView {
        status,
        expires: rfc3339(order.expires_at),
        identifiers: order.identifiers.clone(),
        profile: order.profile.clone(),
        authorizations: order
            .authorization_ids
            .iter()
            .map(|id| urls.authorization(id))
            .collect(),
        finalize: urls.finalize(&order.id),
        certificate: order
            .certificate_id
            .as_deref()
            .filter(|_| status == OrderStatus::Valid)
            .map(|id| urls.certificate(id)),
        error,
    }
}

/// `issuer_domain_names` are the profile's for dns-persist-01 (which shows
/// them instead of a token); other types ignore them.
pub fn challenge(
    urls: &Urls,
    challenge: &Challenge,
    issuer_domain_names: &[String],
) -> ChallengeView {
    let persist = challenge.kind == ChallengeKind::DnsPersist01;
    ChallengeView {
        kind: challenge.kind,
        url: urls.challenge(&challenge.id),
        status: challenge.status,
        token: (!persist).then(|| challenge.token.clone()),
        issuer_domain_names: persist.then(|| issuer_domain_names.to_vec()),
        validated: challenge.validated_at.map(rfc3339),
        error: challenge.error.clone(),
    }
}

pub fn authorization(
    urls: &Urls,
    authz: &Authorization,
    issuer_domain_names: &[String],
    now: i64,
) -> AuthorizationView {
    AuthorizationView {
        identifier: authz.identifier.clone(),
        status: authz.effective_status(now),
        expires: rfc3339(authz.expires_at),
        challenges: authz
            .challenges
            .iter()
            .map(|c| challenge(urls, c, issuer_domain_names))
            .collect(),
        wildcard: authz.wildcard,
    }
}
