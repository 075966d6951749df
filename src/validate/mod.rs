//! Challenge validation (RFC 8555 §8): one file per method, each proving
//! control of an identifier its own way, and the background task that runs a
//! method and records the outcome.

pub mod caa;
mod dns01;
mod http01;
pub mod networks;
pub mod resolver;
mod tls_alpn01;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::acme::identifiers::IdentifierKind;
use crate::acme::problem::{Problem, ProblemType};
use crate::acme::types::Identifier;
use crate::backoff::until_ok;
use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::profiles::Profiles;
use crate::store::{Store, StoreError, ValidationOutcome};

pub use dns01::Dns01;
pub use http01::Http01;
pub use networks::{Network, Networks};
pub use resolver::DnsResolver;
pub use tls_alpn01::TlsAlpn01;

/// The challenge types certgate can validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    Http01,
    Dns01,
    /// RFC 8737.
    TlsAlpn01,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::TlsAlpn01 => "tls-alpn-01",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Http01, Self::Dns01, Self::TlsAlpn01]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// The challenges an authorization offers. A wildcard can only be proven
    /// through DNS (RFC 8555 §7.1.3); an IP address never through DNS
    /// (RFC 8738 §7).
    pub fn offered_for(kind: IdentifierKind, wildcard: bool) -> &'static [ChallengeKind] {
        match (kind, wildcard) {
            (IdentifierKind::Ip, _) => &[Self::Http01, Self::TlsAlpn01],
            (IdentifierKind::Dns, true) => &[Self::Dns01],
            (IdentifierKind::Dns, false) => &[Self::Http01, Self::Dns01, Self::TlsAlpn01],
        }
    }
}

/// RFC 8555 §8.1: token "." base64url(JWK thumbprint).
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The DNS-01 TXT value: base64url(SHA-256(key authorization)).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(key_authorization.as_bytes()))
}

/// Pauses before each new attempt when a challenge failed on a DNS lookup.
const LOOKUP_RETRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// A profile's limits on validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationPolicy {
    /// Networks no validation may connect to.
    pub denied_networks: Networks,
    /// Issuer domains CAA records must name; empty means CAA is not checked.
    pub caa_identities: Vec<String>,
}

/// What one validation is about.
pub struct Subject<'a> {
    /// The identifier to prove (no wildcard label).
    pub identifier: &'a Identifier,
    pub token: &'a str,
    pub key_authorization: &'a str,
    pub policy: &'a ValidationPolicy,
}

impl Subject<'_> {
    pub fn kind(&self) -> IdentifierKind {
        if self.identifier.kind == IdentifierKind::Ip.as_str() {
            IdentifierKind::Ip
        } else {
            IdentifierKind::Dns
        }
    }

    /// The addresses of `name` validation may connect to; a problem naming
    /// the network when every one of them is off limits.
    pub fn reachable(&self, name: &str, addrs: &[IpAddr]) -> Result<Vec<IpAddr>, Problem> {
        let denied = &self.policy.denied_networks;
        let allowed: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|ip| denied.containing(*ip).is_none())
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
    /// Ok when the subject's identifier proves the key authorization;
    /// otherwise the problem to show the client, saying what was found where.
    async fn validate(&self, subject: &Subject<'_>) -> Result<(), Problem>;
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
            resolver,
            external_url,
        }
    }

    fn method(&self, kind: ChallengeKind) -> &dyn Method {
        match kind {
            ChallengeKind::Http01 => &self.http01,
            ChallengeKind::Dns01 => &self.dns01,
            ChallengeKind::TlsAlpn01 => &self.tls_alpn01,
        }
    }

    /// Whether a CAA `accounturi` names `account_id` here. Without a fixed
    /// external URL certgate answers under any host name, so only the path
    /// is compared.
    fn is_account_uri(&self, uri: &str, account_id: &str) -> bool {
        let path = format!("/acme/acct/{account_id}");
        match &self.external_url {
            Some(base) => uri == format!("{base}{path}"),
            None => url::Url::parse(uri).is_ok_and(|u| u.path() == path),
        }
    }
}

/// Everything the validation of one challenge needs, read from the store.
struct Challenge {
    kind: String,
    identifier: Identifier,
    wildcard: bool,
    token: String,
    key_authorization: String,
    account_id: String,
    /// The profile of the order the authorization was made for.
    profile: Option<String>,
}

/// Validates challenge `challenge_id` (which must be `processing`) and
/// records the outcome; its authorization and orders follow in the store,
/// and the metrics count it.
pub async fn run(
    store: Store,
    validator: Arc<Validator>,
    profiles: Arc<Profiles>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    valid_for: Duration,
    challenge_id: String,
) {
    let span = tracing::info_span!("validation", challenge = %challenge_id);
    async move {
        let found = until_ok("reading the challenge", || load(&store, &challenge_id)).await;
        let Some(challenge) = found else {
            tracing::error!("challenge, authorization or account missing; nothing to validate");
            return;
        };
        let profile = challenge
            .profile
            .as_deref()
            .and_then(|name| profiles.get(name))
            .unwrap_or_else(|| profiles.default_profile());
        let mut outcome = validator.check(&challenge, &profile.validation).await;
        // A lookup that failed may succeed a moment later (a record still
        // propagating, a resolver timing out): try again a few times before
        // the challenge is given up.
        for pause in LOOKUP_RETRIES {
            match &outcome {
                ValidationOutcome::Invalid(problem) if problem.kind == ProblemType::Dns => {
                    tracing::info!(
                        retry_in_s = pause.as_secs(),
                        "DNS lookup failed; trying again"
                    );
                    tokio::time::sleep(pause).await;
                    outcome = validator.check(&challenge, &profile.validation).await;
                }
                _ => break,
            }
        }
        let recorded = until_ok("recording the validation", || {
            let now = clock.now();
            store.finish_challenge(
                &challenge_id,
                &outcome,
                now,
                now + valid_for.as_secs() as i64,
            )
        })
        .await;
        if recorded {
            let method =
                ChallengeKind::parse(&challenge.kind).map_or("unknown", ChallengeKind::as_str);
            metrics.validation(method, matches!(outcome, ValidationOutcome::Valid));
        }
    }
    .instrument(span)
    .await
}

async fn load(store: &Store, challenge_id: &str) -> Result<Option<Challenge>, StoreError> {
    let Some(challenge) = store.challenge(challenge_id).await? else {
        return Ok(None);
    };
    let Some(authz) = store.authorization(&challenge.authorization_id).await? else {
        return Ok(None);
    };
    let Some(account) = store.account(&authz.account_id).await? else {
        return Ok(None);
    };
    let profile = store.authorization_profile(&authz.id).await?;
    Ok(Some(Challenge {
        key_authorization: key_authorization(&challenge.token, &account.key_thumbprint),
        kind: challenge.kind,
        identifier: authz.identifier,
        wildcard: authz.wildcard,
        token: challenge.token,
        account_id: account.id,
        profile,
    }))
}

impl Validator {
    /// Runs the challenge's method, then (for DNS names of a profile that
    /// asks for it) CAA, and says what was found.
    async fn check(&self, challenge: &Challenge, policy: &ValidationPolicy) -> ValidationOutcome {
        let started = std::time::Instant::now();
        let subject = Subject {
            identifier: &challenge.identifier,
            token: &challenge.token,
            key_authorization: &challenge.key_authorization,
            policy,
        };
        let name = &challenge.identifier.value;
        let kind = &challenge.kind;
        let proven = match ChallengeKind::parse(kind) {
            Some(method) => self.method(method).validate(&subject).await,
            None => Err(Problem::malformed(format!("unknown challenge type {kind}"))),
        };
        let result = match proven {
            Ok(())
                if !policy.caa_identities.is_empty() && subject.kind() == IdentifierKind::Dns =>
            {
                let is_ours = |uri: &str| self.is_account_uri(uri, &challenge.account_id);
                caa::check(
                    &self.resolver,
                    &caa::CaaQuestion {
                        name,
                        wildcard: challenge.wildcard,
                        identities: &policy.caa_identities,
                        method: kind,
                        is_our_account: &is_ours,
                    },
                )
                .await
            }
            other => other,
        };
        match result {
            Ok(()) => {
                tracing::info!(%name, %kind, elapsed_ms = started.elapsed().as_millis() as u64, "challenge valid");
                ValidationOutcome::Valid
            }
            Err(problem) => {
                tracing::info!(%name, %kind, %problem, "challenge invalid");
                ValidationOutcome::Invalid(problem)
            }
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
    fn wildcards_are_offered_dns01_only_and_addresses_never_dns01() {
        assert_eq!(
            ChallengeKind::offered_for(IdentifierKind::Dns, true),
            &[ChallengeKind::Dns01]
        );
        assert!(ChallengeKind::offered_for(IdentifierKind::Dns, false)
            .contains(&ChallengeKind::TlsAlpn01));
        assert!(
            !ChallengeKind::offered_for(IdentifierKind::Ip, false).contains(&ChallengeKind::Dns01)
        );
    }
}
