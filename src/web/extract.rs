//! The path and query extractors every route uses in place of axum's, so
//! that a request they cannot parse (a path parameter that is not UTF-8
//! once percent-decoded, a repeated or unknown query key) is answered with
//! a problem document (RFC 7807) in the dialect of the listener that got it
//! rather than axum's `text/plain` rejection. Which dialect is decided by
//! the router's state type: [`Rejections`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::protocol::problem::Problem;
use crate::web::AcmeState;

/// How the routes of one state type write a request they cannot parse.
pub trait Rejections {
    fn reject(status: StatusCode, detail: String) -> Response;
}

/// The ACME and operator routes: an ACME `malformed` problem (RFC 8555
/// §6.7) with the status axum chose (400, or 500 for a route whose
/// parameters do not match its handler).
impl Rejections for AcmeState {
    fn reject(status: StatusCode, detail: String) -> Response {
        Problem::malformed(detail)
            .with_status(status)
            .into_response()
    }
}

/// axum's `Path`, rejected as a problem document.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Rejections + Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(S::reject(rejection.status(), rejection.body_text())),
        }
    }
}

/// axum's `Query`, rejected as a problem document.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Rejections + Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(S::reject(rejection.status(), rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use axum::Router;
    use tower_service::Service;

    /// A router state that rejects as the ACME routes do.
    #[derive(Clone)]
    struct Routes;

    impl Rejections for Routes {
        fn reject(status: StatusCode, detail: String) -> Response {
            AcmeState::reject(status, detail)
        }
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Page {
        #[allow(dead_code)]
        cursor: Option<String>,
    }

    async fn answer(uri: &str) -> (StatusCode, String, serde_json::Value) {
        let mut router = Router::new()
            .route("/item/{id}", get(|Path(id): Path<String>| async { id }))
            .route("/list", get(|Query(_): Query<Page>| async { "listed" }))
            .with_state(Routes);
        let request = Request::get(uri).body(Body::empty()).unwrap();
        let response = router.call(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (status, content_type, json)
    }

    #[tokio::test]
    async fn unparsable_paths_and_queries_are_malformed_problems() {
        for uri in ["/item/%FF", "/list?cursor=1&cursor=2", "/list?page=2"] {
            let (status, content_type, problem) = answer(uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(content_type, "application/problem+json", "{uri}");
            assert_eq!(
                problem["type"], "urn:ietf:params:acme:error:malformed",
                "{uri}"
            );
        }
        let (status, _, _) = answer("/item/abc").await;
        assert_eq!(status, StatusCode::OK);
    }
}
