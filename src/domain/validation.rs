//! Running one challenge's validation in the background: read what it
//! needs from the store, let the [`Validator`] decide, try a failed DNS
//! lookup again a few times, and record the outcome, which its
//! authorization and orders follow.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::domain::profiles::Profiles;
use crate::domain::validation_slots::ValidationSlots;
use crate::domain::work_leases::WorkLeases;
use crate::metrics::Metrics;
use crate::protocol::problem::ProblemType;
use crate::store::{LeasedWork, Store, StoreError, ValidationOutcome};
use crate::util::backoff::until_ok;
use crate::util::clock::Clock;
use crate::validate::{key_authorization, ChallengeToCheck, Validator};

/// Pauses before each new attempt when a challenge failed on a DNS lookup.
const LOOKUP_RETRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Validates challenge `challenge_id` (which must be `processing` under
/// this process's lease) when `slots` give its account a turn, and records
/// the outcome; its authorization and orders follow in the store, and the
/// metrics count it. The lease is renewed until the outcome is known; if
/// another process claims it meanwhile, this one stops and leaves the
/// validation to that one.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    store: Store,
    slots: Arc<ValidationSlots>,
    validator: Arc<Validator>,
    profiles: Arc<Profiles>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    leases: Arc<WorkLeases>,
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
        let deciding = async {
            // Held until the outcome is recorded: the validation's sockets
            // are closed by then, and its DNS retries count as its own work.
            let turn = slots.acquire(&challenge.account_id).await;
            let mut verdict = validator
                .check(&challenge, &profile.validation, clock.now())
                .await;
            // A lookup that failed may succeed a moment later (a record
            // still propagating, a resolver timing out): try again a few
            // times before the challenge is given up.
            for pause in LOOKUP_RETRIES {
                match &verdict.outcome {
                    ValidationOutcome::Invalid(problem) if problem.kind == ProblemType::Dns => {
                        tracing::info!(
                            retry_in_s = pause.as_secs(),
                            "DNS lookup failed; trying again"
                        );
                        tokio::time::sleep(pause).await;
                        verdict = validator
                            .check(&challenge, &profile.validation, clock.now())
                            .await;
                    }
                    _ => break,
                }
            }
            (turn, verdict)
        };
        // Deciding writes nothing, so it may stop anywhere when the lease
        // is lost; recording is then refused to this process anyway.
        let held = leases.while_held(LeasedWork::Validation, &challenge_id, deciding);
        let Some((_turn, verdict)) = held.await else {
            return;
        };
        let outcome = verdict.outcome;
        let recorded = until_ok("recording the validation", || {
            let now = clock.now();
            // A validation that may be relied on only until some instant (a
            // dns-persist-01 record's persistUntil, the profile's cap) makes
            // its authorization expire then at the latest, so neither reuse
            // nor finalize can lean on it longer.
            let valid_until = [Some(now + valid_for.as_secs() as i64), verdict.expires_by]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now);
            store.finish_challenge(&challenge_id, &outcome, now, valid_until, leases.owner())
        })
        .await;
        if recorded {
            metrics.validation(
                challenge.kind.as_str(),
                matches!(outcome, ValidationOutcome::Valid),
            );
        }
    }
    .instrument(span)
    .await
}

async fn load(store: &Store, challenge_id: &str) -> Result<Option<ChallengeToCheck>, StoreError> {
    let Some(authz) = store.authorization_of_challenge(challenge_id).await? else {
        return Ok(None);
    };
    let Some(challenge) = authz
        .challenges
        .iter()
        .find(|c| c.id == challenge_id)
        .cloned()
    else {
        return Ok(None);
    };
    let Some(account) = store.account(&authz.account_id).await? else {
        return Ok(None);
    };
    let profile = store.authorization_profile(&authz.id).await?;
    Ok(Some(ChallengeToCheck {
        key_authorization: key_authorization(&challenge.token, &account.key_thumbprint),
        kind: challenge.kind,
        identifier: authz.identifier,
        wildcard: authz.wildcard,
        token: challenge.token,
        account_id: account.id,
        profile,
    }))
}
