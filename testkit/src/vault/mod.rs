//! A Vault-compatible PKI server for certgate's tests.
//!
//! Vault itself cannot run on the test machines, so this stand-in keeps the
//! contract in `vault-api.md`: the same paths, JSON envelopes, error bodies
//! and statuses, role name rules, check order and TTL rules, with real X.509
//! signing by a two-tier CA. Tests drive it through [`VaultStandin`]: start it
//! from a [`StandinConfig`], point certgate at [`VaultStandin::addr`], flip
//! fault switches, and read back what happened.

mod admin;
mod auth;
mod ca;
mod certs;
mod clock;
mod config;
mod csr;
mod envelope;
mod faults;
mod fields;
mod health;
mod issue;
mod lab;
mod listing;
mod login;
mod names;
mod pki;
mod record;
mod relay;
mod role;
mod router;
mod sign;
mod state;
mod ttl;
mod verbatim;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::any;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use auth::Grant;
pub use config::{Mount, StandinConfig, CERTGATE_POLICY};
pub use faults::{FaultState, HealthOverride};
pub use lab::{ROLE_ID, SECRET_ID};
pub use record::{Login, Renewal, RequestLine, Revocation, SignCall};
pub use role::Role;
pub use state::StoredCert;

use record::snapshot;
use state::App;

/// A running stand-in. Dropping it stops the server.
pub struct VaultStandin {
    app: Arc<App>,
    addr: SocketAddr,
    root_token: String,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for VaultStandin {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl VaultStandin {
    /// Generates the CAs, binds the listener and serves until dropped.
    /// Panics when the address cannot be bound: a test cannot go on without it.
    pub async fn start(config: StandinConfig) -> Self {
        let app = Arc::new(App::new(&config));
        let router = Router::new()
            .route("/v1/{*path}", any(router::v1))
            .nest(admin::PREFIX, admin::router())
            .with_state(app.clone());
        let inner = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the API listener");
        let inner_addr = inner.local_addr().expect("API address");
        let public = TcpListener::bind(config.listen)
            .await
            .expect("bind the stand-in address");
        let addr = public.local_addr().expect("stand-in address");
        let serve = tokio::spawn(async move {
            let _ = axum::serve(inner, router).await;
        });
        let relay = tokio::spawn(relay::run(public, inner_addr, app.clone()));
        Self {
            app,
            addr,
            root_token: config.root_token,
            tasks: vec![serve, relay],
        }
    }

    /// `http://127.0.0.1:PORT`, what a Vault client takes as its address.
    pub fn addr(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The root CA certificate (PEM, no trailing newline), the trust anchor of every mount.
    pub fn root_ca_pem(&self) -> String {
        self.app.root.pem.clone()
    }

    /// The intermediate certificate of a mount, if it has a CA.
    pub fn intermediate_pem(&self, mount: &str) -> Option<String> {
        self.app
            .mounts
            .get(mount)?
            .ca
            .as_ref()
            .map(|ca| ca.intermediate.pem.clone())
    }

    /// Adds or replaces a role on an existing mount.
    pub fn put_role(&self, mount: &str, role: Role) {
        let mount = self
            .app
            .mounts
            .get(mount)
            .expect("the mount was configured");
        mount.roles.lock().unwrap().insert(role.name.clone(), role);
    }

    /// Every token the stand-in has handed out (logins, static and root
    /// tokens): the secrets a client of it must never log.
    pub fn token_ids(&self) -> Vec<String> {
        self.app.tokens.ids()
    }

    /// Creates a token with a chosen id (for example after `expire_all_tokens`).
    pub fn add_token(&self, id: &str, grant: Grant) {
        let path = "auth/token/create";
        self.app.tokens.create(
            Some(id),
            &grant,
            path,
            HashMap::new(),
            self.app.clock.unix(),
        );
    }

    /// A certificate the mount stored, by serial (`:` or `-` separated).
    pub fn stored_cert(&self, mount: &str, serial: &str) -> Option<StoredCert> {
        let certs = self.app.mounts.get(mount)?.certs.lock().unwrap();
        certs.get(&issue::normalize_serial(serial)).cloned()
    }

    // --- time -----------------------------------------------------------

    /// Moves the stand-in's clock forward: tokens and certificates age at once.
    pub fn advance_clock(&self, by: Duration) {
        self.app.clock.advance(by);
    }

    /// Every token, the root one included, expires now.
    pub fn expire_all_tokens(&self) {
        self.app.tokens.expire_all(self.app.clock.unix());
    }

    // --- fault switches -------------------------------------------------

    pub fn faults(&self) -> FaultState {
        self.app.faults.snapshot()
    }

    pub fn set_faults(&self, state: FaultState) {
        self.app.faults.set(state);
    }

    /// Everything back to normal.
    pub fn clear_faults(&self) {
        self.app.faults.set(FaultState::default());
    }

    /// 503 `Vault is sealed` on every path but health, which answers 503 too.
    pub fn seal(&self) {
        self.app.faults.update(|f| f.sealed = true);
    }

    pub fn unseal(&self) {
        self.app.faults.update(|f| f.sealed = false);
    }

    /// Waits this long before answering each request.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.app.faults.update(|f| f.delay_ms = ms);
    }

    /// The next `count` API requests fail with `status` (a 5xx).
    pub fn fail_next(&self, count: u32, status: u16) {
        self.app.faults.update(|f| {
            f.fail_next = count;
            f.fail_status = status;
        });
    }

    /// The next `count` API requests get 429 rate limit quota exceeded.
    pub fn rate_limit_next(&self, count: u32) {
        self.app.faults.update(|f| f.rate_limit_next = count);
    }

    /// The next `count` requests lose their connection before being processed.
    pub fn drop_next_requests(&self, count: u32) {
        self.app.faults.update(|f| f.drop_requests = count);
    }

    /// The next `count` requests are processed but their connection closes
    /// instead of the answer (the sign happened; the client never hears).
    pub fn drop_next_responses(&self, count: u32) {
        self.app.faults.update(|f| f.drop_responses = count);
    }

    /// Behave as a standby: health 429, every API request 307 to `active`
    /// (`http://host:port`) with the same path. `None` makes it active again.
    pub fn standby_redirect(&self, active: Option<&str>) {
        let active = active.map(str::to_owned);
        self.app.faults.update(|f| f.standby_redirect = active);
    }

    pub fn set_health(&self, health: Option<HealthOverride>) {
        self.app.faults.update(|f| f.health = health);
    }

    // --- record ---------------------------------------------------------

    pub fn sign_calls(&self) -> Vec<SignCall> {
        snapshot(&self.app.record.signs)
    }

    /// Sign calls that issued a certificate.
    pub fn issued_count(&self) -> usize {
        self.sign_calls()
            .iter()
            .filter(|c| c.serial.is_some())
            .count()
    }

    pub fn sign_count(&self) -> usize {
        self.app.record.signs.lock().unwrap().len()
    }

    pub fn revocations(&self) -> Vec<Revocation> {
        snapshot(&self.app.record.revocations)
    }

    pub fn logins(&self) -> Vec<Login> {
        snapshot(&self.app.record.logins)
    }

    pub fn renewals(&self) -> Vec<Renewal> {
        snapshot(&self.app.record.renewals)
    }

    /// Every API request that reached the handlers, with its status.
    pub fn requests(&self) -> Vec<RequestLine> {
        snapshot(&self.app.record.requests)
    }
}
