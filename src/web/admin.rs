//! The admin HTTP API (`/admin/v1/...`): the inventory of `certgate certs`
//! and `certgate accounts` for tools, on a listener of its own that is off
//! unless configured. Every request carries `Authorization: Bearer <token>`
//! with the token from a file read at start; errors are RFC 7807 problem
//! documents.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{
    AUTHORIZATION, CONTENT_DISPOSITION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ring::hmac;
use serde::Deserialize;

use crate::audit::{Actor, AuditLog};
use crate::domain::accounts::{deactivate_account, Deactivation};
use crate::domain::inventory::export::{export, ExportError, ExportFormat};
use crate::domain::inventory::filter::{certificate_filter, FilterError};
use crate::domain::inventory::view::{AccountListing, CertificateView};
use crate::store::{Certificate, Store, StoreError};
use crate::util::clock::Clock;
use crate::web::extract::{Path as UrlPath, Query, Rejections};
use crate::web::ops::status_page::{self, CertificateTable};
use crate::web::AcmeState;

/// The admin token, held only as an HMAC under a key made at start, so a
/// comparison takes the same time however much of a guess is right and
/// whatever its length.
pub struct AdminToken {
    key: hmac::Key,
    tag: hmac::Tag,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("admin token file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin token file {path} is empty: the admin API never runs without a token")]
    Empty { path: PathBuf },
}

impl AdminToken {
    /// The trimmed content of `path`. An empty file is refused; one that
    /// other users may read is accepted with a warning, as secrets mounted
    /// by an orchestrator often are.
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        use std::os::unix::fs::PermissionsExt;
        let read_error = |source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenFileError::Empty {
                path: path.to_owned(),
            });
        }
        let mode = std::fs::metadata(path)
            .map_err(read_error)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", mode & 0o777),
                "the admin token file is readable by other users; chmod 600 it"
            );
        }
        Ok(Self::new(token))
    }

    fn new(token: &str) -> Self {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &rand::random::<[u8; 32]>());
        let tag = hmac::sign(&key, token.as_bytes());
        Self { key, tag }
    }

    fn accepts(&self, presented: &str) -> bool {
        hmac::verify(&self.key, presented.as_bytes(), self.tag.as_ref()).is_ok()
    }
}

#[derive(Clone)]
struct AdminState {
    store: Store,
    audit: AuditLog,
    clock: Arc<dyn Clock>,
    token: Arc<AdminToken>,
}

/// The admin API's routes, every one behind the bearer token; `/status`
/// with its certificate table among them.
pub fn router(acme: AcmeState, token: AdminToken) -> Router {
    let status_page = status_page::routes(CertificateTable::Shown).with_state(acme.clone());
    let state = AdminState {
        store: acme.store,
        audit: acme.audit,
        clock: acme.clock,
        token: Arc::new(token),
    };
    Router::new()
        .route("/admin/v1/certificates", get(list_certificates))
        .route("/admin/v1/certificates/{serial}", get(show_certificate))
        .route("/admin/v1/certificates/{serial}/pem", get(download_pem))
        .route("/admin/v1/certificates/{serial}/der", get(download_der))
        .route("/admin/v1/accounts", get(list_accounts))
        .route("/admin/v1/accounts/{id}/deactivate", post(deactivate))
        .with_state(state.clone())
        .merge(status_page)
        .fallback(|| async { AdminError::NotFound("no such admin resource".into()) })
        .method_not_allowed_fallback(|| async { AdminError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(state, require_token))
}

/// Why an admin request failed; each is sent as a problem document.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    #[error("this request needs the admin token as Authorization: Bearer <token>")]
    MissingToken,
    #[error("the bearer token is not the admin token")]
    WrongToken,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    Unparsable { status: StatusCode, detail: String },
    #[error("this method is not allowed on this admin resource")]
    MethodNotAllowed,
    #[error("using the database")]
    Store(#[from] StoreError),
    #[error("exporting the certificate")]
    Export(#[source] ExportError),
}

impl From<FilterError> for AdminError {
    fn from(error: FilterError) -> Self {
        Self::BadRequest(error.to_string())
    }
}

/// A path or query the admin API cannot parse: its own `about:blank`
/// problem, with the status axum chose.
impl Rejections for AdminState {
    fn reject(status: StatusCode, detail: String) -> Response {
        AdminError::Unparsable { status, detail }.into_response()
    }
}

impl From<ExportError> for AdminError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::DerChain => Self::BadRequest(error.to_string()),
            ExportError::Stored { .. } => Self::Export(error),
        }
    }
}

/// An RFC 7807 document. The admin API's problems carry no semantics
/// beyond their status, hence `about:blank` with the status phrase as the
/// title (RFC 7807 §4.2).
#[derive(serde::Serialize)]
struct ProblemDocument {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: String,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::MissingToken | Self::WrongToken => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unparsable { status, .. } => *status,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Store(cause) if cause.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            Self::Store(_) | Self::Export(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let detail = match &self {
            Self::Store(cause) => {
                tracing::error!(error = %cause, "admin API: using the database");
                format!("{self}; the server log has details")
            }
            Self::Export(cause) => {
                tracing::error!(error = %cause, "admin API: exporting a certificate");
                format!("{self}; the server log has details")
            }
            _ => self.to_string(),
        };
        let document = ProblemDocument {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or_default(),
            status: status.as_u16(),
            detail,
        };
        let mut response = (
            status,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            Json(document),
        )
            .into_response();
        // RFC 6750 §3: the scheme to use, and `invalid_token` when one was sent.
        let challenge = match self {
            Self::MissingToken => Some(r#"Bearer realm="certgate admin""#),
            Self::WrongToken => Some(r#"Bearer realm="certgate admin", error="invalid_token""#),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // As the ACME routes say it: the database refused a write.
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(StoreError::RETRY_AFTER_SECS));
        }
        response
    }
}

/// Lets a request through only with the admin token. The token is never
/// logged; a refusal is, with the path, for whoever watches for probing.
async fn require_token(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Result<Response, AdminError> {
    match bearer_token(request.headers()) {
        Some(token) if state.token.accepts(token) => Ok(next.run(request).await),
        presented => {
            tracing::warn!(
                path = %request.uri().path(),
                token_sent = presented.is_some(),
                "admin API request refused: no valid bearer token"
            );
            Err(if presented.is_some() {
                AdminError::WrongToken
            } else {
                AdminError::MissingToken
            })
        }
    }
}

/// The credentials of `Authorization: Bearer <token>`; the scheme is
/// case-insensitive (RFC 7235 §2.1).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    profile: Option<String>,
    /// A duration such as `30d` or `12h`.
    expiring_within: Option<String>,
    #[serde(default)]
    revoked: bool,
    /// Superseded certificates too, as `certs list --all`.
    #[serde(default)]
    all: bool,
}

async fn list_certificates(
    State(state): State<AdminState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<CertificateView>>, AdminError> {
    let now = state.clock.now();
    let filter = certificate_filter(
        query.profile,
        query.expiring_within.as_deref(),
        query.revoked,
        query.all,
        now,
    )?;
    Ok(Json(
        crate::domain::inventory::certificate_views(&state.store, &filter, now).await?,
    ))
}

async fn certificate(state: &AdminState, serial: &str) -> Result<Certificate, AdminError> {
    state
        .store
        .certificate_by_typed_serial(serial)
        .await?
        .ok_or_else(|| {
            AdminError::NotFound(format!("there is no certificate with serial {serial}"))
        })
}

async fn show_certificate(
    State(state): State<AdminState>,
    UrlPath(serial): UrlPath<String>,
) -> Result<Json<CertificateView>, AdminError> {
    let certificate = certificate(&state, &serial).await?;
    Ok(Json(CertificateView::new(&certificate, state.clock.now())))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadQuery {
    /// The leaf followed by its chain (PEM only).
    #[serde(default)]
    chain: bool,
}

async fn download_pem(
    State(state): State<AdminState>,
    UrlPath(serial): UrlPath<String>,
    Query(query): Query<DownloadQuery>,
) -> Result<Response, AdminError> {
    download(&state, &serial, ExportFormat::Pem, query).await
}

async fn download_der(
    State(state): State<AdminState>,
    UrlPath(serial): UrlPath<String>,
    Query(query): Query<DownloadQuery>,
) -> Result<Response, AdminError> {
    download(&state, &serial, ExportFormat::Der, query).await
}

async fn download(
    state: &AdminState,
    serial: &str,
    format: ExportFormat,
    query: DownloadQuery,
) -> Result<Response, AdminError> {
    let certificate = certificate(state, serial).await?;
    let bytes = export(&certificate, format, query.chain)?;
    let view = CertificateView::new(&certificate, state.clock.now());
    let disposition = format!(
        "attachment; filename=\"{}.{}\"",
        view.serial,
        format.extension()
    );
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static(format.media_type())),
            (
                CONTENT_DISPOSITION,
                HeaderValue::try_from(disposition).expect("hex and ASCII make a header value"),
            ),
        ],
        bytes,
    )
        .into_response())
}

async fn list_accounts(
    State(state): State<AdminState>,
) -> Result<Json<Vec<AccountListing>>, AdminError> {
    let accounts = state.store.list_accounts().await?;
    Ok(Json(
        accounts
            .iter()
            .map(|(account, certificates)| AccountListing::new(account, *certificates))
            .collect(),
    ))
}

/// Deactivates the account and answers with it as it now stands; asking
/// again for an account no longer valid changes nothing and answers the same.
async fn deactivate(
    State(state): State<AdminState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<AccountListing>, AdminError> {
    let store = &state.store;
    let outcome =
        deactivate_account(store, &state.audit, &id, Actor::AdminApi, state.clock.now()).await?;
    let unknown = || AdminError::NotFound(format!("there is no account {id}"));
    if outcome == Deactivation::Unknown {
        return Err(unknown());
    }
    let (account, certificates) = store
        .account_with_certificate_count(&id)
        .await?
        .ok_or_else(unknown)?;
    Ok(Json(AccountListing::new(&account, certificates)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_itself_is_accepted() {
        let token = AdminToken::new("s3cret-admin-token");
        assert!(token.accepts("s3cret-admin-token"));
        for wrong in [
            "",
            "s3cret-admin-toke",
            "s3cret-admin-token2",
            "S3CRET-admin-token",
        ] {
            assert!(!token.accepts(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_others_are_ignored() {
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert_eq!(bearer_token(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("Basic YWJjOmRlZg==")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn an_empty_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, " \n").unwrap();
        assert!(matches!(
            AdminToken::load(&path),
            Err(TokenFileError::Empty { .. })
        ));
        std::fs::write(&path, "abc\n").unwrap();
        assert!(AdminToken::load(&path).unwrap().accepts("abc"));
    }
}
