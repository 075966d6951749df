//! An HTTP-01 responder for tests: serves the key authorizations a test
//! registers at `/.well-known/acme-challenge/<token>`, 404 for anything else.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

type Tokens = Arc<Mutex<HashMap<String, String>>>;

pub struct Http01Responder {
    port: u16,
    tokens: Tokens,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Http01Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_token(
    State(tokens): State<Tokens>,
    Path(token): Path<String>,
) -> (StatusCode, String) {
    match tokens.lock().unwrap().get(&token) {
        Some(key_authorization) => (StatusCode::OK, key_authorization.clone()),
        None => (StatusCode::NOT_FOUND, "no such token".into()),
    }
}

impl Http01Responder {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tokens: Tokens = Arc::default();
        let app = Router::new()
            .route("/.well-known/acme-challenge/{token}", get(serve_token))
            .with_state(tokens.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { port, tokens, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn serve(&self, token: &str, key_authorization: &str) {
        self.tokens
            .lock()
            .unwrap()
            .insert(token.to_owned(), key_authorization.to_owned());
    }
}
