//! certgate's Vault client: one logged-in connection to a Vault cluster,
//! shared by every Vault profile.
//!
//! vaultrs speaks the API; this module adds what a long-running server
//! needs around it: several addresses tried in order, a token that is
//! renewed before it expires and replaced when Vault stops accepting it, and
//! errors sorted by what to do next ([`VaultError`]), and a shared view of
//! Vault's health ([`health`]) that holds signing requests back while Vault
//! is down and releases them all the moment it answers again. It knows
//! nothing of ACME.

pub mod endpoints;
mod error;
pub mod health;
mod inventory;
pub mod role_rules;
mod token;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use vaultrs::api::pki::requests::SignCertificateRequest;
use vaultrs::api::pki::responses::SignCertificateResponse;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{VaultClient, VaultClientSettings};
use vaultrs::error::ClientError;

pub use error::VaultError;
pub use health::Availability;
pub use inventory::StoredCertificate;
pub use token::TokenInfo;

use health::{Health, Outcome};

use crate::config::VaultSettings;
use crate::metrics::Metrics;
use crate::util::secret::Secret;
use crate::vault::role_rules::RoleRules;

/// How many signing requests may be out at once. When Vault comes back
/// after an outage, every waiting order is released together; this keeps
/// that from arriving as one burst of hundreds of requests, while a backlog
/// still drains within seconds (a signature takes Vault milliseconds).
pub const SIGNS_IN_FLIGHT: usize = 8;

/// One call to Vault, made again for each address tried.
type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, ClientError>> + Send + 'a>>;

/// What to sign and where.
#[derive(Debug, Clone)]
pub struct SignCall {
    pub mount: String,
    pub role: String,
    pub issuer_ref: Option<String>,
    pub csr_pem: String,
    /// Used by Vault only when the CSR has no common name of its own.
    pub common_name: Option<String>,
    pub ttl: Option<Duration>,
}

impl SignCall {
    /// `<mount>/sign/<role>` or `<mount>/issuer/<ref>/sign/<role>`.
    pub fn path(&self) -> String {
        match &self.issuer_ref {
            Some(issuer) => format!("{}/issuer/{issuer}/sign/{}", self.mount, self.role),
            None => format!("{}/sign/{}", self.mount, self.role),
        }
    }
}

/// How `revoke` names the certificate.
#[derive(Debug, Clone)]
pub enum RevokeBy {
    /// Vault's form of the serial: lower-case hex pairs joined by `:`.
    Serial(String),
    /// The certificate itself, PEM: works for roles with `no_store`, whose
    /// certificates Vault cannot find by serial.
    Pem(String),
}

/// A Vault cluster certgate is logged in to.
pub struct Vault {
    settings: VaultSettings,
    http: reqwest::Client,
    /// Index of the address that answered last; tried first next time.
    preferred: AtomicUsize,
    token: token::TokenKeeper,
    /// Counts every call by path and outcome, with its latency.
    metrics: Arc<Metrics>,
    /// What the last call said about Vault, shared by every caller.
    health: Health,
    /// Places for signing requests in flight ([`SIGNS_IN_FLIGHT`]).
    sign_slots: Arc<Semaphore>,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultSetupError {
    #[error("reading the Vault CA certificate {path}: {source}")]
    CaCert {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("Vault CA certificate {path}: {source}")]
    CaCertParse {
        path: std::path::PathBuf,
        source: reqwest::Error,
    },
    #[error("building the Vault HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Asks Vault for certgate's token (`lookup-self`, as `/ready` does) every
/// probe interval until some call finds Vault answering; one probe at a
/// time, and none once nothing waits for the client any more.
async fn probe_until_up(vault: Weak<Vault>) {
    loop {
        loop {
            let Some(interval) = vault.upgrade().map(|v| v.health.probe_interval()) else {
                return;
            };
            tokio::time::sleep(interval).await;
            let Some(vault) = vault.upgrade() else {
                return;
            };
            if !vault.health.is_down() {
                break;
            }
            // The outcome goes into the health view; a failure is already
            // in the log from when Vault went down.
            if let Err(e) = vault.lookup_token().await {
                tracing::debug!(error = %e, "Vault health probe failed");
            }
            if !vault.health.is_down() {
                break;
            }
        }
        match vault.upgrade() {
            Some(vault) if vault.health.stop_probing() => continue,
            _ => return,
        }
    }
}

/// Follows a standby's 307 to the active node, a few times at most, and
/// never from https down to http (the token travels with the request).
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
            && attempt.url().scheme() != "https";
        if attempt.previous().len() > 3 {
            attempt.error("more than 3 redirects")
        } else if downgrade {
            attempt.error("refusing a redirect from https to http")
        } else {
            attempt.follow()
        }
    })
}

impl Vault {
    /// Prepares the client; nothing is sent until the first call.
    pub fn new(settings: VaultSettings, metrics: Arc<Metrics>) -> Result<Self, VaultSetupError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .redirect(redirect_policy());
        if let Some(path) = &settings.ca_cert {
            let pem = std::fs::read(path).map_err(|source| VaultSetupError::CaCert {
                path: path.clone(),
                source,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| {
                VaultSetupError::CaCertParse {
                    path: path.clone(),
                    source,
                }
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Self {
            http: builder.build().map_err(VaultSetupError::Client)?,
            preferred: AtomicUsize::new(0),
            token: token::TokenKeeper::new(settings.auth.clone()),
            settings,
            metrics,
            health: Health::new(),
            sign_slots: Arc::new(Semaphore::new(SIGNS_IN_FLIGHT)),
        })
    }

    pub fn settings(&self) -> &VaultSettings {
        &self.settings
    }

    /// A vaultrs client for one address, carrying `token` (if any).
    fn client(&self, address: &url::Url, token: Option<&Secret>) -> VaultClient {
        let token = token.map(|t| t.expose().to_owned()).unwrap_or_default();
        let base = address.as_str().trim_end_matches('/');
        VaultClient {
            http: rustify::clients::reqwest::Client::new(base, self.http.clone()),
            middle: EndpointMiddleware {
                token: token.clone(),
                version: "v1".to_owned(),
                wrap: None,
                namespace: self.settings.namespace.clone(),
            },
            settings: VaultClientSettings {
                address: address.clone(),
                ca_certs: Vec::new(),
                identity: None,
                timeout: Some(self.settings.timeout),
                token,
                verify: true,
                version: 1,
                wrapping: false,
                namespace: self.settings.namespace.clone(),
            },
        }
    }

    /// Runs `call` (a request to `path`, as configured: `pki_int/sign/web`)
    /// and counts it in the metrics under that path, its outcome and latency.
    async fn on_any_address<T>(
        &self,
        path: &str,
        token: Option<&Secret>,
        call: &(dyn for<'c> Fn(&'c VaultClient) -> Call<'c, T> + Sync),
    ) -> Result<T, VaultError> {
        let started = Instant::now();
        let result = self.first_answering(token, call).await;
        let outcome = result.as_ref().err().map_or("ok", VaultError::kind);
        self.metrics.vault_call(path, outcome, started.elapsed());
        self.health.record(Outcome::of(&result));
        result
    }

    /// Runs `call` against the preferred address, moving on to the next only
    /// when a connection cannot be opened (so nothing was sent).
    async fn first_answering<T>(
        &self,
        token: Option<&Secret>,
        call: &(dyn for<'c> Fn(&'c VaultClient) -> Call<'c, T> + Sync),
    ) -> Result<T, VaultError> {
        let addresses = &self.settings.addresses;
        let first = self.preferred.load(Ordering::Relaxed) % addresses.len();
        let mut failures = Vec::new();
        for offset in 0..addresses.len() {
            let index = (first + offset) % addresses.len();
            let client = self.client(&addresses[index], token);
            match call(&client).await.map_err(VaultError::from) {
                Err(VaultError::Unreachable(detail)) => {
                    // With one address the health view's WARN says the
                    // same, once; once Vault is known to be down, the
                    // prober's attempts need no line each.
                    if addresses.len() == 1 || self.health.is_down() {
                        tracing::debug!(address = %addresses[index], %detail, "Vault address unreachable");
                    } else {
                        tracing::warn!(address = %addresses[index], %detail, "Vault address unreachable");
                    }
                    failures.push(detail);
                }
                result => {
                    if index != first {
                        tracing::info!(address = %addresses[index], "switched to another Vault address");
                        self.preferred.store(index, Ordering::Relaxed);
                    }
                    return result;
                }
            }
        }
        Err(VaultError::Unreachable(failures.join("; ")))
    }

    /// Runs `call` (to `path`) with certgate's token. When Vault refuses the
    /// token it logs in again and runs `call` once more; a second refusal is
    /// returned.
    async fn with_token<T>(
        &self,
        path: &str,
        call: &(dyn for<'c> Fn(&'c VaultClient) -> Call<'c, T> + Sync),
    ) -> Result<T, VaultError> {
        let current = self.token.current(self).await?;
        match self.on_any_address(path, Some(&current.secret), call).await {
            Err(e) if e.is_permission_denied() => {
                tracing::info!("Vault refused the token; logging in again");
                let fresh = self.token.replace(self, current.generation).await?;
                self.on_any_address(path, Some(&fresh.secret), call).await
            }
            other => other,
        }
    }

    /// Logs in (or checks a given token) now, so a bad setup shows at start.
    pub async fn connect(&self) -> Result<TokenInfo, VaultError> {
        Ok(self.token.current(self).await?.info())
    }

    /// What Vault says of certgate's token right now
    /// (`auth/token/lookup-self`, logging in first when there is none yet):
    /// an answer proves Vault is reachable, unsealed and accepts the token.
    pub async fn lookup_token(&self) -> Result<TokenInfo, VaultError> {
        let lookup = self
            .with_token(token::LOOKUP_SELF, &|client| {
                Box::pin(vaultrs::token::lookup_self(client))
            })
            .await?;
        Ok(lookup.into())
    }

    /// What the calls so far say about Vault: up, or down and why.
    pub fn availability(&self) -> Availability {
        self.health.current()
    }

    /// Waits until a signing request may go out, and returns the place it
    /// holds while out (one of [`SIGNS_IN_FLIGHT`]).
    ///
    /// While Vault is known to be down, no request goes out (a circuit
    /// breaker): a request into an outage cannot succeed, and behind a
    /// proxy that accepts and then closes connections each one would be a
    /// lost answer, failing its order. Instead one prober asks Vault's
    /// token endpoint about once a second, and the first answer, from it
    /// or from any other call, releases every waiter at once.
    pub async fn until_available(self: &Arc<Self>) -> OwnedSemaphorePermit {
        let mut state = self.health.subscribe();
        loop {
            if state.borrow_and_update().is_down() {
                self.ensure_prober();
                // The sender lives in `self`, so the channel never closes.
                let _ = state.wait_for(|s| !s.is_down()).await;
                continue;
            }
            let slot = self
                .sign_slots
                .clone()
                .acquire_owned()
                .await
                .expect("the sign slots are never closed");
            // Vault may have gone down while this waited for a place.
            if !self.health.is_down() {
                return slot;
            }
        }
    }

    /// Starts the prober unless one already runs. It holds only a weak
    /// reference, so a client dropped during an outage is not kept alive.
    fn ensure_prober(self: &Arc<Self>) {
        if self.health.start_probing() {
            tokio::spawn(probe_until_up(Arc::downgrade(self)));
        }
    }

    /// Renews the token at about two thirds of its life and logs in again
    /// when renewal fails; runs until the process ends.
    pub async fn keep_token_fresh(&self) {
        self.token.keep_fresh(self).await
    }

    /// How long certgate's token lives on unless renewed; `None` before the
    /// first login and for a token that never expires. Asks Vault nothing.
    pub async fn token_ttl(&self) -> Option<Duration> {
        self.token.remaining().await
    }

    /// Signs a CSR (`POST <mount>/sign/<role>`).
    pub async fn sign(&self, request: &SignCall) -> Result<SignCertificateResponse, VaultError> {
        // vaultrs builds the path from `mount`, so an issuer-specific path
        // is the mount followed by `issuer/<ref>`.
        let mount = match &request.issuer_ref {
            Some(issuer) => format!("{}/issuer/{issuer}", request.mount),
            None => request.mount.clone(),
        };
        self.with_token(&request.path(), &|client| {
            let mut endpoint = SignCertificateRequest::builder();
            endpoint
                .mount(mount.as_str())
                .role(request.role.as_str())
                .csr(request.csr_pem.as_str());
            if let Some(common_name) = &request.common_name {
                endpoint.common_name(common_name.as_str());
            }
            if let Some(ttl) = request.ttl {
                endpoint.ttl(format!("{}s", ttl.as_secs()));
            }
            let endpoint = endpoint.build();
            Box::pin(async move {
                let endpoint = endpoint.map_err(|e| ClientError::RestClientError {
                    source: rustify::errors::ClientError::GenericError { source: e.into() },
                })?;
                vaultrs::api::exec_with_result(client, endpoint).await
            })
        })
        .await
    }

    /// The name rules of `<mount>/roles/<role>`.
    pub async fn read_role(&self, mount: &str, role: &str) -> Result<RoleRules, VaultError> {
        self.with_token(&format!("{mount}/roles/{role}"), &|client| {
            let endpoint = endpoints::ReadRoleRules {
                mount: mount.to_owned(),
                role: role.to_owned(),
            };
            Box::pin(vaultrs::api::exec_with_result(client, endpoint))
        })
        .await
    }

    /// Revokes a certificate (`POST <mount>/revoke`). Returns the
    /// revocation time Vault reports (the first one when it was revoked
    /// before), or `None` when Vault answered without one: it does that for
    /// a certificate that had already expired, which it leaves as it is.
    pub async fn revoke(&self, mount: &str, by: &RevokeBy) -> Result<Option<i64>, VaultError> {
        let revoked = self
            .with_token(&format!("{mount}/revoke"), &|client| {
                let (serial_number, certificate) = match by {
                    RevokeBy::Serial(serial) => (Some(serial.clone()), None),
                    RevokeBy::Pem(pem) => (None, Some(pem.clone())),
                };
                let endpoint = endpoints::RevokeCertificate {
                    mount: mount.to_owned(),
                    serial_number,
                    certificate,
                };
                Box::pin(async move {
                    match vaultrs::api::exec_with_result(client, endpoint).await {
                        Err(ClientError::ResponseDataEmptyError) => Ok(endpoints::Revoked {
                            revocation_time: None,
                        }),
                        other => other,
                    }
                })
            })
            .await?;
        Ok(revoked.revocation_time)
    }

    /// The CA chain of a mount (PEM, issuing CA first).
    pub async fn read_ca_chain(&self, mount: &str) -> Result<String, VaultError> {
        let chain = self
            .with_token(&format!("{mount}/cert/ca_chain"), &|client| {
                let endpoint = endpoints::ReadCaChain {
                    mount: mount.to_owned(),
                };
                Box::pin(vaultrs::api::exec_with_result(client, endpoint))
            })
            .await?;
        Ok(chain.certificate)
    }
}
