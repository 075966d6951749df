//! The directory and newNonce resources (RFC 8555 §7.1.1, §7.2).

use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use axum::extract::State;

use crate::config::EabPolicy;
use crate::domain::profiles::Profiles;
use crate::protocol::types::{Directory, DirectoryMeta};
use crate::web::response::Json;
use crate::web::urls::Urls;
use std::sync::Arc;

/// The directory of the profile the URL names (or the default one), which
/// lists every profile so a client may pick another in newOrder.
pub async fn directory(State(profiles): State<Arc<Profiles>>, urls: Urls) -> Json<Directory> {
    let profile = urls
        .profile()
        .and_then(|name| profiles.get(name))
        .unwrap_or_else(|| profiles.default_profile());
    Json::ok(Directory {
        new_nonce: urls.new_nonce(),
        new_account: urls.new_account(),
        new_order: urls.new_order(),
        revoke_cert: urls.revoke_cert(),
        key_change: urls.key_change(),
        renewal_info: urls.renewal_info(),
        meta: DirectoryMeta {
            website: Some(format!("{}/", urls.base())),
            caa_identities: profile.advertised_caa_identities().to_vec(),
            external_account_required: profile.eab == EabPolicy::Required,
            profiles: profiles
                .iter()
                .map(|p| (p.name.clone(), p.description.clone()))
                .collect(),
        },
    })
}

fn no_store(status: StatusCode) -> Response {
    let mut response = status.into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// HEAD answers 200 and GET 204 (RFC 8555 §7.2); the nonce itself is added
/// by the header middleware like on every other response.
pub async fn new_nonce_head() -> Response {
    no_store(StatusCode::OK)
}

pub async fn new_nonce_get() -> Response {
    no_store(StatusCode::NO_CONTENT)
}
