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
        if let Err(e) = validate(&store, &validator, clock.as_ref(), valid_for, &challenge_id).await {
            tracing::error!(error = %e, "validation could not be recorded; it runs again at the next start");
        }
    }
    .instrument(span)
    .await
}

async fn validate(
    store: &Store,
    validator: &Validator,
    clock: &dyn Clock,
    valid_for: Duration,
    challenge_id: &str,
) -> Result<(), StoreError> {
    let missing =
        |what: &str| StoreError::Corrupt(format!("{what} of challenge {challenge_id} is missing"));
    let challenge = store
        .challenge(challenge_id)
        .await?
        .ok_or_else(|| missing("row"))?;
    let authz = store
        .authorization(&challenge.authorization_id)
        .await?
        .ok_or_else(|| missing("authorization"))?;
    let account = store
        .account(&authz.account_id)
        .await?
        .ok_or_else(|| missing("account"))?;
    let key_authz = key_authorization(&challenge.token, &account.key_thumbprint);
    let name = &authz.identifier.value;

    let started = std::time::Instant::now();
    let outcome = match ChallengeKind::parse(&challenge.kind) {
        Some(kind) => {
            validator
                .method(kind)
                .validate(name, &challenge.token, &key_authz)
                .await
        }
        None => Err(Problem::malformed(format!(
            "unknown challenge type {}",
            challenge.kind
        ))),
    };
    let outcome = match outcome {
        Ok(()) => ValidationOutcome::Valid,
        Err(problem) => ValidationOutcome::Invalid(problem),
    };
    match &outcome {
        ValidationOutcome::Valid => tracing::info!(%name, kind = %challenge.kind,
            elapsed_ms = started.elapsed().as_millis() as u64, "challenge valid"),
        ValidationOutcome::Invalid(p) => tracing::info!(%name, kind = %challenge.kind,
            problem = %p, "challenge invalid"),
    }
    let now = clock.now();
    store
        .finish_challenge(
            challenge_id,
            &outcome,
            now,
            now + valid_for.as_secs() as i64,
        )
        .await?;
    Ok(())
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
