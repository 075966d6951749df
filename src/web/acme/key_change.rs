//! keyChange: account key rollover (RFC 8555 §7.3.5).
//!
//! The outer JWS is an ordinary request signed by the account (`kid`); its
//! payload is an inner JWS signed by the new key, carried as `jwk`, whose
//! payload names the account and its current key. Both signatures together
//! show that the holder of the old key and the holder of the new key agree.

use axum::extract::{OriginalUri, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::views;
use crate::audit::AuditEvent;
use crate::audit::AuditLog;
use crate::protocol::key_change::{check_inner, KeyChangeContext};
use crate::protocol::problem::Problem;
use crate::store::Store;
use crate::web::request::SignedRequest;
use crate::web::response::Json;

/// 409 with the account that already holds the new key as `Location`.
fn key_in_use(location: &str) -> Response {
    let mut response =
        Problem::malformed("the new key is already the key of another account; see Location")
            .with_status(StatusCode::CONFLICT)
            .into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

pub async fn key_change(
    State(store): State<Store>,
    State(audit): State<AuditLog>,
    OriginalUri(uri): OriginalUri,
    request: SignedRequest,
) -> Result<Response, Problem> {
    let account = request.account()?;
    let account_url = request.urls.account(&account.id);
    // The outer `url`: the extractor checked that it is exactly this.
    let outer_url = format!(
        "{}{}",
        request.urls.base(),
        uri.path_and_query().map_or("/", |p| p.as_str())
    );

    let new_key = check_inner(
        &request.payload,
        &KeyChangeContext {
            outer_url: &outer_url,
            account_url: &account_url,
            current_thumbprint: &account.key_thumbprint,
        },
    )?;

    let outcome = store
        .update_account_key(
            &account.id,
            &account.key_thumbprint,
            &new_key.thumbprint,
            &new_key.value,
        )
        .await?;
    match outcome {
        Ok(true) => {}
        Ok(false) => {
            return Err(Problem::malformed(
                "the account's key or status changed while this request was processed; \
                 oldKey is no longer the current key of a valid account",
            ))
        }
        Err(holder) => {
            tracing::info!(
                account = %account.id,
                holder = %holder,
                new_thumbprint = %new_key.thumbprint,
                "key rollover refused: the new key belongs to another account"
            );
            return Ok(key_in_use(&request.urls.account(&holder)));
        }
    }
    tracing::info!(
        account = %account.id,
        old_thumbprint = %account.key_thumbprint,
        new_thumbprint = %new_key.thumbprint,
        "account key rolled over"
    );
    audit
        .record(AuditEvent::AccountKeyChanged {
            account: account.id.clone(),
            old_key_thumbprint: account.key_thumbprint.clone(),
            new_key_thumbprint: new_key.thumbprint.clone(),
        })
        .await;
    let mut updated = account.clone();
    updated.key_thumbprint = new_key.thumbprint.clone();
    updated.jwk = new_key.value.clone();
    Ok(Json::ok(views::account(&request.urls, &updated))
        .location(account_url)
        .into_response())
}
