//! Challenge validation (RFC 8555 §8): one file per method, each proving
//! control of an identifier its own way, and the background task that runs a
//! method and records the outcome.

pub mod caa;
mod dns01;
pub mod dns_persist;
mod http01;
pub mod resolver;
pub mod tls_alpn01;

use std::net::IpAddr;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::protocol::challenge::ChallengeKind;
use crate::protocol::identifier::Identifier;
use crate::protocol::identifier::IdentifierKind;
use crate::protocol::problem::{Problem, ProblemType};
use crate::store::ValidationOutcome;

pub use crate::config::networks::{Network, Networks};
pub use crate::config::profiles::ValidationPolicy;
pub use dns01::Dns01;
pub use dns_persist::DnsPersist01;
pub use http01::Http01;
pub use resolver::DnsResolver;
pub use tls_alpn01::TlsAlpn01;

/// RFC 8555 §8.1: token "." base64url(JWK thumbprint).
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The DNS-01 TXT value: base64url(SHA-256(key authorization)).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(key_authorization.as_bytes()))
}

/// What one validation is about.
pub struct ValidationSubject<'a> {
    /// The identifier to prove (no wildcard label).
    pub identifier: &'a Identifier,
    /// Whether the authorization is for `*.` the identifier.
    pub wildcard: bool,
    pub token: &'a str,
    pub key_authorization: &'a str,
    pub policy: &'a ValidationPolicy,
    /// Whether a URL is the account's that asked (dns-persist-01).
    pub is_our_account: &'a (dyn Fn(&str) -> bool + Sync),
    /// Unix seconds, for records that expire (dns-persist-01).
    pub now: i64,
}

/// What a successful validation may be relied on for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Proof {
    /// The validation may not be relied on after this instant (Unix
    /// seconds): a dns-persist-01 record's persistUntil.
    pub relied_on_until: Option<i64>,
}

/// A validation's outcome, and until when a valid one may be relied on.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub outcome: ValidationOutcome,
    /// When set, the authorization must expire no later than this.
    pub expires_by: Option<i64>,
}

impl ValidationSubject<'_> {
    /// The kind of identifier being validated.
    pub fn kind(&self) -> IdentifierKind {
        self.identifier.kind
    }

    /// The addresses of `name` validation may connect to; a problem naming
    /// the network when every one of them is off limits.
    pub fn reachable(&self, name: &str, addrs: &[IpAddr]) -> Result<Vec<IpAddr>, Problem> {
        let denied = &self.policy.denied_networks;
        let allowed: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|ip| denied.refusal(*ip).is_none())
            .collect();
        match (allowed.is_empty(), addrs.first()) {
            (true, Some(&first)) => Err(Problem::new(
                ProblemType::Connection,
                format!("{name}: {}", denied.refusal(first).unwrap_or_default()),
            )),
            _ => Ok(allowed),
        }
    }
}

/// One validation method.
#[async_trait]
pub trait Method: Send + Sync {
    /// Ok when the subject's identifier proves the key authorization (or,
    /// for dns-persist-01, the account); otherwise the problem to show the
    /// client, saying what was found where.
    async fn validate(&self, subject: &ValidationSubject<'_>) -> Result<Proof, Problem>;
}

/// Ports the connecting methods use.
#[derive(Debug, Clone, Copy)]
pub struct ValidationPorts {
    pub http01: u16,
    pub tls_alpn01: u16,
}

/// All validation methods, as configured.
pub struct Validator {
    http01: Http01,
    dns01: Dns01,
    tls_alpn01: TlsAlpn01,
    dns_persist01: DnsPersist01,
    resolver: DnsResolver,
    /// For CAA `accounturi`: the fixed public URL, when there is one.
    external_url: Option<String>,
}

impl Validator {
    pub fn new(
        resolver: DnsResolver,
        ports: ValidationPorts,
        external_url: Option<String>,
    ) -> Self {
        Self {
            http01: Http01::new(resolver.clone(), ports.http01),
            dns01: Dns01::new(resolver.clone()),
            tls_alpn01: TlsAlpn01::new(resolver.clone(), ports.tls_alpn01),
            dns_persist01: DnsPersist01::new(resolver.clone()),
            resolver,
            external_url,
        }
    }

    fn method(&self, kind: ChallengeKind) -> &dyn Method {
        match kind {
            ChallengeKind::Http01 => &self.http01,
            ChallengeKind::Dns01 => &self.dns01,
            ChallengeKind::TlsAlpn01 => &self.tls_alpn01,
            ChallengeKind::DnsPersist01 => &self.dns_persist01,
        }
    }

    /// Whether a CAA or dns-persist-01 `accounturi` names `account_id`
    /// here. With a fixed external URL it is a simple string comparison;
    /// without one certgate answers under any host name, so only the path
    /// of an https URL is compared.
    fn is_account_uri(&self, uri: &str, account_id: &str) -> bool {
        let path = crate::protocol::paths::account(account_id);
        match &self.external_url {
            Some(base) => uri == format!("{base}{path}"),
            None => url::Url::parse(uri)
                .is_ok_and(|u| u.scheme() == "https" && u.path() == path && u.query().is_none()),
        }
    }
}

/// Everything the validation of one challenge needs, read from the store.
pub struct ChallengeToCheck {
    pub kind: ChallengeKind,
    pub identifier: Identifier,
    pub wildcard: bool,
    pub token: String,
    pub key_authorization: String,
    pub account_id: String,
    /// The profile of the order the authorization was made for.
    pub profile: Option<String>,
}

impl Validator {
    /// Runs the challenge's method, then (for DNS names of a profile that
    /// asks for it) CAA, and says what was found and, for dns-persist-01,
    /// until when the authorization may be relied on: the record's
    /// persistUntil and the profile's `dns_persist_reuse`, whichever is first.
    pub async fn check(
        &self,
        challenge: &ChallengeToCheck,
        policy: &ValidationPolicy,
        now: i64,
    ) -> Verdict {
        let started = std::time::Instant::now();
        let is_ours = |uri: &str| self.is_account_uri(uri, &challenge.account_id);
        let subject = ValidationSubject {
            identifier: &challenge.identifier,
            wildcard: challenge.wildcard,
            token: &challenge.token,
            key_authorization: &challenge.key_authorization,
            policy,
            is_our_account: &is_ours,
            now,
        };
        let name = &challenge.identifier.value;
        let kind = challenge.kind;
        let proven = self.method(kind).validate(&subject).await;
        let reuse_cap = match (kind, &policy.dns_persist) {
            (ChallengeKind::DnsPersist01, Some(persist)) => persist
                .reuse
                .map(|reuse| now.saturating_add(reuse.as_secs() as i64)),
            _ => None,
        };
        let expires_by = match &proven {
            Ok(proof) => [proof.relied_on_until, reuse_cap]
                .into_iter()
                .flatten()
                .min(),
            Err(_) => None,
        };
        let result = match proven {
            Ok(_) if !policy.caa_identities.is_empty() && subject.kind() == IdentifierKind::Dns => {
                caa::check(
                    &self.resolver,
                    &caa::CaaQuestion {
                        name,
                        wildcard: challenge.wildcard,
                        identities: &policy.caa_identities,
                        method: kind.as_str(),
                        is_our_account: &is_ours,
                    },
                )
                .await
            }
            other => other.map(|_| ()),
        };
        let outcome = match result {
            Ok(()) => {
                // Routine: the issuance that follows is the INFO line; a
                // failure below is a WARN, with its reason, since someone
                // must act on it.
                tracing::debug!(%name, %kind, elapsed_ms = started.elapsed().as_millis() as u64, "challenge valid");
                ValidationOutcome::Valid
            }
            Err(problem) => {
                tracing::warn!(%name, %kind, %problem, "challenge invalid");
                ValidationOutcome::Invalid(problem)
            }
        };
        Verdict {
            outcome,
            expires_by,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns01_value_matches_rfc8555_construction() {
        // SHA-256("token.thumb"), base64url without padding.
        let value = dns01_txt_value("token.thumb");
        assert_eq!(value.len(), 43);
        assert_eq!(
            value,
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"token.thumb"))
        );
    }

    #[test]
    fn wildcards_are_offered_dns_methods_only_and_addresses_never_dns() {
        assert_eq!(
            ChallengeKind::offered_for(IdentifierKind::Dns, true, false),
            [ChallengeKind::Dns01]
        );
        assert_eq!(
            ChallengeKind::offered_for(IdentifierKind::Dns, true, true),
            [ChallengeKind::Dns01, ChallengeKind::DnsPersist01]
        );
        assert!(
            ChallengeKind::offered_for(IdentifierKind::Dns, false, false)
                .contains(&ChallengeKind::TlsAlpn01)
        );
        assert!(
            !ChallengeKind::offered_for(IdentifierKind::Dns, false, false)
                .contains(&ChallengeKind::DnsPersist01)
        );
        let ip = ChallengeKind::offered_for(IdentifierKind::Ip, false, true);
        assert!(!ip.contains(&ChallengeKind::Dns01) && !ip.contains(&ChallengeKind::DnsPersist01));
    }
}
