//! The challenge resource: a POST of `{}` asks the server to validate
//! (RFC 8555 §7.5.1); POST-as-GET reads it.

use axum::extract::State;

use crate::web::extract::Path;
use axum::http::header::LINK;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};

use super::owned;
use super::views;
use crate::domain::profiles::Profiles;
use crate::domain::workers::Workers;
use crate::protocol::problem::Problem;
use crate::protocol::status::{AuthorizationStatus, ChallengeStatus};
use crate::store::Store;
use crate::util::clock::Clock;
use crate::web::request::SignedRequest;
use crate::web::response::Json;
use crate::web::Lifetimes;
use std::sync::Arc;

pub async fn challenge(
    State(store): State<Store>,
    State(workers): State<Arc<Workers>>,
    State(clock): State<Arc<dyn Clock>>,
    State(lifetimes): State<Lifetimes>,
    State(profiles): State<Arc<Profiles>>,
    Path(id): Path<String>,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let authz = store
        .authorization_of_challenge(&id)
        .await?
        .ok_or_else(|| Problem::not_found("challenge"))?;
    let authz = owned(Some(authz), |a| &a.account_id, &request, "authorization")?;
    let challenge = authz
        .challenges
        .iter()
        .find(|challenge| challenge.id == id)
        .cloned()
        .ok_or_else(|| Problem::not_found("challenge"))?;

    let challenge = if request.payload.is_empty() {
        challenge
    } else {
        // RFC 8555 §7.5.1: the payload is an empty JSON object; anything else
        // a client sends is ignored rather than refused, as clients differ.
        let _: serde_json::Value = request.json()?;
        crate::domain::eab::check_binding_in_force(request.account()?)?;
        let lease = workers.leases.fresh();
        if store.start_challenge(&id, clock.now(), &lease).await? {
            let task = workers.spawn_validation(id.clone());
            // Answer with the result when validation is quick (saving the
            // client a poll); otherwise answer `processing` and let it poll.
            let _ = tokio::time::timeout(lifetimes.answer_wait, task).await;
        }
        // Started here, by a concurrent request, or long ago: answer with
        // what the challenge is now, unless it could not start at all.
        let now_stored = store
            .challenge(&id)
            .await?
            .ok_or_else(|| Problem::not_found("challenge"))?;
        if now_stored.status == ChallengeStatus::Pending {
            let why = match authz.effective_status(clock.now()) {
                AuthorizationStatus::Pending => {
                    "another challenge of this authorization is being validated".to_owned()
                }
                status => format!("its authorization is {status}"),
            };
            return Err(Problem::malformed(format!(
                "this challenge cannot be started: {why}"
            )));
        }
        now_stored
    };

    let issuer_domain_names = profiles.issuer_domain_names_of(&store, &authz).await?;
    let view = views::challenge(&request.urls, &challenge, &issuer_domain_names);
    let working = matches!(
        view.status,
        ChallengeStatus::Pending | ChallengeStatus::Processing
    );
    let mut response = Json::ok(view).retry_after_if(working).into_response();
    let up = format!("<{}>;rel=\"up\"", request.urls.authorization(&authz.id));
    if let Ok(value) = HeaderValue::from_str(&up) {
        response.headers_mut().append(LINK, value);
    }
    Ok(response)
}
