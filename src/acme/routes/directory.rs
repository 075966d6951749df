//! The directory and newNonce resources (RFC 8555 §7.1.1, §7.2).

use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::acme::response::Json;
use crate::acme::types::{Directory, DirectoryMeta};
use crate::acme::urls::Urls;

pub async fn directory(urls: Urls) -> Json<Directory> {
    Json::ok(Directory {
        new_nonce: urls.new_nonce(),
        new_account: urls.new_account(),
        new_order: urls.new_order(),
        revoke_cert: urls.revoke_cert(),
        key_change: urls.key_change(),
        meta: DirectoryMeta {
            website: Some(format!("{}/", urls.base())),
            caa_identities: Vec::new(),
            external_account_required: false,
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
