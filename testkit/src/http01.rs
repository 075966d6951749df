//! An HTTP-01 responder for tests: serves the key authorizations a test
//! registers at `/.well-known/acme-challenge/<token>`, 404 for anything else,
//! optionally behind a chain of redirects, and holds its answers back for
//! as long as a test asks it to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Whether challenge requests are answered or held, and how many came.
#[derive(Default)]
struct Gate {
    held: tokio::sync::watch::Sender<bool>,
    asked: AtomicUsize,
}

impl Gate {
    /// Counts a challenge request and waits while answers are held.
    async fn pass(&self) {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let mut held = self.held.subscribe();
        let _ = held.wait_for(|held| !held).await;
    }
}

pub struct Http01Responder {
    port: u16,
    answers: Answers,
    gate: Arc<Gate>,
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

async fn challenge(
    State((answers, gate)): State<(Answers, Arc<Gate>)>,
    Path(token): Path<String>,
) -> Response {
    gate.pass().await;
    respond(&answers, &token, 0)
}

async fn hop(
    State((answers, _)): State<(Answers, Arc<Gate>)>,
    Path((hop, token)): Path<(u32, String)>,
) -> Response {
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
        let gate = Arc::new(Gate::default());
        let app = Router::new()
            .route("/.well-known/acme-challenge/{token}", get(challenge))
            .route("/hop/{hop}/{token}", get(hop))
            .with_state((answers.clone(), gate.clone()));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            port,
            answers,
            gate,
            task,
        }
    }

    /// Holds every challenge request from now on without an answer, until
    /// [`Http01Responder::release`]: a client's server that is slow to
    /// answer, while the validator waits.
    pub fn hold(&self) {
        self.gate.held.send_replace(true);
    }

    /// Answers the held requests and every one after.
    pub fn release(&self) {
        self.gate.held.send_replace(false);
    }

    /// Challenge requests received so far, held ones included.
    pub fn requests(&self) -> usize {
        self.gate.asked.load(Ordering::SeqCst)
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
