//! keyChange's inner JWS (RFC 8555 §7.3.5): everything about it that needs
//! no state, so that the handler and the fuzz target check it alike.
//!
//! The inner JWS is signed by the new key, carried as `jwk`, and has no
//! nonce; its `url` is the outer request's and its payload names the
//! account and the account's current key.

use serde::Deserialize;
use serde_json::Value;

use super::jwk::PublicJwk;
use super::jws::{KeyRef, ParsedJws};
use super::problem::Problem;

/// The payload of the inner JWS.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyChangePayload {
    account: String,
    old_key: Value,
}

/// What the outer request says the inner JWS must agree with.
pub struct KeyChangeContext<'a> {
    /// The outer JWS's `url`, which the inner one must repeat.
    pub outer_url: &'a str,
    /// The URL of the account that signed the outer JWS.
    pub account_url: &'a str,
    /// The RFC 7638 thumbprint of that account's current key.
    pub current_thumbprint: &'a str,
}

/// A problem found in the inner JWS, with its detail saying so.
fn inner(problem: Problem) -> Problem {
    Problem {
        detail: format!("keyChange inner JWS: {}", problem.detail),
        ..problem
    }
}

/// Checks the inner JWS carried as the outer payload; the new key when it
/// may replace the current one.
pub fn check_inner(payload: &[u8], context: &KeyChangeContext<'_>) -> Result<PublicJwk, Problem> {
    // Same structure, algorithms and key policy as any request; no nonce.
    let jws = ParsedJws::parse_nested(payload).map_err(inner)?;
    let KeyRef::Jwk(new_key) = &jws.key else {
        return Err(inner(Problem::malformed(
            "the new key must be sent as jwk, not identified by kid",
        )));
    };
    if jws.header.nonce.is_some() {
        return Err(inner(Problem::malformed("must not carry a nonce")));
    }
    jws.verify(new_key).map_err(inner)?;
    let body: KeyChangePayload = serde_json::from_slice(&jws.payload)
        .map_err(|e| inner(Problem::malformed(format!("payload: {e}"))))?;
    if jws.url != context.outer_url {
        return Err(inner(Problem::malformed(format!(
            "url {:?} is not the outer JWS url {:?}",
            jws.url, context.outer_url
        ))));
    }
    if body.account != context.account_url {
        return Err(inner(Problem::malformed(format!(
            "account {:?} is not the account that signed the request, {:?}",
            body.account, context.account_url
        ))));
    }
    let old_key = PublicJwk::parse(&body.old_key)
        .map_err(|e| inner(Problem::malformed(format!("oldKey: {}", e.detail))))?;
    if old_key.thumbprint != context.current_thumbprint {
        return Err(inner(Problem::malformed(
            "oldKey is not the account's current key",
        )));
    }
    if new_key.thumbprint == context.current_thumbprint {
        return Err(inner(Problem::malformed(
            "the new key is the account's current key",
        )));
    }
    Ok(new_key.clone())
}
