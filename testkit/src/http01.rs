//! An HTTP-01 responder for tests: serves the key authorizations a test
//! registers at `/.well-known/acme-challenge/<token>`, 404 for anything else,
//! optionally behind a chain of redirects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// What the responder answers for one token.
#[derive(Debug, Clone)]
struct Answer {
    body: String,
    /// Redirects to send before the body.
    redirects: u32,
    /// Where the first redirect points, instead of the next hop here.
    location: Option<String>,
}

type Answers = Arc<Mutex<HashMap<String, Answer>>>;

pub struct Http01Responder {
    port: u16,
    answers: Answers,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Http01Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn respond(answers: &Answers, token: &str, hop: u32) -> Response {
    let Some(answer) = answers.lock().unwrap().get(token).cloned() else {
        return (StatusCode::NOT_FOUND, "no such token").into_response();
    };
    if hop < answer.redirects {
        let next = answer
            .location
            .unwrap_or_else(|| format!("/hop/{}/{token}", hop + 1));
        return (StatusCode::FOUND, [(LOCATION, next)]).into_response();
    }
    (StatusCode::OK, answer.body).into_response()
}

async fn challenge(State(answers): State<Answers>, Path(token): Path<String>) -> Response {
    respond(&answers, &token, 0)
}

async fn hop(State(answers): State<Answers>, Path((hop, token)): Path<(u32, String)>) -> Response {
    respond(&answers, &token, hop)
}

impl Http01Responder {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// A responder listening on `addr` (port 0 for any free port).
    pub async fn start_on(addr: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let answers: Answers = Arc::default();
        let app = Router::new()
            .route("/.well-known/acme-challenge/{token}", get(challenge))
            .route("/hop/{hop}/{token}", get(hop))
            .with_state(answers.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            answers,
            task,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves `body` for `token`.
    pub fn serve(&self, token: &str, body: &str) {
        self.serve_after_redirects(token, body, 0);
    }

    /// Serves `body` for `token` after `redirects` redirects.
    pub fn serve_after_redirects(&self, token: &str, body: &str, redirects: u32) {
        self.answer(
            token,
            Answer {
                body: body.to_owned(),
                redirects,
                location: None,
            },
        );
    }

    /// Answers `token` with a redirect to `location`.
    pub fn redirect(&self, token: &str, location: &str) {
        self.answer(
            token,
            Answer {
                body: String::new(),
                redirects: 1,
                location: Some(location.to_owned()),
            },
        );
    }

    fn answer(&self, token: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap()
            .insert(token.to_owned(), answer);
    }
}
