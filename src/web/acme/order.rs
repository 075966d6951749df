//! newOrder and the order resource (RFC 8555 §7.4).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{owned, views};
use crate::audit::AuditEvent;
use crate::domain::profiles::Profile;
use crate::issuer::IssueError;
use crate::protocol::ari::CertId;
use crate::protocol::identifier::Identifier;
use crate::protocol::identifiers::check_order_identifiers;
use crate::protocol::identifiers::OrderedIdentifier;
use crate::protocol::problem::{Problem, ProblemType, Subproblem};
use crate::protocol::status::OrderStatus;
use crate::protocol::types::NewOrderRequest;
use crate::store::{
    Certificate, NewAuthorization, NewChallenge, NewOrder, Order, OrderAuthorization,
};
use crate::util::ids;
use crate::validate::ChallengeKind;
use crate::web::request::SignedRequest;
use crate::web::response::Json;
use crate::web::AcmeState;

/// The profile an order is for: the one newOrder names (draft-ietf-acme-
/// profiles), else the one whose directory the client used.
fn select_profile<'a>(
    state: &'a AcmeState,
    request: &SignedRequest,
    asked: Option<&str>,
) -> Result<&'a Profile, Problem> {
    match (asked, request.urls.profile()) {
        (Some(name), _) => state.profiles.get(name).ok_or_else(|| {
            Problem::new(
                ProblemType::InvalidProfile,
                format!("there is no profile {name:?}; the directory's meta.profiles lists them"),
            )
        }),
        (None, Some(name)) => state
            .profiles
            .get(name)
            .ok_or_else(|| Problem::not_found(&format!("profile {name:?}"))),
        (None, None) => Ok(state.profiles.default_profile()),
    }
}

/// RFC 9773 `replaces`: the certificate must be this account's, share an
/// identifier with the new order and not be replaced already. Returns the
/// replaced certificate.
async fn check_replaces(
    state: &AcmeState,
    account_id: &str,
    replaces: Option<&str>,
    names: &[OrderedIdentifier],
) -> Result<Option<Certificate>, Problem> {
    let Some(text) = replaces else {
        return Ok(None);
    };
    let cert_id = CertId::parse(text)?;
    let unknown = || Problem::malformed(format!("replaces: no certificate {text} was issued here"));
    let certificate = state
        .store
        .certificate_named_by(&cert_id)
        .await?
        .ok_or_else(unknown)?;
    if certificate.account_id != account_id {
        return Err(Problem::unauthorized(
            "replaces: the certificate belongs to another account",
        ));
    }
    if !names.iter().any(|n| certificate.names.contains(&n.ordered)) {
        return Err(Problem::malformed(
            "replaces: the new order shares no identifier with the certificate it replaces",
        ));
    }
    if let Some(order) = state.store.replacing_order(&certificate.id).await? {
        return Err(Problem::new(
            ProblemType::AlreadyReplaced,
            format!("certificate {text} is already replaced by order {order}"),
        ));
    }
    Ok(Some(certificate))
}

/// Refuses the order at once when the profile's CA would refuse any of its
/// identifiers, naming each one (like Vault's own ACME server).
async fn check_identifiers_allowed(profile: &Profile, names: &[String]) -> Result<(), Problem> {
    let refusals = match profile.issuer.refused_identifiers(names).await {
        Ok(refusals) => refusals,
        Err(IssueError::Unavailable(reason)) => {
            tracing::warn!(%reason, "cannot read the profile's rules now");
            return Err(Problem::new(
                ProblemType::ServerInternal,
                "the CA behind this profile cannot be reached; try again shortly",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE));
        }
        Err(e) => return Err(Problem::internal("checking identifiers against the CA", &e)),
    };
    if refusals.is_empty() {
        return Ok(());
    }
    let subproblems: Vec<Subproblem> = refusals
        .iter()
        .map(|r| Subproblem {
            kind: ProblemType::RejectedIdentifier,
            detail: format!("{}: {}", r.identifier, r.reason),
            identifier: Identifier::from_value(&r.identifier),
        })
        .collect();
    let detail = match subproblems.as_slice() {
        [only] => only.detail.clone(),
        many => format!("{} identifiers are refused by this profile", many.len()),
    };
    Err(Problem::new(ProblemType::RejectedIdentifier, detail).with_subproblems(subproblems))
}

pub async fn new_order(
    State(state): State<AcmeState>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let account = request.account()?;
    let body: NewOrderRequest = request.json()?;
    if body.not_before.is_some() || body.not_after.is_some() {
        return Err(Problem::malformed(
            "notBefore and notAfter are not supported; the profile decides the validity period",
        ));
    }
    let names = check_order_identifiers(&body.identifiers)?;
    let profile = select_profile(&state, &request, body.profile.as_deref())?;
    let ordered: Vec<String> = names.iter().map(|n| n.ordered.clone()).collect();
    check_identifiers_allowed(profile, &ordered).await?;
    crate::domain::eab::check_new_order(&state.store, &account.id, profile, &names).await?;
    let now = state.clock.now();
    let replaced = check_replaces(&state, &account.id, body.replaces.as_deref(), &names).await?;
    crate::domain::rate_limits::check_new_order(
        &state.store,
        &state.rate_limits,
        state.clock.now(),
        &account.id,
        &names,
    )
    .await?;
    let pending_until = now + state.lifetimes.pending.as_secs() as i64;
    let mut authorizations = Vec::with_capacity(names.len());
    for name in &names {
        let identifier = name.as_authorized();
        let reusable = state
            .store
            .reusable_authorization(&account.id, &identifier, name.wildcard, &profile.name, now)
            .await?;
        authorizations.push(match reusable {
            Some(id) => OrderAuthorization::Reused(id),
            None => OrderAuthorization::New(NewAuthorization {
                id: ids::resource_id(),
                identifier,
                wildcard: name.wildcard,
                expires_at: pending_until,
                challenges: ChallengeKind::offered_for(name.kind, name.wildcard)
                    .iter()
                    .map(|kind| NewChallenge {
                        id: ids::resource_id(),
                        kind: kind.as_str().to_owned(),
                        token: ids::challenge_token(),
                    })
                    .collect(),
            }),
        });
    }
    let order = NewOrder {
        id: ids::resource_id(),
        account_id: account.id.clone(),
        profile: profile.name.clone(),
        identifiers: names.iter().map(|n| n.as_ordered()).collect(),
        expires_at: pending_until,
        authorizations,
        replaces: replaced.as_ref().map(|c| c.id.clone()),
    };
    state.store.create_order(&order, now).await?;
    tracing::Span::current().record("order", order.id.as_str());
    tracing::info!(order = %order.id, names = ?order.identifiers.iter().map(|i| &i.value).collect::<Vec<_>>(), "order created");
    state
        .audit
        .record(AuditEvent::OrderCreated {
            order: order.id.clone(),
            account: order.account_id.clone(),
            profile: order.profile.clone(),
            identifiers: order.identifiers.clone(),
            replaces: replaced.map(|c| c.serial),
        })
        .await;
    let stored = state
        .store
        .order(&order.id)
        .await?
        .ok_or_else(|| Problem::internal("reading a new order", &"order vanished"))?;
    let location = request.urls.order(&order.id);
    Ok(Json::created(views::order(&request.urls, &stored, now), location).into_response())
}

/// Loads an order that belongs to the signing account.
pub async fn owned_order(
    state: &AcmeState,
    request: &SignedRequest,
    id: &str,
) -> Result<Order, Problem> {
    tracing::Span::current().record("order", id);
    owned(
        state.store.order(id).await?,
        |o| &o.account_id,
        request,
        "order",
    )
}

/// An order response, with `Retry-After` while the client must keep polling.
pub fn order_response(state: &AcmeState, request: &SignedRequest, order: &Order) -> Response {
    let view = views::order(&request.urls, order, state.clock.now());
    let working = matches!(view.status, OrderStatus::Pending | OrderStatus::Processing);
    Json::ok(view)
        .location(request.urls.order(&order.id))
        .retry_after_if(working)
        .into_response()
}

pub async fn order(
    State(state): State<AcmeState>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    request.require_post_as_get()?;
    let order = owned_order(&state, &request, &id).await?;
    Ok(order_response(&state, &request, &order))
}
