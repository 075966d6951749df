//! Tokens and policies: who may call which path, and for how long.
//!
//! A policy here is the list of paths a token may use; an entry ending in `*`
//! is a prefix. The `root` policy allows everything, and every token may look
//! itself up and renew itself (Vault's `default` policy).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use serde_json::{json, Value};

use super::clock::rfc3339;
use super::envelope::VaultError;
use super::fields::go_duration;

/// Vault's system maximum lease TTL (768h), used when no max is given.
pub const SYSTEM_MAX_TTL: u64 = 768 * 3600;

/// What a token is given when it is created (statically or by a login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub policies: Vec<String>,
    /// Seconds; 0 means the token never expires (root-like).
    pub ttl: u64,
    /// Seconds; 0 means the system maximum (768h).
    pub max_ttl: u64,
    pub renewable: bool,
}

impl Grant {
    /// A renewable one-hour token with the given policies.
    pub fn new<S: Into<String>>(policies: impl IntoIterator<Item = S>) -> Self {
        Self {
            policies: policies.into_iter().map(Into::into).collect(),
            ttl: 3600,
            max_ttl: 0,
            renewable: true,
        }
    }

    /// The root token: root policy, no expiry, not renewable.
    pub fn root() -> Self {
        Self {
            policies: vec!["root".to_owned()],
            ttl: 0,
            max_ttl: 0,
            renewable: false,
        }
    }

    pub fn ttl(mut self, secs: u64) -> Self {
        self.ttl = secs;
        self
    }

    pub fn max_ttl(mut self, secs: u64) -> Self {
        self.max_ttl = secs;
        self
    }

    pub fn renewable(mut self, renewable: bool) -> Self {
        self.renewable = renewable;
        self
    }
}

/// A live token.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub creation_time: i64,
    pub creation_ttl: u64,
    /// `None` for tokens that never expire.
    pub expire_at: Option<i64>,
    pub max_expire_at: Option<i64>,
    pub renewable: bool,
    pub path: String,
    pub metadata: HashMap<String, String>,
}

impl Token {
    pub fn ttl(&self, now: i64) -> u64 {
        self.expire_at
            .map_or(0, |at| u64::try_from(at - now).unwrap_or(0))
    }

    /// The `auth` block of logins and renewals; vaultrs needs every field.
    pub fn auth_block(&self, now: i64) -> Value {
        let mut policies = self.policies.clone();
        if !policies.iter().any(|p| p == "root" || p == "default") {
            policies.insert(0, "default".to_owned());
        }
        json!({
            "client_token": self.id,
            "accessor": self.accessor,
            "policies": policies,
            "token_policies": policies,
            "metadata": self.metadata,
            "lease_duration": self.ttl(now),
            "renewable": self.renewable,
            "entity_id": "",
            "token_type": "service",
            "orphan": true,
            "mfa_requirement": Value::Null,
            "num_uses": 0,
        })
    }

    /// The `data` of `auth/token/lookup-self`.
    pub fn lookup_data(&self, now: i64) -> Value {
        json!({
            "accessor": self.accessor,
            "creation_time": self.creation_time,
            "creation_ttl": self.creation_ttl,
            "display_name": "token",
            "entity_id": "",
            "expire_time": self.expire_at.map(rfc3339),
            "explicit_max_ttl": 0,
            "id": self.id,
            "identity_policies": Value::Null,
            "issue_time": rfc3339(self.creation_time),
            "meta": if self.metadata.is_empty() { Value::Null } else { json!(self.metadata) },
            "num_uses": 0,
            "orphan": true,
            "path": self.path,
            "policies": self.policies,
            "renewable": self.renewable,
            "ttl": self.ttl(now),
            "type": "service",
        })
    }
}

/// Random token material in Vault's `hvs.` style.
fn random_id(prefix: &str) -> String {
    use rand::Rng as _;
    let body: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{body}")
}

/// Every live token, keyed by its id.
#[derive(Debug, Default)]
pub struct TokenStore {
    tokens: Mutex<HashMap<String, Token>>,
}

impl TokenStore {
    /// Creates a token; `id` is chosen by the caller (static tokens) or random.
    pub fn create(
        &self,
        id: Option<&str>,
        grant: &Grant,
        path: &str,
        metadata: HashMap<String, String>,
        now: i64,
    ) -> Token {
        let max_ttl = if grant.max_ttl == 0 {
            SYSTEM_MAX_TTL
        } else {
            grant.max_ttl
        };
        let ttl = grant.ttl.min(max_ttl);
        let limited = grant.ttl > 0;
        let token = Token {
            id: id.map_or_else(|| random_id("hvs."), str::to_owned),
            accessor: random_id(""),
            policies: grant.policies.clone(),
            creation_time: now,
            creation_ttl: ttl,
            expire_at: limited.then(|| now + ttl as i64),
            max_expire_at: limited.then(|| now + max_ttl as i64),
            renewable: grant.renewable,
            path: path.to_owned(),
            metadata,
        };
        self.tokens
            .lock()
            .unwrap()
            .insert(token.id.clone(), token.clone());
        token
    }

    /// The token if it exists and has not expired.
    pub fn lookup(&self, id: &str, now: i64) -> Result<Token, VaultError> {
        let tokens = self.tokens.lock().unwrap();
        match tokens.get(id) {
            Some(token) if token.expire_at.is_none_or(|at| at > now) => Ok(token.clone()),
            _ => Err(VaultError::invalid_token()),
        }
    }

    /// The id of every token ever created, expired ones included.
    pub fn ids(&self) -> Vec<String> {
        self.tokens.lock().unwrap().keys().cloned().collect()
    }

    /// Makes every token expire at `now`, as if their TTLs had all run out.
    pub fn expire_all(&self, now: i64) {
        for token in self.tokens.lock().unwrap().values_mut() {
            token.expire_at = Some(now);
        }
    }

    /// Extends a token by `increment` (or its creation TTL), capped by its max TTL.
    pub fn renew(
        &self,
        id: &str,
        increment: u64,
        now: i64,
    ) -> Result<(Token, Vec<String>), VaultError> {
        let mut tokens = self.tokens.lock().unwrap();
        let token = tokens
            .get_mut(id)
            .filter(|t| t.expire_at.is_none_or(|at| at > now))
            .ok_or_else(VaultError::invalid_token)?;
        if !token.renewable || token.expire_at.is_none() {
            return Err(VaultError::bad_request("lease is not renewable"));
        }
        let wanted = if increment == 0 {
            token.creation_ttl
        } else {
            increment
        };
        let max_at = token.max_expire_at.unwrap_or(i64::MAX);
        let mut warnings = Vec::new();
        let mut new_at = now + wanted as i64;
        if new_at > max_at {
            new_at = max_at;
            let remaining = u64::try_from(max_at - now).unwrap_or(0);
            warnings.push(format!(
                "TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped accordingly",
                go_duration(wanted),
                go_duration(remaining)
            ));
        }
        token.expire_at = Some(new_at);
        Ok((token.clone(), warnings))
    }
}

/// The token a request carries, from `X-Vault-Token` or `Authorization: Bearer`.
pub fn request_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(value.trim().to_owned());
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned())
}

/// Paths every token may use on itself.
const SELF_PATHS: [&str; 3] = [
    "auth/token/lookup-self",
    "auth/token/renew-self",
    "auth/token/revoke-self",
];

/// Named policies, each a list of allowed paths or `prefix*` patterns.
#[derive(Debug, Default, Clone)]
pub struct Policies(pub HashMap<String, Vec<String>>);

impl Policies {
    pub fn allows(&self, token: &Token, path: &str) -> bool {
        if token.policies.iter().any(|p| p == "root") || SELF_PATHS.contains(&path) {
            return true;
        }
        token
            .policies
            .iter()
            .filter_map(|name| self.0.get(name))
            .flatten()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == pattern,
            })
    }
}
