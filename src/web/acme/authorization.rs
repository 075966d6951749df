//! The authorization resource: POST-as-GET and deactivation (RFC 8555 §7.5).

use axum::extract::State;

use crate::web::extract::Path;
use axum::response::{IntoResponse, Response};

use super::{owned, views};
use crate::domain::profiles::Profiles;
use crate::protocol::problem::Problem;
use crate::protocol::status::AuthorizationStatus;
use crate::protocol::types::AuthorizationUpdateRequest;
use crate::store::{Authorization, Store};
use crate::util::clock::Clock;
use crate::web::request::SignedRequest;
use crate::web::response::Json;
use std::sync::Arc;

/// Loads an authorization that belongs to the signing account.
pub async fn owned_authorization(
    store: &Store,
    request: &SignedRequest,
    id: &str,
) -> Result<Authorization, Problem> {
    let authz = store.authorization(id).await?;
    owned(authz, |a| &a.account_id, request, "authorization")
}

pub async fn authorization(
    State(store): State<Store>,
    State(clock): State<Arc<dyn Clock>>,
    State(profiles): State<Arc<Profiles>>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let mut authz = owned_authorization(&store, &request, &id).await?;
    if !request.payload.is_empty() {
        let update: AuthorizationUpdateRequest = request.json()?;
        if update.status != "deactivated" {
            return Err(Problem::malformed(format!(
                "an authorization's status can only be set to \"deactivated\", not {:?}",
                update.status
            )));
        }
        let now = clock.now();
        let why = Problem::unauthorized("an authorization of this order was deactivated");
        if !store.deactivate_authorization(&id, &why, now).await? {
            return Err(Problem::malformed(format!(
                "only pending or valid authorizations can be deactivated; this one is {}",
                authz.effective_status(now)
            )));
        }
        authz = store
            .authorization(&id)
            .await?
            .ok_or_else(|| Problem::not_found("authorization"))?;
    }
    let issuer_domain_names = profiles.issuer_domain_names_of(&store, &authz).await?;
    let view = views::authorization(&request.urls, &authz, &issuer_domain_names, clock.now());
    let pending = view.status == AuthorizationStatus::Pending;
    Ok(Json::ok(view).retry_after_if(pending).into_response())
}
