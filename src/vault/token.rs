//! certgate's Vault token: obtained by the configured auth method, renewed
//! at about two thirds of its life, and replaced by a fresh login when
//! renewal fails or Vault stops accepting it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;
use vaultrs::api::token::responses::LookupTokenResponse;
use vaultrs::api::AuthInfo;

use super::{Vault, VaultError};
use crate::config::VaultAuth;
use crate::util::backoff::Backoff;
use crate::util::secret::{Secret, SecretSource};

/// Vault paths of the token's own endpoints, as counted in the metrics.
pub(super) const LOOKUP_SELF: &str = "auth/token/lookup-self";
const RENEW_SELF: &str = "auth/token/renew-self";

/// The login path of an auth method mounted at `mount`.
fn login_path(mount: &str) -> String {
    format!("auth/{mount}/login")
}

/// What Vault said about certgate's token (no secret in here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Zero for a token that never expires.
    pub ttl: Duration,
    pub renewable: bool,
    pub policies: Vec<String>,
}

impl TokenInfo {
    /// How long the token lives, as check-config and `/ready` say it.
    pub fn lifetime(&self) -> String {
        if self.ttl.is_zero() {
            "token never expires".to_owned()
        } else {
            format!("token valid for {} s", self.ttl.as_secs())
        }
    }
}

/// `auth/token/lookup-self` tells the remaining life, not the initial one.
impl From<LookupTokenResponse> for TokenInfo {
    fn from(lookup: LookupTokenResponse) -> Self {
        Self {
            ttl: Duration::from_secs(lookup.ttl),
            renewable: lookup.renewable,
            policies: lookup.policies,
        }
    }
}

/// The token in use. `generation` counts logins, so that of several
/// requests refused at once only the first logs in again.
#[derive(Debug, Clone)]
pub(super) struct CurrentToken {
    pub secret: Secret,
    pub generation: u64,
    info: TokenInfo,
    obtained: Instant,
}

impl CurrentToken {
    pub fn info(&self) -> TokenInfo {
        self.info.clone()
    }

    /// When to renew: two thirds into the token's life.
    fn renew_at(&self) -> Instant {
        self.obtained + self.info.ttl * 2 / 3
    }
}

pub(super) struct TokenKeeper {
    auth: VaultAuth,
    current: RwLock<Option<CurrentToken>>,
    /// Held while logging in, so concurrent refusals cause one login.
    login: Mutex<()>,
    logins: AtomicU64,
}

fn read(source: &SecretSource) -> Result<Secret, VaultError> {
    source
        .read()
        .map_err(|e| VaultError::Credentials(e.to_string()))
}

/// A token goes into an HTTP header, so it must be visible ASCII.
fn header_safe(token: Secret) -> Result<Secret, VaultError> {
    if !token.expose().is_empty() && token.expose().bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token)
    } else {
        Err(VaultError::Credentials(
            "the Vault token is empty or has characters a token cannot have".into(),
        ))
    }
}

fn from_login(auth: AuthInfo) -> Result<(Secret, TokenInfo), VaultError> {
    Ok((
        header_safe(Secret::new(auth.client_token))?,
        TokenInfo {
            ttl: Duration::from_secs(auth.lease_duration),
            renewable: auth.renewable,
            policies: auth.policies,
        },
    ))
}

impl TokenKeeper {
    pub fn new(auth: VaultAuth) -> Self {
        Self {
            auth,
            current: RwLock::new(None),
            login: Mutex::new(()),
            logins: AtomicU64::new(0),
        }
    }

    /// The token to use, logging in first if there is none yet.
    pub async fn current(&self, vault: &Vault) -> Result<CurrentToken, VaultError> {
        if let Some(token) = self.current.read().await.clone() {
            return Ok(token);
        }
        self.replace(vault, 0).await
    }

    /// The current token's remaining life; `None` when there is no token
    /// yet or it never expires.
    pub async fn remaining(&self) -> Option<Duration> {
        let current = self.current.read().await;
        let token = current.as_ref().filter(|t| !t.info.ttl.is_zero())?;
        Some((token.obtained + token.info.ttl).saturating_duration_since(Instant::now()))
    }

    /// Logs in again, unless the token of generation `seen` was already
    /// replaced by someone else meanwhile (then that newer one is returned).
    pub async fn replace(&self, vault: &Vault, seen: u64) -> Result<CurrentToken, VaultError> {
        let _one_at_a_time = self.login.lock().await;
        if let Some(token) = self.current.read().await.as_ref() {
            if token.generation != seen {
                return Ok(token.clone());
            }
        }
        let (secret, info) = self.obtain(vault).await?;
        tracing::info!(
            method = self.auth.method(),
            ttl_s = info.ttl.as_secs(),
            renewable = info.renewable,
            policies = ?info.policies,
            "logged in to Vault"
        );
        let token = CurrentToken {
            secret,
            generation: self.logins.fetch_add(1, Ordering::Relaxed) + 1,
            info,
            obtained: Instant::now(),
        };
        *self.current.write().await = Some(token.clone());
        Ok(token)
    }

    /// A new token from the auth method; a given token is checked with
    /// `lookup-self`, which also tells its remaining life.
    async fn obtain(&self, vault: &Vault) -> Result<(Secret, TokenInfo), VaultError> {
        let auth = match &self.auth {
            VaultAuth::Token { token } => {
                let secret = header_safe(read(token)?)?;
                let info = vault
                    .on_any_address(LOOKUP_SELF, Some(&secret), &|client| {
                        Box::pin(vaultrs::token::lookup_self(client))
                    })
                    .await?;
                return Ok((secret, info.into()));
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let (role_id, secret_id) = (read(role_id)?, read(secret_id)?);
                vault
                    .on_any_address(&login_path(mount), None, &|client| {
                        let (mount, role_id, secret_id) =
                            (mount.clone(), role_id.clone(), secret_id.clone());
                        Box::pin(async move {
                            vaultrs::auth::approle::login(
                                client,
                                &mount,
                                role_id.expose(),
                                secret_id.expose(),
                            )
                            .await
                        })
                    })
                    .await?
            }
            VaultAuth::Kubernetes { mount, role, jwt } => {
                let jwt = read(jwt)?;
                vault
                    .on_any_address(&login_path(mount), None, &|client| {
                        let (mount, role, jwt) = (mount.clone(), role.clone(), jwt.clone());
                        Box::pin(async move {
                            vaultrs::auth::kubernetes::login(client, &mount, &role, jwt.expose())
                                .await
                        })
                    })
                    .await?
            }
            VaultAuth::Jwt { mount, role, jwt } => {
                let jwt = read(jwt)?;
                vault
                    .on_any_address(&login_path(mount), None, &|client| {
                        let (mount, role, jwt) = (mount.clone(), role.clone(), jwt.clone());
                        Box::pin(async move {
                            vaultrs::auth::oidc::login(client, &mount, jwt.expose(), role).await
                        })
                    })
                    .await?
            }
        };
        from_login(auth)
    }

    /// `renew-self`; false when Vault renewed but cannot extend the token
    /// any more (it reached its maximum life).
    async fn renew(&self, vault: &Vault, token: &CurrentToken) -> Result<bool, VaultError> {
        let auth = vault
            .on_any_address(RENEW_SELF, Some(&token.secret), &|client| {
                Box::pin(vaultrs::token::renew_self(client, None))
            })
            .await?;
        if auth.lease_duration == 0 {
            return Ok(false);
        }
        let mut current = self.current.write().await;
        if let Some(current) = current
            .as_mut()
            .filter(|c| c.generation == token.generation)
        {
            current.info.ttl = Duration::from_secs(auth.lease_duration);
            current.info.renewable = auth.renewable;
            current.obtained = Instant::now();
        }
        tracing::debug!(ttl_s = auth.lease_duration, "renewed the Vault token");
        Ok(true)
    }

    /// Renews the token at two thirds of its life, or logs in again when it
    /// cannot be renewed; returns only for a token that never expires.
    pub async fn keep_fresh(&self, vault: &Vault) {
        let mut backoff = Backoff::new();
        loop {
            let token = match self.current(vault).await {
                Ok(token) => token,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_s = backoff.next_delay().as_secs(), "logging in to Vault failed");
                    backoff.wait().await;
                    continue;
                }
            };
            if token.info.ttl.is_zero() {
                return;
            }
            tokio::time::sleep_until(token.renew_at()).await;
            if self.logins.load(Ordering::Relaxed) != token.generation {
                continue; // a request already logged in again
            }
            if token.info.renewable {
                match self.renew(vault, &token).await {
                    Ok(true) => {
                        backoff = Backoff::new();
                        continue;
                    }
                    Ok(false) => tracing::info!("the Vault token reached its maximum life"),
                    Err(e) => tracing::warn!(error = %e, "renewing the Vault token failed"),
                }
            }
            if let Err(e) = self.replace(vault, token.generation).await {
                tracing::warn!(error = %e, retry_in_s = backoff.next_delay().as_secs(), "logging in to Vault again failed");
                backoff.wait().await;
            }
        }
    }
}
