//! The HTTP routes of the ACME server, one file per RFC 8555 resource.

mod account;
mod authorization;
mod certificate;
mod challenge;
mod directory;
mod finalize;
mod key_change;
mod order;
mod renewal_info;
mod revoke;
mod views;

use axum::extract::{Request, State};
use axum::http::header::{HeaderName, LINK};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tracing::Instrument;

use super::connections::ConnectionSlot;
use super::extract::Path;
use super::nonce::Nonces;
use super::request::SignedRequest;
use super::urls::{UrlSource, Urls};
use super::AcmeState;
use crate::domain::profiles::Profiles;
use crate::protocol::problem::Problem;
use std::sync::Arc;

pub const REPLAY_NONCE: HeaderName = HeaderName::from_static("replay-nonce");

/// `found`, if it exists and belongs to the account that signed `request`.
/// Someone else's resource is `unauthorized`, a missing one 404.
fn owned<T>(
    found: Option<T>,
    owner: impl Fn(&T) -> &str,
    request: &SignedRequest,
    what: &str,
) -> Result<T, Problem> {
    let account = request.account()?;
    let resource = found.ok_or_else(|| Problem::not_found(what))?;
    if owner(&resource) != account.id {
        return Err(Problem::unauthorized(format!(
            "this {what} belongs to another account"
        )));
    }
    Ok(resource)
}

/// The entries of a directory: served at `/acme/...` for the default
/// profile and at `/acme/<profile>/...` for each profile.
fn directory_entries() -> Router<AcmeState> {
    Router::new()
        .route("/directory", get(directory::directory))
        .route(
            "/new-nonce",
            get(directory::new_nonce_get).head(directory::new_nonce_head),
        )
        .route("/new-account", post(account::new_account))
        .route("/new-order", post(order::new_order))
        .route("/revoke-cert", post(revoke::revoke_cert))
        .route("/key-change", post(key_change::key_change))
}

/// A path under `/acme/<profile>/` for a profile that does not exist is a 404.
async fn known_profile(
    State(profiles): State<Arc<Profiles>>,
    Path(profile): Path<String>,
    request: Request,
    next: Next,
) -> Response {
    if profiles.get(&profile).is_none() {
        return Problem::not_found(&format!("profile {profile:?}")).into_response();
    }
    next.run(request).await
}

/// The `/acme` routes, with the headers every ACME response carries.
pub fn router(state: AcmeState) -> Router {
    let profile_entries = directory_entries()
        .route_layer(middleware::from_fn_with_state(state.clone(), known_profile));
    let acme = directory_entries()
        .nest("/{profile}", profile_entries)
        .route("/acct/{id}", post(account::account))
        .route("/acct/{id}/orders", post(account::orders))
        .route("/order/{id}", post(order::order))
        .route("/order/{id}/finalize", post(finalize::finalize))
        .route("/authz/{id}", post(authorization::authorization))
        .route("/chall/{id}", post(challenge::challenge))
        .route("/cert/{id}", post(certificate::certificate))
        .route("/renewal-info/{cert_id}", get(renewal_info::renewal_info))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(run_to_completion))
        .layer(middleware::from_fn_with_state(state.clone(), acme_headers))
        .with_state(state);
    Router::new().nest("/acme", acme)
}

/// Runs the handler on a task of its own, which a client that hangs up
/// (dropping this future) does not stop: a handler that has changed
/// something (a challenge started, an order moved to processing, an account
/// created) goes on to start the background work that change promises and
/// to write its audit line, instead of being cut off in between.
///
/// The task holds the request's connection slot until it ends, so a client
/// that hangs up and reconnects cannot pile up detached handlers: they
/// count against `max-connections` like the connections that started them.
async fn run_to_completion(request: Request, next: Next) -> Response {
    let slot = request.extensions().get::<ConnectionSlot>().cloned();
    let handler = next.run(request).instrument(tracing::Span::current());
    let task = tokio::spawn(async move {
        let response = handler.await;
        drop(slot);
        response
    });
    match task.await {
        Ok(response) => response,
        Err(failure) => Problem::internal("the request handler failed", &failure).into_response(),
    }
}

/// RFC 8555 §6.5 and §7.1: a fresh nonce and a link to the directory on
/// every response, errors included (a `badNonce` must carry a nonce).
///
/// A nonce the database cannot issue makes newNonce's answer a `503` with
/// `Retry-After`, as other database faults are; any other response goes
/// out without one, since what its request did is done, and the client's
/// next newNonce hears of the fault.
async fn acme_headers(
    State(url_source): State<UrlSource>,
    State(nonces): State<Arc<Nonces>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let urls = Urls::for_request(&url_source, &parts).ok();
    let asks_for_a_nonce = parts.uri.path().ends_with("/new-nonce");
    let mut response = next.run(Request::from_parts(parts, body)).await;
    match nonces.issue().await {
        Ok(nonce) => {
            if let Ok(nonce) = HeaderValue::from_str(&nonce) {
                response.headers_mut().insert(REPLAY_NONCE, nonce);
            }
        }
        Err(error) if asks_for_a_nonce => response = Problem::from(error).into_response(),
        Err(error) => tracing::warn!(%error, "answering without a nonce: none could be issued"),
    }
    let headers = response.headers_mut();
    if let Some(link) =
        urls.and_then(|u| HeaderValue::from_str(&format!("<{}>;rel=\"index\"", u.directory())).ok())
    {
        headers.append(LINK, link);
    }
    response
}

async fn not_found() -> Problem {
    Problem::not_found("resource")
}

async fn method_not_allowed() -> Problem {
    Problem::malformed("method not allowed; ACME resources are read with POST-as-GET")
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}
