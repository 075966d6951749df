//! The path table of a PKI mount: which paths exist, which need no token, and
//! which operation (read, list, write) each one serves.

use axum::http::Method;
use serde_json::json;

use super::certs;
use super::envelope::{ok, Reply, VaultError};
use super::fields::Fields;
use super::listing;
use super::sign::{self, SignTarget};
use super::state::{App, PkiMount};

/// Vault's operation kinds; a path used with another kind is "unsupported operation".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    List,
    Write,
}

impl Operation {
    /// `LIST` and `GET ?list=true` list; `GET`/`HEAD` read; `POST`/`PUT` write.
    pub fn of(method: &Method, list_query: bool) -> Option<Self> {
        match method.as_str() {
            "LIST" => Some(Operation::List),
            "GET" | "HEAD" if list_query => Some(Operation::List),
            "GET" | "HEAD" => Some(Operation::Read),
            "POST" | "PUT" => Some(Operation::Write),
            _ => None,
        }
    }
}

fn segments(rest: &str) -> Vec<&str> {
    rest.trim_end_matches('/').split('/').collect()
}

/// Paths Vault serves without a token (the CA and certificate reads).
pub fn is_unauthenticated(rest: &str) -> bool {
    matches!(
        segments(rest).as_slice(),
        ["ca_chain"]
            | ["ca", "pem"]
            | ["cert", _]
            | ["issuer", _, "json"]
            | ["crl"]
            | ["crl", "pem"]
    )
}

pub fn dispatch(app: &App, mount: &PkiMount, op: Operation, rest: &str, body: &[u8]) -> Reply {
    use Operation::*;
    let expect = |wanted: Operation| {
        if op == wanted {
            Ok(())
        } else {
            Err(VaultError::unsupported_operation())
        }
    };
    let write = |target: SignTarget| -> Reply {
        expect(Write)?;
        sign::handle(app, mount, &target, &Fields::parse(body)?)
    };
    match segments(rest).as_slice() {
        ["ca_chain"] => expect(Read).and_then(|()| certs::raw_chain(mount)),
        ["ca", "pem"] => expect(Read).and_then(|()| certs::raw_issuer(mount)),
        ["cert", "crl"] => expect(Read).and_then(|()| listing::wrapped_crl(app, mount)),
        ["crl"] => expect(Read).and_then(|()| listing::raw_crl(app, mount, false)),
        ["crl", "pem"] => expect(Read).and_then(|()| listing::raw_crl(app, mount, true)),
        ["certs"] => expect(List).and_then(|()| listing::list_certs(mount)),
        ["certs", "revoked"] => expect(List).and_then(|()| listing::list_revoked(mount)),
        ["cert", serial] => expect(Read).and_then(|()| certs::read_cert(mount, serial)),
        ["issuer", reference, "json"] => {
            expect(Read).and_then(|()| certs::issuer_json(mount, reference))
        }
        ["roles"] => expect(List).and_then(|()| list_roles(mount)),
        ["roles", name] => expect(Read).and_then(|()| {
            let role = mount.role(name).ok_or_else(VaultError::not_found)?;
            Ok(ok(role.read_data()))
        }),
        ["sign", role] => write(SignTarget::new(Some(role), None, false)),
        ["issuer", reference, "sign", role] => {
            write(SignTarget::new(Some(role), Some(reference), false))
        }
        ["sign-verbatim"] => write(SignTarget::new(None, None, true)),
        ["sign-verbatim", role] => write(SignTarget::new(Some(role), None, true)),
        ["issuer", reference, "sign-verbatim"] => {
            write(SignTarget::new(None, Some(reference), true))
        }
        ["issuer", reference, "sign-verbatim", role] => {
            write(SignTarget::new(Some(role), Some(reference), true))
        }
        ["revoke"] => {
            expect(Write)?;
            certs::revoke(app, mount, &Fields::parse(body)?)
        }
        _ => Err(VaultError::unsupported_path()),
    }
}

/// `LIST roles`: an empty list is a 404, as in Vault.
fn list_roles(mount: &PkiMount) -> Reply {
    let keys: Vec<String> = mount.roles.lock().unwrap().keys().cloned().collect();
    if keys.is_empty() {
        return Err(VaultError::not_found());
    }
    Ok(ok(json!({ "keys": keys })))
}
