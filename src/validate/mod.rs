//! Challenge validation (RFC 8555 §8): one file per method, each proving
//! control of an identifier its own way, and the background task that runs a
//! method and records the outcome.

mod dns01;
mod http01;
pub mod resolver;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use crate::acme::problem::Problem;
use crate::backoff::until_ok;
use crate::clock::Clock;
use crate::store::{Store, StoreError, ValidationOutcome};

pub use dns01::Dns01;
pub use http01::Http01;
pub use resolver::DnsResolver;

/// The challenge types certgate can validate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    Http01,
    Dns01,
}

impl ChallengeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Http01, Self::Dns01]
            .into_iter()
            .find(|k| k.as_str() == text)
    }

    /// The challenges an authorization offers. A wildcard can only be proven
    /// through DNS (RFC 8555 §7.1.3).
    pub fn offered_for(wildcard: bool) -> &'static [ChallengeKind] {
        if wildcard {
            &[Self::Dns01]
        } else {
            &[Self::Http01, Self::Dns01]
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

/// One validation method.
#[async_trait]
pub trait Method: Send + Sync {
    /// Ok when `name` proves the key authorization; otherwise the problem
    /// to show the client, saying what was found where.
    async fn validate(
        &self,
        name: &str,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), Problem>;
}

/// All validation methods, as configured.
pub struct Validator {
    http01: Http01,
    dns01: Dns01,
}

impl Validator {
    pub fn new(resolver: DnsResolver, http01_port: u16) -> Self {
        Self {
            http01: Http01::new(resolver.clone(), http01_port),
            dns01: Dns01::new(resolver),
        }
    }

    fn method(&self, kind: ChallengeKind) -> &dyn Method {
        match kind {
            ChallengeKind::Http01 => &self.http01,
            ChallengeKind::Dns01 => &self.dns01,
        }
    }
}

/// Validates challenge `challenge_id` (which must be `processing`) and
/// records the outcome; its authorization and orders follow in the store.
pub async fn run(
    store: Store,
    validator: Arc<Validator>,
    clock: Arc<dyn Clock>,
    valid_for: Duration,
    challenge_id: String,
) {
    let span = tracing::info_span!("validation", challenge = %challenge_id);
    async move {
        let found = until_ok("reading the challenge", || subject(&store, &challenge_id)).await;
        let Some((kind, name, token, key_authz)) = found else {
            tracing::error!("challenge, authorization or account missing; nothing to validate");
            return;
        };
        let outcome = validator.check(&kind, &name, &token, &key_authz).await;
        until_ok("recording the validation", || {
            let now = clock.now();
            store.finish_challenge(
                &challenge_id,
                &outcome,
                now,
                now + valid_for.as_secs() as i64,
            )
        })
        .await;
    }
    .instrument(span)
    .await
}

/// What to validate for a challenge: its type, the name, the token and the
/// key authorization (`None` if a row is missing).
async fn subject(
    store: &Store,
    challenge_id: &str,
) -> Result<Option<(String, String, String, String)>, StoreError> {
    let Some(challenge) = store.challenge(challenge_id).await? else {
        return Ok(None);
    };
    let Some(authz) = store.authorization(&challenge.authorization_id).await? else {
        return Ok(None);
    };
    let Some(account) = store.account(&authz.account_id).await? else {
        return Ok(None);
    };
    let key_authz = key_authorization(&challenge.token, &account.key_thumbprint);
    Ok(Some((
        challenge.kind,
        authz.identifier.value,
        challenge.token,
        key_authz,
    )))
}

impl Validator {
    /// Runs the method `kind` for `name` and says what it found.
    async fn check(
        &self,
        kind: &str,
        name: &str,
        token: &str,
        key_authz: &str,
    ) -> ValidationOutcome {
        let started = std::time::Instant::now();
        let result = match ChallengeKind::parse(kind) {
            Some(kind) => self.method(kind).validate(name, token, key_authz).await,
            None => Err(Problem::malformed(format!("unknown challenge type {kind}"))),
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
    fn wildcards_are_offered_dns01_only() {
        assert_eq!(ChallengeKind::offered_for(true), &[ChallengeKind::Dns01]);
        assert!(ChallengeKind::offered_for(false).contains(&ChallengeKind::Http01));
    }
}
