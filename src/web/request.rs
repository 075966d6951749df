//! The authenticated ACME request: a verified JWS whose nonce was fresh and
//! whose `url` is the URL it was sent to (RFC 8555 §6.2–6.5).

use axum::body::Body;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequest, OriginalUri};
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode};
use serde::de::DeserializeOwned;

use super::nonce::Nonces;
use super::urls::{UrlSource, Urls};
use crate::domain::accounts::AccountKeys;
use crate::protocol::jwk::PublicJwk;
use crate::protocol::jws::{KeyRef, ParsedJws};
use crate::protocol::problem::{Problem, ProblemType};
use crate::protocol::status::AccountStatus;
use crate::store::Account;

/// Largest request body accepted: a CSR with a 8192-bit key and a hundred
/// names fits many times over.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Who signed a request.
#[derive(Debug, Clone)]
pub enum SignedBy {
    /// A key sent inline (`jwk`), for newAccount and revocation by certificate key.
    Key(PublicJwk),
    /// An existing, valid account (`kid`).
    Account(Account),
}

/// What checking a signed request takes: the URLs it must be addressed to,
/// the nonces it may spend and the accounts it may be signed by.
#[derive(Clone)]
pub struct RequestChecks {
    pub urls: UrlSource,
    pub nonces: Arc<Nonces>,
    pub accounts: AccountKeys,
}

#[derive(Debug)]
pub struct SignedRequest {
    pub urls: Urls,
    pub payload: Vec<u8>,
    pub signer: SignedBy,
}

impl SignedRequest {
    /// The signing account; requests other than newAccount must use `kid`.
    pub fn account(&self) -> Result<&Account, Problem> {
        match &self.signer {
            SignedBy::Account(account) => Ok(account),
            SignedBy::Key(_) => Err(Problem::malformed(
                "this request must be signed with an account key identified by kid, not jwk",
            )),
        }
    }

    /// The inline key; newAccount must use `jwk`.
    pub fn jwk(&self) -> Result<&PublicJwk, Problem> {
        match &self.signer {
            SignedBy::Key(key) => Ok(key),
            SignedBy::Account(_) => Err(Problem::malformed(
                "this request must carry the account key as jwk, not kid",
            )),
        }
    }

    /// POST-as-GET requests (RFC 8555 §6.3) have an empty payload.
    pub fn require_post_as_get(&self) -> Result<(), Problem> {
        if self.payload.is_empty() {
            Ok(())
        } else {
            Err(Problem::malformed(
                "this resource is read with POST-as-GET: the payload must be empty",
            ))
        }
    }

    /// The payload as a JSON object of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        if self.payload.is_empty() {
            return Err(Problem::malformed(
                "payload is empty; a JSON object is required",
            ));
        }
        serde_json::from_slice(&self.payload)
            .map_err(|e| Problem::malformed(format!("payload: {e}")))
    }
}

fn is_jose_json(request: &Request<Body>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/jose+json"))
}

impl<S> FromRequest<S> for SignedRequest
where
    S: Send + Sync,
    RequestChecks: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request(request: Request<Body>, state: &S) -> Result<Self, Problem> {
        let checks = RequestChecks::from_ref(state);
        if !is_jose_json(&request) {
            return Err(
                Problem::malformed("Content-Type must be application/jose+json")
                    .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            );
        }
        let (parts, body) = request.into_parts();
        let urls = Urls::for_request(&checks.urls, &parts)?;
        let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                Problem::malformed(format!(
                    "request body is larger than {MAX_BODY_BYTES} bytes"
                ))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            })?;
        // Routes are nested under /acme, which axum strips from `parts.uri`;
        // the URL the client signed is the original one.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        // The body exactly as it came, for debugging a client and for the
        // fuzz targets' seed corpus (docs/fuzzing.md). A signed request
        // holds no secret: keys travel public, an EAB key only as a MAC.
        tracing::trace!(
            target: "certgate::wire",
            path = %uri.path(),
            body = %URL_SAFE_NO_PAD.encode(&body),
            "signed request"
        );
        let jws = ParsedJws::parse(&body)?;

        let request_url = format!(
            "{}{}",
            urls.base(),
            uri.path_and_query().map_or("/", |p| p.as_str())
        );
        if jws.url != request_url {
            return Err(Problem::unauthorized(format!(
                "JWS url {:?} is not the request URL {request_url:?}",
                jws.url
            )));
        }

        // A nonce we never issued is refused before any lookup or
        // signature check, so a request without one costs next to nothing;
        // it is spent below, once the signature holds. One that cannot be
        // checked (the database is down) is a `503`, not a `badNonce`.
        if !checks.nonces.is_live(&jws.nonce).await? {
            return Err(bad_nonce());
        }
        let signer = match &jws.key {
            KeyRef::Jwk(key) => {
                jws.verify(key)?;
                SignedBy::Key(key.clone())
            }
            KeyRef::Kid(kid) => {
                let account = lookup_account(&checks.accounts, &urls, kid).await?;
                // A key accepted before the key policy tightened: say so
                // rather than fail as an internal error.
                let key = PublicJwk::parse(&account.jwk).map_err(|e| {
                    Problem::new(
                        ProblemType::BadPublicKey,
                        format!(
                            "this account's key is no longer accepted ({}); create a new account",
                            e.detail
                        ),
                    )
                })?;
                jws.verify(&key)?;
                if account.status != AccountStatus::Valid {
                    return Err(Problem::account_not_valid(account.status));
                }
                tracing::Span::current().record("account", account.id.as_str());
                SignedBy::Account(account)
            }
        };

        if !checks.nonces.consume(&jws.nonce).await? {
            return Err(bad_nonce());
        }
        Ok(Self {
            urls,
            payload: jws.payload,
            signer,
        })
    }
}

fn bad_nonce() -> Problem {
    Problem::new(
        ProblemType::BadNonce,
        "JWS nonce is unknown, expired or already used; retry with the nonce in this response",
    )
}

async fn lookup_account(
    accounts: &AccountKeys,
    urls: &Urls,
    kid: &str,
) -> Result<Account, Problem> {
    let unknown = || {
        Problem::new(
            ProblemType::AccountDoesNotExist,
            format!("no account at {kid:?} on this server"),
        )
    };
    let id = urls.account_id_from_kid(kid).ok_or_else(unknown)?;
    accounts
        .account(id)
        .await
        .map_err(|e| Problem::internal("reading the account", &e))?
        .ok_or_else(unknown)
}
