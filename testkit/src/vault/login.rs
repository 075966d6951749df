//! Logins (AppRole, Kubernetes, JWT) and a token's own lookup and renewal.
//! Each method accepts exactly the credentials the test configured; the
//! refusals carry the messages and statuses of Vault's auth plugins.

use std::collections::HashMap;

use axum::http::StatusCode;
use serde_json::Value;

use super::auth::{Grant, Token};
use super::envelope::{envelope, ok, Reply, VaultError};
use super::fields::Fields;
use super::record::{push, Login, Renewal};
use super::state::App;

/// The credentials one login entry accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRule {
    AppRole { role_id: String, secret_id: String },
    Kubernetes { role: String, jwt: String },
    Jwt { role: String, jwt: String },
}

impl LoginRule {
    fn method(&self) -> &'static str {
        match self {
            LoginRule::AppRole { .. } => "approle",
            LoginRule::Kubernetes { .. } => "kubernetes",
            LoginRule::Jwt { .. } => "jwt",
        }
    }
}

/// A login entry: at `auth/{mount}/login`, these credentials give this grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSpec {
    pub mount: String,
    pub rule: LoginRule,
    pub grant: Grant,
}

/// Whether `auth/{mount}` has any login entry.
pub fn has_auth_mount(app: &App, mount: &str) -> bool {
    app.logins.iter().any(|l| l.mount == mount)
}

/// `POST auth/{mount}/login`.
pub fn login(app: &App, mount: &str, fields: &Fields) -> Reply {
    let entries: Vec<&LoginSpec> = app.logins.iter().filter(|l| l.mount == mount).collect();
    let method = entries.first().map_or("unknown", |l| l.rule.method());
    let (named_role, outcome) = match method {
        "approle" => ("role_id", approle(&entries, fields)),
        "kubernetes" => ("role", kubernetes(&entries, fields)),
        _ => ("role", jwt(&entries, fields)),
    };
    let outcome = outcome.map(|(role_name, spec)| {
        let metadata = HashMap::from([("role".to_owned(), role_name)]);
        let path = format!("auth/{mount}/login");
        app.tokens
            .create(None, &spec.grant, &path, metadata, app.clock.unix())
    });
    push(
        &app.record.logins,
        Login {
            method: method.to_owned(),
            mount: mount.to_owned(),
            role: fields.string(named_role).unwrap_or_default(),
            status: outcome.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200),
        },
    );
    let token = outcome?;
    Ok(envelope(
        Value::Null,
        token.auth_block(app.clock.unix()),
        &[],
    ))
}

type Matched<'a> = Result<(String, &'a LoginSpec), VaultError>;

fn approle<'a>(entries: &[&'a LoginSpec], fields: &Fields) -> Matched<'a> {
    let role_id = fields.string("role_id")?;
    let secret_id = fields.string("secret_id")?;
    if role_id.is_empty() {
        return Err(VaultError::bad_request("missing role_id"));
    }
    entries
        .iter()
        .find(|l| matches!(&l.rule, LoginRule::AppRole { role_id: r, secret_id: s } if *r == role_id && *s == secret_id))
        .map(|l| (role_id.clone(), *l))
        .ok_or_else(|| VaultError::bad_request("invalid role or secret ID"))
}

fn kubernetes<'a>(entries: &[&'a LoginSpec], fields: &Fields) -> Matched<'a> {
    let role = fields.string("role")?;
    let jwt = fields.string("jwt")?;
    if role.is_empty() {
        return Err(VaultError::bad_request("missing role"));
    }
    if jwt.is_empty() {
        return Err(VaultError::bad_request("missing jwt"));
    }
    let for_role: Vec<&&LoginSpec> = entries
        .iter()
        .filter(|l| matches!(&l.rule, LoginRule::Kubernetes { role: r, .. } if *r == role))
        .collect();
    if for_role.is_empty() {
        return Err(VaultError::bad_request(format!(
            "invalid role name \"{role}\""
        )));
    }
    for_role
        .into_iter()
        .find(|l| matches!(&l.rule, LoginRule::Kubernetes { jwt: j, .. } if *j == jwt))
        .map(|l| (role.clone(), *l))
        .ok_or_else(|| VaultError::new(StatusCode::FORBIDDEN, "permission denied"))
}

fn jwt<'a>(entries: &[&'a LoginSpec], fields: &Fields) -> Matched<'a> {
    let jwt = fields.string("jwt")?;
    let asked = fields.string("role")?;
    if jwt.is_empty() {
        return Err(VaultError::bad_request("missing token"));
    }
    let role_of = |l: &LoginSpec| match &l.rule {
        LoginRule::Jwt { role, .. } => role.clone(),
        _ => String::new(),
    };
    // Without a role, the mount's default role (the first one configured) applies.
    let role = if asked.is_empty() {
        entries.first().map(|l| role_of(l)).unwrap_or_default()
    } else {
        asked
    };
    let for_role: Vec<&&LoginSpec> = entries.iter().filter(|l| role_of(l) == role).collect();
    if for_role.is_empty() {
        return Err(VaultError::bad_request(format!(
            "role \"{role}\" could not be found"
        )));
    }
    for_role
        .into_iter()
        .find(|l| matches!(&l.rule, LoginRule::Jwt { jwt: j, .. } if *j == jwt))
        .map(|l| (role.clone(), *l))
        .ok_or_else(|| {
            VaultError::bad_request("error validating token: failed to verify id token signature")
        })
}

/// `POST auth/token/renew-self`: same token, new lease.
pub fn renew_self(app: &App, token: &Token, fields: &Fields) -> Reply {
    let increment = fields.duration("increment")?;
    let now = app.clock.unix();
    let outcome = app.tokens.renew(&token.id, increment, now);
    push(
        &app.record.renewals,
        Renewal {
            accessor: token.accessor.clone(),
            status: outcome.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200),
        },
    );
    let (renewed, warnings) = outcome?;
    Ok(envelope(Value::Null, renewed.auth_block(now), &warnings))
}

/// `GET auth/token/lookup-self`.
pub fn lookup_self(app: &App, token: &Token) -> Reply {
    Ok(ok(token.lookup_data(app.clock.unix())))
}
