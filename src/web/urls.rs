//! The URLs of ACME resources, built from a request's base URL.
//!
//! Resource URLs are never stored: ids are, and the URL is made when a
//! response is written, so a server reached under several names answers each
//! client in the names it used.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::header::HOST;
use axum::http::request::Parts;

use std::sync::Arc;

use axum::extract::FromRef;

use crate::domain::profiles::Profiles;
use crate::protocol::paths;
use crate::protocol::problem::Problem;

/// What a request's URLs are made from: the configured external URL, if
/// any, and the profiles whose directories exist. The one part of the state
/// the [`Urls`] extractor needs.
#[derive(Clone)]
pub struct UrlSource {
    /// Fixed public base URL (`https://acme.example:8443`); when `None` it is
    /// taken from each request's Host header.
    pub external_url: Option<String>,
    pub profiles: Arc<Profiles>,
}

/// The base `https://host[:port]` (no trailing slash) and the profile whose
/// directory the request came through, if it is not the default one.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
    profile: Option<String>,
}

impl Urls {
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            base: base.into(),
            profile: None,
        }
    }

    /// The same base, for the directory of `profile`.
    pub fn in_profile(mut self, profile: &str) -> Self {
        self.profile = Some(profile.to_owned());
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The profile named in the request path (`/acme/<profile>/...`).
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    fn at(&self, path: &str) -> String {
        format!("{}{}", self.base, paths::resource(path))
    }

    /// A directory entry: under `/acme/<profile>/` for a profile's directory.
    fn entry(&self, name: &str) -> String {
        format!(
            "{}{}",
            self.base,
            paths::entry(self.profile.as_deref(), name)
        )
    }

    pub fn directory(&self) -> String {
        self.entry("directory")
    }
    pub fn new_nonce(&self) -> String {
        self.entry("new-nonce")
    }
    pub fn new_account(&self) -> String {
        self.entry("new-account")
    }
    pub fn new_order(&self) -> String {
        self.entry("new-order")
    }
    pub fn revoke_cert(&self) -> String {
        self.entry("revoke-cert")
    }
    pub fn key_change(&self) -> String {
        self.entry("key-change")
    }
    pub fn renewal_info(&self) -> String {
        self.at("renewal-info")
    }
    pub fn account(&self, id: &str) -> String {
        format!("{}{}", self.base, paths::account(id))
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
        paths::account_id(kid.strip_prefix(&self.base)?)
    }

    /// The URLs for a request: based on the configured external URL or the
    /// Host header over https, in the profile its path names.
    pub fn for_request(source: &UrlSource, parts: &Parts) -> Result<Self, Problem> {
        let urls = Self::base_for_request(source, parts)?;
        // Nested routers see the path without `/acme`; the original has it.
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(parts.uri.path(), |original| original.path());
        let profile = path
            .strip_prefix(paths::ROOT)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|rest| rest.split_once('/'))
            .map(|(first, _)| first)
            .filter(|first| source.profiles.get(first).is_some());
        Ok(match profile {
            Some(profile) => urls.in_profile(profile),
            None => urls,
        })
    }

    fn base_for_request(source: &UrlSource, parts: &Parts) -> Result<Self, Problem> {
        if let Some(url) = &source.external_url {
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

impl<S> FromRequestParts<S> for Urls
where
    S: Send + Sync,
    UrlSource: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Self::for_request(&UrlSource::from_ref(state), parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_moves_only_the_directory_entries() {
        let urls = Urls::new("https://ca.test").in_profile("lab");
        assert_eq!(urls.directory(), "https://ca.test/acme/lab/directory");
        assert_eq!(urls.new_order(), "https://ca.test/acme/lab/new-order");
        assert_eq!(urls.order("o1"), "https://ca.test/acme/order/o1");
        assert_eq!(urls.account_id_from_kid(&urls.account("a1")), Some("a1"));
    }

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
