//! The URLs of ACME resources, built from a request's base URL.
//!
//! Resource URLs are never stored: ids are, and the URL is made when a
//! response is written, so a server reached under several names answers each
//! client in the names it used.

use axum::extract::FromRequestParts;
use axum::http::header::HOST;
use axum::http::request::Parts;

use super::problem::Problem;
use super::AcmeState;

/// `https://host[:port]` with no trailing slash.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    pub fn new(base: impl Into<String>) -> Self {
        Self { base: base.into() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn at(&self, path: &str) -> String {
        format!("{}/acme/{path}", self.base)
    }

    pub fn directory(&self) -> String {
        self.at("directory")
    }
    pub fn new_nonce(&self) -> String {
        self.at("new-nonce")
    }
    pub fn new_account(&self) -> String {
        self.at("new-account")
    }
    pub fn new_order(&self) -> String {
        self.at("new-order")
    }
    pub fn revoke_cert(&self) -> String {
        self.at("revoke-cert")
    }
    pub fn key_change(&self) -> String {
        self.at("key-change")
    }
    pub fn account(&self, id: &str) -> String {
        self.at(&format!("acct/{id}"))
    }
    pub fn account_orders(&self, id: &str) -> String {
        self.at(&format!("acct/{id}/orders"))
    }
    pub fn order(&self, id: &str) -> String {
        self.at(&format!("order/{id}"))
    }
    pub fn finalize(&self, id: &str) -> String {
        self.at(&format!("order/{id}/finalize"))
    }
    pub fn authorization(&self, id: &str) -> String {
        self.at(&format!("authz/{id}"))
    }
    pub fn challenge(&self, id: &str) -> String {
        self.at(&format!("chall/{id}"))
    }
    pub fn certificate(&self, id: &str) -> String {
        self.at(&format!("cert/{id}"))
    }

    /// The account id in an account URL of ours, if `kid` is one.
    pub fn account_id_from_kid<'a>(&self, kid: &'a str) -> Option<&'a str> {
        let id = kid.strip_prefix(&self.base)?.strip_prefix("/acme/acct/")?;
        (!id.is_empty() && !id.contains('/')).then_some(id)
    }

    /// The base URL for a request: the configured external URL, or the
    /// Host header over https.
    pub fn for_request(state: &AcmeState, parts: &Parts) -> Result<Self, Problem> {
        if let Some(url) = &state.external_url {
            return Ok(Self::new(url.clone()));
        }
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .ok_or_else(|| Problem::malformed("request has no Host header"))?;
        let acceptable = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
        if !acceptable {
            return Err(Problem::malformed("Host header is not a host name"));
        }
        Ok(Self::new(format!("https://{}", host.to_ascii_lowercase())))
    }
}

impl FromRequestParts<AcmeState> for Urls {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AcmeState) -> Result<Self, Problem> {
        Self::for_request(state, parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_comes_only_from_our_own_account_urls() {
        let urls = Urls::new("https://ca.test:8443");
        assert_eq!(urls.account_id_from_kid(&urls.account("abc")), Some("abc"));
        assert_eq!(
            urls.account_id_from_kid("https://other.test/acme/acct/abc"),
            None
        );
        assert_eq!(
            urls.account_id_from_kid("https://ca.test:8443/acme/acct/"),
            None
        );
        assert_eq!(
            urls.account_id_from_kid("https://ca.test:8443/acme/acct/a/orders"),
            None
        );
    }
}
