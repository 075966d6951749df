//! Every `/v1/…` request goes through here: the fault switches first, then
//! the token and its policy (unless the path is one Vault serves openly), then
//! the handler. Mount names may contain `/`, so paths are matched by hand
//! rather than by a route table.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};

use super::auth::{request_token, Token};
use super::envelope::{Reply, VaultError};
use super::fields::Fields;
use super::health::health;
use super::login;
use super::pki::{self, Operation};
use super::record::{push, RequestLine};
use super::state::App;

fn query_map(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

pub async fn v1(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = app.faults.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let path = uri.path().trim_start_matches("/v1/").to_owned();
    let query = query_map(&uri);
    let response = if path == "sys/health" {
        health(&app.faults.snapshot(), app.clock.unix(), &query)
    } else {
        let path_and_query = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        match app.faults.gate(&path, path_and_query) {
            Some(refusal) => refusal,
            None => route(&app, &method, &path, &query, &headers, &body)
                .unwrap_or_else(IntoResponse::into_response),
        }
    };
    push(
        &app.record.requests,
        RequestLine {
            method: method.to_string(),
            path,
            status: response.status().as_u16(),
        },
    );
    response
}

/// The token of the request, checked for life and for the path's policy.
fn authenticate(app: &App, headers: &HeaderMap, path: &str) -> Result<Token, VaultError> {
    let id = request_token(headers).ok_or_else(VaultError::permission_denied)?;
    let token = app.tokens.lookup(&id, app.clock.unix())?;
    if app.policies.allows(&token, path) {
        Ok(token)
    } else {
        Err(VaultError::permission_denied())
    }
}

fn route(
    app: &App,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    let listing = query.get("list").is_some_and(|v| v == "true");
    let op = Operation::of(method, listing).ok_or_else(VaultError::unsupported_operation)?;
    let expect = |wanted: Operation| {
        if op == wanted {
            Ok(())
        } else {
            Err(VaultError::unsupported_operation())
        }
    };

    // Logins need no token.
    if let Some(auth_mount) = path
        .strip_prefix("auth/")
        .and_then(|p| p.strip_suffix("/login"))
    {
        if login::has_auth_mount(app, auth_mount) {
            expect(Operation::Write)?;
            return login::login(app, auth_mount, &Fields::parse(body)?);
        }
    }

    let mount = app.mount_for(path);
    if let Some((mount, rest)) = mount {
        if pki::is_unauthenticated(rest) {
            return pki::dispatch(app, mount, op, rest, body);
        }
    }
    let token = authenticate(app, headers, path)?;
    match (path, mount) {
        ("auth/token/lookup-self", _) => {
            expect(Operation::Read)?;
            login::lookup_self(app, &token)
        }
        ("auth/token/renew-self", _) => {
            expect(Operation::Write)?;
            login::renew_self(app, &token, &Fields::parse(body)?)
        }
        (_, Some((mount, rest))) => pki::dispatch(app, mount, op, rest, body),
        (_, None) => Err(VaultError::no_route(path)),
    }
}
