//! newAccount, the account resource and its orders list (RFC 8555 §7.3).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};

use crate::web::extract::{Path, Query};
use axum::http::header::LINK;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::views;
use crate::audit::AuditLog;
use crate::audit::{Actor, AuditEvent};
use crate::config::rate_limits::RateLimits;
use crate::domain::eab::Keyring;
use crate::domain::profiles::{Profile, Profiles};
use crate::domain::{accounts, eab};
use crate::protocol::contacts::check_contacts;
use crate::protocol::problem::{Problem, ProblemType};
use crate::protocol::status::AccountStatus;
use crate::protocol::types::{AccountUpdateRequest, NewAccountRequest, OrderList};
use crate::store::Store;
use crate::store::{Account, NewAccount};
use crate::util::clock::Clock;
use crate::web::request::SignedRequest;
use crate::web::response::Json;
use crate::web::urls::Urls;
use std::sync::Arc;

/// Orders per page of an account's orders list.
const ORDERS_PAGE: i64 = 100;

/// The account `id` if `request` is signed by it; anyone else is refused.
fn own_account<'a>(request: &'a SignedRequest, id: &str) -> Result<&'a Account, Problem> {
    let account = request.account()?;
    if account.id != id {
        return Err(Problem::unauthorized(
            "request is signed by a different account",
        ));
    }
    Ok(account)
}

// Each extractor is a part of the state the handler uses, by design.
#[allow(clippy::too_many_arguments)]
pub async fn new_account(
    State(store): State<Store>,
    State(profiles): State<Arc<Profiles>>,
    State(clock): State<Arc<dyn Clock>>,
    State(eab): State<Keyring>,
    State(audit): State<AuditLog>,
    State(rate_limits): State<RateLimits>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let key = request.jwk()?;
    let body: NewAccountRequest = request.json()?;
    if let Some(existing) = store.account_by_thumbprint(&key.thumbprint).await? {
        if existing.status != AccountStatus::Valid {
            return Err(Problem::account_not_valid(existing.status));
        }
        let location = request.urls.account(&existing.id);
        return Ok(Json::ok(views::account(&request.urls, &existing))
            .location(location)
            .into_response());
    }
    if body.only_return_existing {
        return Err(Problem::new(
            ProblemType::AccountDoesNotExist,
            "no account exists for this key",
        ));
    }
    let profile = request_profile(&profiles, &request.urls);
    let binding = eab::binding_to_verify(profile, body.external_account_binding.as_ref())?;
    let contact = body.contact.unwrap_or_default();
    check_contacts(&contact)?;
    // Accounts are free; what each may hold is capped, so how fast one
    // address may make them is limited too (Boulder's registrations per IP).
    let buckets = rate_limits.new_account_buckets(client.ip());
    if let Err(refusal) = store.take_tokens(&buckets, clock.now()).await? {
        tracing::info!(bucket = %refusal.bucket.key, retry_after = refusal.retry_after, "new account refused by a rate limit");
        return Err(Problem::from(refusal));
    }
    let new = NewAccount {
        key_thumbprint: key.thumbprint.clone(),
        jwk: key.value.clone(),
        contact,
        tos_agreed: body.terms_of_service_agreed,
    };
    let (account, created, eab_kid) = match binding {
        Some(binding) => {
            let (account, kid) = eab::create_bound_account(
                &store,
                &eab,
                &request.urls.new_account(),
                profile,
                key,
                binding,
                &new,
                clock.now(),
            )
            .await?;
            (account, kid.is_some(), kid)
        }
        None => {
            let (account, created) = store
                .create_account(&crate::util::ids::resource_id(), &new, clock.now())
                .await?;
            (account, created, None)
        }
    };
    tracing::Span::current().record("account", account.id.as_str());
    let location = request.urls.account(&account.id);
    let view = views::account(&request.urls, &account);
    Ok(if created {
        tracing::info!(account = %account.id, "account created");
        audit
            .record(AuditEvent::AccountCreated {
                account: account.id.clone(),
                profile: profile.name.clone(),
                key_thumbprint: account.key_thumbprint.clone(),
                contact: account.contact.clone(),
                eab_kid,
            })
            .await;
        Json::created(view, location).into_response()
    } else {
        Json::ok(view).location(location).into_response()
    })
}

pub async fn account(
    State(store): State<Store>,
    State(clock): State<Arc<dyn Clock>>,
    State(audit): State<AuditLog>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let account = own_account(&request, &id)?;
    if request.payload.is_empty() {
        return Ok(Json::ok(views::account(&request.urls, account)).into_response());
    }
    let update: AccountUpdateRequest = request.json()?;
    match update.status.as_deref() {
        None => {}
        Some("deactivated") => {
            // An account a concurrent request deactivated first is simply
            // shown as it now is, as the account resource always is.
            accounts::deactivate_account(
                &store,
                &audit,
                &id,
                Actor::Account(id.clone()),
                clock.now(),
            )
            .await?;
        }
        Some(other) => {
            return Err(Problem::malformed(format!(
                "an account's status can only be set to \"deactivated\", not {other:?}"
            )))
        }
    }
    if let Some(contact) = &update.contact {
        if update.status.is_none() {
            check_contacts(contact)?;
            store.update_account_contact(&id, contact).await?;
        }
    }
    let account = store
        .account(&id)
        .await?
        .ok_or_else(|| Problem::not_found("account"))?;
    Ok(Json::ok(views::account(&request.urls, &account)).into_response())
}

/// The query of an orders-list page; the cursor is parsed by hand so that
/// a bad one says what a cursor is.
#[derive(Debug, Deserialize)]
pub struct OrdersPage {
    #[serde(default)]
    cursor: Option<String>,
}

/// The account's orders, [`ORDERS_PAGE`] at a time, with `Link: rel="next"`
/// to the following page (RFC 8555 §7.1.2.1).
pub async fn orders(
    State(store): State<Store>,
    Path(id): Path<String>,
    Query(page): Query<OrdersPage>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    own_account(&request, &id)?;
    request.require_post_as_get()?;
    let offset = match page.cursor.as_deref() {
        None => 0,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Problem::malformed(format!("cursor {text:?} is not a page offset")))?,
    };
    let mut ids = store
        .order_ids_for_account(&id, offset, ORDERS_PAGE + 1)
        .await?;
    let more = ids.len() as i64 > ORDERS_PAGE;
    ids.truncate(ORDERS_PAGE as usize);
    let list = OrderList {
        orders: ids.iter().map(|o| request.urls.order(o)).collect(),
    };
    let mut response = Json::ok(list).into_response();
    if more {
        let next = format!(
            "<{}?cursor={}>;rel=\"next\"",
            request.urls.account_orders(&id),
            offset + ORDERS_PAGE
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().append(LINK, value);
        }
    }
    Ok(response)
}

/// The profile whose directory a request came through.
fn request_profile<'a>(profiles: &'a Profiles, urls: &Urls) -> &'a Profile {
    urls.profile()
        .and_then(|name| profiles.get(name))
        .unwrap_or_else(|| profiles.default_profile())
}
